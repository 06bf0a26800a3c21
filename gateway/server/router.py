"""The path table of the HTTP server, in the style of PAPPL's resources.

Routes
------
A `Router` maps a path and a set of methods to a handler, and is the `HttpApp` the
connection layer serves (gateway.server.http_connection). The gateway's own table is built by
`IppApp` (gateway.server.ipp_endpoint, which exposes it as `IppApp.router`) and
`add_web_routes` (gateway.server.web); a feature adds its routes to it::

    router = Router()
    router.add("/", page)                                        # GET, and HEAD with it
    router.add("/ipp/print", ipp_post(app.handle_ipp), methods=("POST",))
    router.add("/ipp/print/", ipp_post(app.handle_ipp), methods=("POST",), prefix=True)
    router.add("/metrics", metrics)                              # later
    router.add("/ws/events", websocket_route(session))           # gateway.server.websocket

A path is exact ("/icon.png", or "*" for `OPTIONS *`) or, with `prefix=True`, a prefix that
ends in "/" and covers every path below it ("/ipp/print/" covers "/ipp/print/laser"). The
exact path wins, then the longest prefix. Adding the same path again adds methods to it; a
method given twice is a bug (ValueError). Lookup is one dict lookup for an exact path and one
per "/" inside the longest prefix's length otherwise, never a scan of the table.

Answers the router gives itself: 404 for a path without a route; 405 with `Allow` for a
method the path lacks; for OPTIONS not routed explicitly, 200 with `Allow` (the path's
methods, or every method of the table for "*"). HEAD goes to the GET handler unless HEAD is
routed; the connection drops the body.

Handlers
--------
``async def handler(request: HttpRequest, body: RequestBody) -> HttpResponse | Upgrade``
(types in gateway.server.http). A handler may:

- answer `HttpResponse(status, headers, body)` with `body` bytes;
- stream: `HttpResponse(200, headers, body=chunks)` where `chunks` is an async iterable of
  bytes (an async generator, typically). With `length=N` it goes out with Content-Length
  (it must then yield exactly N bytes), else chunked. The generator runs after the handler
  returned, in the connection's task: a reload of the app does not wait for it. When the
  client goes away (reset, or closes its side while the body streams) or stops reading for
  `HttpLimits.read_timeout` at a write, the generator is closed (`aclose()`, its `finally`
  runs) and the connection with it. An exception from the generator after the head went out
  is logged as a bug and the connection is closed without the final chunk, so the client
  sees a truncated body, never a complete-looking one;
- refuse: raise `HttpError(status, message, headers=[...], close=...)`, e.g. 401 with
  `WWW-Authenticate`, 503 with `Retry-After`; the headers go out with the error;
- take the connection over: return `Upgrade(run, protocol=..., headers=...)`. With a
  protocol ("TLS/1.2"), the connection sends "101 Switching Protocols" and calls
  `await run(stream)`; for TLS (RFC 2817), `run` wraps the stream in `trio.SSLStream` and
  serves HTTP on it. With `protocol=None` nothing is sent and `stream` replays the request
  head: what trio-websocket needs to do the handshake itself (gateway.server.websocket).
  Check the offer with `upgrade_offered(request, "websocket")` first. `run` owns the stream
  until it returns (the connection then closes it), has no timeouts but its own, and is
  not counted by the reload switch (gateway.server.switch): a long-lived one ends when the
  service cancels it, or when what it follows (an old System's bus) stops.

A handler that does not read the body leaves it to the connection, which drains up to
`HttpLimits.max_drain_bytes` to keep the connection alive (or closes it). The `RequestBody`
must not be read after the handler returned, so a streamed answer to a POST reads the body
before it returns.

TLS upgrades (RFC 2817)
-----------------------
With `tls_upgrade` set (the listeners' `TlsServer.upgrade`, given when TLS is on), the router
takes any plain request that offers `Upgrade: TLS/...` with `Connection: Upgrade` and no body
(`tls_upgrade_offered`), whatever its path, before looking the path up: it answers
`Upgrade(tls_upgrade(request), protocol="TLS/1.2, HTTP/1.1")`. After the 101 and the
handshake the request itself is answered over TLS, scheme "ipps", as cupsd does: the CUPS
client sends `OPTIONS *` with the offer and waits for that answer. A request already on TLS
ignores the offer.

Upgrades nobody takes
---------------------
An `Upgrade` header is only an offer. A request whose route does not answer with `Upgrade`
is answered as a normal request on the same HTTP/1.1 connection, as RFC 9110 7.8 allows (a
server MAY ignore it): `OPTIONS *` with `Upgrade: TLS/1.2` gets 200 and the connection stays
plain HTTP, as CUPS expects of a server without TLS; an upgrade to a path without a route
gets 404 (and a WebSocket offer to a page gets the page, which a WebSocket client takes as a
refusal). A route that can only be used upgraded refuses a request without the offer with
426 (the WebSocket route does). No case answers 5xx or leaves the client waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from gateway.server.http import (
    IPP_CONTENT_TYPE,
    TLS_UPGRADE_PROTOCOL,
    Handler,
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpResult,
    RequestBody,
    Takeover,
    Upgrade,
    is_ipp_content_type,
    tls_upgrade_offered,
)

__all__ = ["Router", "ipp_post"]

_METHOD_ORDER = ("GET", "HEAD", "OPTIONS", "POST")  # then any other, alphabetically
IPP_HEADERS = (("Content-Type", IPP_CONTENT_TYPE),)


@dataclass(slots=True)
class _Route:
    handlers: dict[str, Handler] = field(default_factory=dict)  # HEAD included when implied
    routed: set[str] = field(default_factory=set)  # the methods added explicitly
    allow: str = ""  # the Allow header value for this path

    def add(self, path: str, handler: Handler, methods: Iterable[str]) -> None:
        for method in methods:
            name = method.upper()
            if name in self.routed:
                raise ValueError(f"{name} {path} is routed twice")
            self.routed.add(name)
            self.handlers[name] = handler
        if "GET" in self.routed and "HEAD" not in self.routed:
            self.handlers["HEAD"] = self.handlers["GET"]
        self.allow = _allow_value(self.handlers)


class Router:
    """An `HttpApp` that dispatches each request on its path and method (see the module)."""

    def __init__(self, *, tls_upgrade: Callable[[HttpRequest], Takeover] | None = None
                 ) -> None:
        self.tls_upgrade = tls_upgrade  # see "TLS upgrades" in the module's docstring
        self._exact: dict[str, _Route] = {}
        self._prefixes: dict[str, _Route] = {}
        self._longest_prefix = 0
        self._allow_all = "OPTIONS"

    def add(self, path: str, handler: Handler, *, methods: Iterable[str] = ("GET",),
            prefix: bool = False) -> None:
        """Route `methods` on `path` (exact, or every path below it with `prefix=True`) to
        `handler`. GET brings HEAD along unless HEAD is routed on that path too."""
        if prefix and not (path.startswith("/") and path.endswith("/")):
            raise ValueError(f"a prefix starts and ends with '/': {path!r}")
        if not prefix and not (path.startswith("/") or path == "*"):
            raise ValueError(f"a path starts with '/' (or is '*'): {path!r}")
        table = self._prefixes if prefix else self._exact
        table.setdefault(path, _Route()).add(path, handler, methods)
        if prefix:
            self._longest_prefix = max(self._longest_prefix, len(path))
        every = {name for route in (*self._exact.values(), *self._prefixes.values())
                 for name in route.handlers}
        self._allow_all = _allow_value(every)

    def _route_for(self, path: str) -> _Route | None:
        """The route serving `path`: the exact one, else the longest prefix, else None."""
        route = self._exact.get(path)
        if route is not None or not self._prefixes:
            return route
        prefixes = self._prefixes
        end = path.rfind("/", 0, self._longest_prefix)
        while end >= 0:
            route = prefixes.get(path[: end + 1])
            if route is not None:
                return route
            end = path.rfind("/", 0, end)
        return None

    async def handle(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        if (self.tls_upgrade is not None and request.scheme == "ipp"
                and tls_upgrade_offered(request)):
            return Upgrade(self.tls_upgrade(request), protocol=TLS_UPGRADE_PROTOCOL)
        route = self._route_for(request.path)
        if route is None:
            if request.method == "OPTIONS" and request.path == "*":
                return HttpResponse(200, [("Allow", self._allow_all)])
            raise HttpError(404, "Not found")
        handler = route.handlers.get(request.method)
        if handler is not None:
            return await handler(request, body)
        if request.method == "OPTIONS":
            return HttpResponse(200, [("Allow", route.allow)])
        raise HttpError(405, f"Method {request.method} is not allowed",
                        headers=[("Allow", route.allow)])


def _allow_value(names: Iterable[str]) -> str:
    methods = {*names, "OPTIONS"}
    known = [name for name in _METHOD_ORDER if name in methods]
    return ", ".join(known + sorted(methods.difference(_METHOD_ORDER)))


def ipp_post(handle_ipp: Callable[[HttpRequest, RequestBody],
                                   Awaitable[bytes | HttpResponse]]) -> Handler:
    """A POST handler for IPP: refuses a body that is not `application/ipp` (400, before
    reading it) and sends what `handle_ipp` returns: the encoded IPP response, or a whole
    HTTP response (a 401 challenge with its IPP body, say)."""

    async def handler(request: HttpRequest, body: RequestBody) -> HttpResult:
        if not is_ipp_content_type(request.header("content-type")):
            raise HttpError(400, "POST requests must have Content-Type: application/ipp")
        answer = await handle_ipp(request, body)
        if isinstance(answer, HttpResponse):
            return answer
        return HttpResponse(200, IPP_HEADERS, answer)

    return handler
