"""The path table (gateway.server.router): which handler a method and a path reach, and the
answers the router gives itself (404, 405 with Allow, OPTIONS)."""

from __future__ import annotations

import pytest

from gateway.server.http import (
    Handler,
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpResult,
    RequestBody,
)
from gateway.server.router import Router, ipp_post


class NoBody:
    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        raise AssertionError("the body is not read")


def request(method: str, path: str, headers: list[tuple[str, str]] | None = None
            ) -> HttpRequest:
    return HttpRequest(method, path, path, headers or [], "gw", 631, "ipp", "test:1")


def named(name: str) -> Handler:
    async def handler(request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], name.encode())

    return handler


async def answer(router: Router, method: str, path: str) -> HttpResult:
    return await router.handle(request(method, path), NoBody())


async def body_of(router: Router, method: str, path: str) -> bytes:
    result = await answer(router, method, path)
    assert isinstance(result, HttpResponse) and isinstance(result.body, bytes)
    return result.body


async def refusal(router: Router, method: str, path: str) -> HttpError:
    with pytest.raises(HttpError) as caught:
        await answer(router, method, path)
    return caught.value


@pytest.fixture
def router() -> Router:
    table = Router()
    table.add("/", named("home"))
    table.add("/ipp/print", named("ipp"), methods=("POST",))
    table.add("/ipp/print", named("page"))
    table.add("/ipp/print/", named("ipp-prefix"), methods=("POST",), prefix=True)
    table.add("/files/", named("files"), prefix=True)
    table.add("/files/private/", named("private"), prefix=True)
    table.add("/files/readme", named("readme"))
    return table


async def test_exact_paths_and_methods_reach_their_handler(router: Router) -> None:
    assert await body_of(router, "GET", "/") == b"home"
    assert await body_of(router, "POST", "/ipp/print") == b"ipp"
    assert await body_of(router, "GET", "/ipp/print") == b"page"


async def test_a_prefix_covers_the_paths_below_it_only(router: Router) -> None:
    assert await body_of(router, "POST", "/ipp/print/laser") == b"ipp-prefix"
    assert await body_of(router, "POST", "/ipp/print/") == b"ipp-prefix"
    assert await body_of(router, "POST", "/ipp/print/a/b") == b"ipp-prefix"
    assert (await refusal(router, "POST", "/ipp/printer")).status == 404
    assert (await refusal(router, "POST", "/ipp")).status == 404


async def test_exact_beats_prefix_and_the_longest_prefix_wins(router: Router) -> None:
    assert await body_of(router, "GET", "/files/readme") == b"readme"
    assert await body_of(router, "GET", "/files/readme/x") == b"files"
    assert await body_of(router, "GET", "/files/private/key") == b"private"
    assert await body_of(router, "GET", "/files/privatekey") == b"files"


async def test_unknown_path_is_404(router: Router) -> None:
    for path in ("/nothing", "/icon.png", "*", "/files"):
        error = await refusal(router, "GET", path)
        assert (error.status, error.headers) == (404, ())


async def test_wrong_method_is_405_with_the_paths_methods(router: Router) -> None:
    error = await refusal(router, "DELETE", "/ipp/print")
    assert error.status == 405
    assert list(error.headers) == [("Allow", "GET, HEAD, OPTIONS, POST")]
    error = await refusal(router, "POST", "/")
    assert (error.status, list(error.headers)) == (405, [("Allow", "GET, HEAD, OPTIONS")])
    error = await refusal(router, "GET", "/ipp/print/laser")
    assert (error.status, list(error.headers)) == (405, [("Allow", "OPTIONS, POST")])


async def test_options_answers_allow_for_a_path_and_for_the_server(router: Router) -> None:
    on_path = await answer(router, "OPTIONS", "/ipp/print/laser")
    assert isinstance(on_path, HttpResponse)
    assert (on_path.status, list(on_path.headers)) == (200, [("Allow", "OPTIONS, POST")])
    server = await answer(router, "OPTIONS", "*")
    assert isinstance(server, HttpResponse)
    assert list(server.headers) == [("Allow", "GET, HEAD, OPTIONS, POST")]
    assert (await refusal(router, "OPTIONS", "/nothing")).status == 404


async def test_options_can_be_routed_on_star() -> None:
    table = Router()
    table.add("*", named("upgrade-here"), methods=("OPTIONS",))
    assert await body_of(table, "OPTIONS", "*") == b"upgrade-here"


async def test_get_brings_head_unless_head_is_routed() -> None:
    table = Router()
    table.add("/a", named("get-a"))
    table.add("/b", named("get-b"))
    table.add("/b", named("head-b"), methods=("HEAD",))
    assert await body_of(table, "HEAD", "/a") == b"get-a"
    assert await body_of(table, "HEAD", "/b") == b"head-b"
    assert await body_of(table, "GET", "/b") == b"get-b"


def test_routing_a_method_twice_or_a_bad_path_is_refused() -> None:
    table = Router()
    table.add("/a", named("a"), methods=("get", "POST"))
    with pytest.raises(ValueError, match="GET /a is routed twice"):
        table.add("/a", named("again"))
    for path, prefix in (("a", False), ("/a", True), ("a/", True), ("", False)):
        with pytest.raises(ValueError):
            table.add(path, named("bad"), prefix=prefix)


async def test_ipp_post_refuses_other_content_types_before_reading() -> None:
    seen: list[HttpRequest] = []

    async def handle_ipp(request: HttpRequest, body: RequestBody) -> bytes:
        seen.append(request)
        return b"\x02\x00\x00\x00"

    handler = ipp_post(handle_ipp)
    with pytest.raises(HttpError) as caught:
        await handler(request("POST", "/ipp/print", [("content-type", "text/plain")]), NoBody())
    assert caught.value.status == 400 and not seen
    accepted = await handler(
        request("POST", "/ipp/print", [("content-type", "application/IPP; x=y")]), NoBody())
    assert isinstance(accepted, HttpResponse)
    assert (accepted.status, list(accepted.headers), accepted.body) == (
        200, [("Content-Type", "application/ipp")], b"\x02\x00\x00\x00")
    assert len(seen) == 1
