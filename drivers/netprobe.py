"""Setting a printer up from a host name or a device URI: what answers, and which driver.

`probe_target` is what `ipp-gateway add [NAME] TARGET` asks. Targets:

- `HOST`, `HOST:PORT`, `[V6]:PORT`, `socket://HOST[:PORT]`: AppSocket (port 9100 by default).
  The connection is asked `@PJL INFO ID` and `@PJL INFO CONFIG`; the model comes from the
  first, the language list (and so the driver, drivers.autosetup) from the second. Many print
  servers accept on 9100 and say nothing: that device is still usable, its driver the fallback,
  and the findings say so. A bare `HOST` whose 9100 refuses is tried as LPD on 515.
- `HOST:515`, `lpd://HOST[:PORT]/[QUEUE]`: LPD. The queue is checked with a short
  send-queue-state (RFC 1179 command 3); without one, the usual names are tried in order
  (`LPD_QUEUES`) and the first the server does not call unknown wins. A queue says nothing
  about the language: PJL on the host's 9100 is asked if it answers, else the driver is
  `postscript`, a guess (Unix spoolers' filters take PostScript) the reason says how to change.
- `usb://`, `serial:`, `file:`: the device id (drivers.discovery.probe), whose `CMD:` decides.

Each step has a share of one overall `timeout`; nothing here raises for a device that is dead
or odd (`SetupProbe.error` says what was tried and what happened), only UriError for a target
that is not one.

SNMP (sysDescr, the Printer MIB's prtInterpreterLangFamily) is not asked. The one full
pure-Python SNMP library, pysnmp, lost its author in 2022 and went through competing forks
(pysnmplib, pysnmp-lextudio) before lextudio took the name back in 2024; since 6.2 it is
asyncio-only, which does not fit a Trio program, and a hand-written BER/SNMPv1 client is more
protocol code than the two answers it would add are worth while PJL and the device id say the
same for most printers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import trio

from drivers import discovery
from drivers.autosetup import DriverChoice, choice_for_device_id, choose_driver
from drivers.errors import DriverError, TransportError, UriError, os_reason
from drivers.ieee1284 import parse_device_id
from drivers.ippcaps import (
    capabilities_from_attributes,
    choose_ipp_driver,
    printer_config_values,
)
from drivers.pjl import (
    SETUP_QUERY,
    PjlMessage,
    PjlReplyParser,
    languages_from_config,
    model_from_info_id,
)
from drivers.transport import check_device_uri, open_transport
from drivers.transports import tcp
from drivers.transports.ipp import IppTransport
from drivers.transports.lpd import LpdSettings
from drivers.transports.lpd_protocol import parse_queue_state, queue_state_command
from drivers.uri import DeviceUri, host_port

log = logging.getLogger("drivers.netprobe")

RAW_PORT = 9100
LPD_PORT = 515
# Queue names print servers and spoolers commonly answer to, most common first.
LPD_QUEUES = ("lp", "raw", "PASSTHRU", "text", "auto", "PORT1", "print", "queue")
_PJL_SHARE = 0.5  # of the time left, for a PJL answer on a connection that was accepted
_PJL_WAIT_MAX = 5.0
_REPLY_LIMIT = 64 * 1024
_LOCAL_SCHEMES = ("usb", "serial", "file")
_IPP_SCHEMES = ("ipp", "ipps", "http", "https")  # asked with Get-Printer-Attributes


@dataclass(frozen=True)
class SetupProbe:
    target: str  # what was asked
    device_uri: str  # the URI to configure; "" when nothing usable answered
    choice: DriverChoice | None
    make_and_model: str
    device_id: str  # 1284 id text when one was read ("" otherwise)
    findings: tuple[str, ...]  # one line per thing tried: what answered, what did not, why chosen
    error: str  # "" on success; one clear sentence otherwise
    # Further [[printer]] keys the device's answer gives (an IPP device: media, duplex, color,
    # resolutions, formats), beside name, device, driver and make_and_model.
    config_values: Mapping[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.device_uri)


@dataclass(frozen=True)
class _Target:
    """A target read: how to reach it. `uri` is the device URI given, if one was."""

    kind: str  # "host" (try 9100 then 515), "socket", "lpd", "ipp" or "local"
    host: str = ""
    port: int = 0
    queue: str = ""
    uri: str = ""


@dataclass(frozen=True)
class _PjlAnswer:
    connected: bool
    model: str = ""
    languages: tuple[str, ...] = ()
    answered: bool = False  # any PJL reply came back
    note: str = ""  # what happened, in words


def parse_target(target: str, *, lpd_port: int = LPD_PORT) -> _Target:
    """Read `target` (see the module docstring); UriError when it is none of the forms."""
    text = target.strip()
    if not text:
        raise UriError("empty target: give a host, HOST:PORT or a device URI")
    scheme = text.partition(":")[0].lower()
    if "://" in text or scheme in _LOCAL_SCHEMES:
        return _uri_target(text, scheme)
    host, port = _split_host_port(text)
    shown = host_port(host, port)
    # The transports' own check, so a target refused here is refused as the config would be.
    check_device_uri(f"socket://{shown}")
    if port is None:
        return _Target("host", host, RAW_PORT)
    if port == lpd_port:
        return _Target("lpd", host, port)
    return _Target("socket", host, port)


def _split_host_port(text: str) -> tuple[str, int | None]:
    if any(ch.isspace() or ch in "/?#@" for ch in text):
        raise UriError(f"target {text!r}: not a host, HOST:PORT or a device URI")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise UriError(f"target {text!r}: an IPv6 address is written [ADDRESS]:PORT")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None  # a name, IPv4, or an IPv6 address without a port
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UriError(f"target {text!r}: port {port_text!r} is not a number from 1 to 65535")
    if not host:
        raise UriError(f"target {text!r}: no host")
    return host, int(port_text)


def _uri_target(text: str, scheme: str) -> _Target:
    if scheme == "lpd":
        parsed = DeviceUri.parse(text)
        queue = parsed.path.strip("/")
        # The URI is checked with its queue, or with a stand-in while the queue is to be found.
        check_device_uri(text if queue else _with_queue(parsed, "lp"))
        settings = LpdSettings.from_uri(DeviceUri.parse(_with_queue(parsed, queue or "lp")))
        return _Target("lpd", settings.host, settings.port, queue, text)
    check_device_uri(text)
    if scheme in _IPP_SCHEMES:
        return _Target("ipp", uri=text)
    if scheme == "socket":
        parsed = DeviceUri.parse(text)
        return _Target("socket", parsed.host, parsed.port or RAW_PORT, uri=text)
    return _Target("local", uri=text)


def _with_queue(uri: DeviceUri, queue: str) -> str:
    query = uri.raw.partition("?")[2]
    return f"lpd://{host_port(uri.host, uri.port)}/{queue}" + (f"?{query}" if query else "")


# The timeout is the whole probe's bound, and a result (never an exception) says it ran out.
async def probe_target(
    target: str, *, timeout: float = 10.0,  # noqa: ASYNC109
    raw_port: int = RAW_PORT, lpd_port: int = LPD_PORT,
) -> SetupProbe:
    """Find out how to print on `target` and with which driver (see the module docstring).

    Never raises for an unreachable or odd device (that is `error`); raises UriError for a
    malformed target. Bounded by `timeout` in total. `raw_port` and `lpd_port` are the ports a
    bare HOST is tried on (9100 and 515; tests point them at their own peers).
    """
    parsed = parse_target(target, lpd_port=lpd_port)
    if parsed.kind == "host":
        parsed = dataclasses.replace(parsed, port=raw_port)
    run = _Probe(target, parsed, raw_port, lpd_port)
    deadline = trio.current_time() + timeout
    # The steps end a little early, so a step that runs out says which it was; the outer
    # scope is the hard bound.
    steps_end = deadline - min(0.5, timeout * 0.1)
    with trio.move_on_at(deadline):
        result = await run.run(steps_end)
        log.info("setup probe %s: %s", run.shown, result.error or
                 f"{shown_target(result.device_uri)}, driver "
                 f"{result.choice.driver if result.choice else '-'}")
        return result
    run.findings.append(f"the probe's {timeout:g} s ran out")
    error = f"{run.shown}: no usable answer within {timeout:g} s"
    if run.tried:
        error += f" ({'; '.join(run.tried)})"
    log.info("setup probe %s: %s", run.shown, error)
    return run.result(error=error)


def shown_target(text: str) -> str:
    """A target or device URI as it may be shown: a password in it replaced by ***."""
    if "://" not in text:
        return text
    try:
        return DeviceUri.parse(text).redacted()
    except UriError:
        return text.split("://", 1)[0] + "://***"


class _Probe:
    """One probe's steps and what each found."""

    def __init__(self, target: str, parsed: _Target, raw_port: int, lpd_port: int) -> None:
        self.target = target
        self.shown = shown_target(target)  # without a password, for messages and logs
        self.parsed = parsed
        self.raw_port = raw_port
        self.lpd_port = lpd_port
        self.findings: list[str] = []
        self.tried: list[str] = []  # "port 9100 refused the connection": for the error sentence

    def result(self, *, uri: str = "", choice: DriverChoice | None = None, model: str = "",
               device_id: str = "", error: str = "",
               config_values: Mapping[str, object] | None = None) -> SetupProbe:
        return SetupProbe(self.target, uri, choice, model, device_id, tuple(self.findings),
                          error, dict(config_values or {}))

    async def run(self, deadline: float) -> SetupProbe:
        p = self.parsed
        if p.kind == "local":
            return await self._local(deadline)
        if p.kind == "ipp":
            return await self._ipp(deadline)
        unresolved = await self._unresolved(p.host, deadline)
        if unresolved:
            return self.result(error=f"{self.shown}: {unresolved}")
        if p.kind == "lpd":
            return await self._lpd(deadline, pjl=None)
        share = 0.5 if p.kind == "host" else 1.0  # a bare host keeps half for LPD
        answer = await self._pjl(p.host, p.port, deadline, share)
        if answer.connected:
            return self._socket_result(answer)
        if p.kind == "host":
            return await self._lpd(deadline, pjl=answer)
        return self.result(error=f"{self.shown}: nothing answered: {'; '.join(self.tried)}")

    async def _unresolved(self, host: str, deadline: float) -> str:
        """Why `host` has no address ("" when it has one): said once, not per port."""
        with trio.move_on_at(deadline):
            try:
                await trio.socket.getaddrinfo(host, None, type=trio.socket.SOCK_STREAM)
            except OSError as exc:
                why = f"the name {host!r} does not resolve ({os_reason(exc)})"
                self.findings.append(why)
                return why
            return ""
        self.findings.append(f"the name {host!r} did not resolve in time")
        return f"the name {host!r} did not resolve in time"

    # -- AppSocket and PJL -----------------------------------------------------------------

    async def _pjl(self, host: str, port: int, deadline: float, share: float) -> _PjlAnswer:
        where = f"port {port}"
        left = max(0.0, deadline - trio.current_time())
        try:
            stream = await tcp.connect(host, port, timeout=left * share, what="")
        except TransportError as exc:
            why = _connect_failure(exc)
            self.tried.append(f"{where} {why}")
            self.findings.append(f"{where}: {why}")
            return _PjlAnswer(False, note=why)
        wait = min(max(0.0, deadline - trio.current_time()) * _PJL_SHARE, _PJL_WAIT_MAX)
        messages: list[PjlMessage] = []
        note = ""
        try:
            messages, note = await _ask_pjl(stream, wait)
        finally:
            await trio.aclose_forcefully(stream)
        model = next((m for m in map(model_from_info_id, messages) if m), "")
        languages = next((lang for lang in map(languages_from_config, messages) if lang), ())
        if not messages:
            self.findings.append(f"{where}: accepted the connection but answered no PJL query "
                                 f"({note or f'nothing within {wait:.1f} s'})")
        else:
            said = [f"model {model!r}" if model else "no model",
                    f"languages {', '.join(languages)}" if languages else "no language list"]
            self.findings.append(f"{where}: answered PJL: {'; '.join(said)}")
        return _PjlAnswer(True, model, languages, bool(messages), note)

    def _socket_result(self, answer: _PjlAnswer) -> SetupProbe:
        p = self.parsed
        uri = p.uri or f"socket://{host_port(p.host, p.port)}"
        choice = self._choice_from_pjl(answer, f"port {p.port}")
        self.findings.append(f"chosen: {uri} with {choice.driver}: {choice.reason}")
        return self.result(uri=uri, choice=choice, model=answer.model)

    @staticmethod
    def _choice_from_pjl(answer: _PjlAnswer, where: str) -> DriverChoice:
        if answer.languages:
            return choose_driver(answer.languages, source="PJL INFO CONFIG")
        fallback = choose_driver(())
        if answer.answered:
            why = f"{where} answered PJL but listed no languages"
        else:
            why = f"{where} accepted the connection but answered no PJL query"
        return dataclasses.replace(fallback, reason=f"{why}: plain text is the fallback; set "
                                                    "the driver by hand if it prints more")

    # -- LPD -------------------------------------------------------------------------------

    async def _lpd(self, deadline: float, pjl: _PjlAnswer | None) -> SetupProbe:
        p = self.parsed
        port = p.port if p.kind == "lpd" else self.lpd_port
        template = DeviceUri.parse(p.uri) if p.uri else DeviceUri("lpd", p.host, port)
        queues = (p.queue,) if p.queue else LPD_QUEUES
        found = ""
        for queue in queues:
            settings = LpdSettings.from_uri(DeviceUri.parse(_with_queue(template, queue)))
            unknown = await self._queue_unknown(settings, deadline)
            if unknown is None:  # the server is not there: no other name will do better
                return self.result(error=f"{self.shown}: nothing answered: "
                                         f"{'; '.join(self.tried)}")
            if not unknown:
                found = queue
                break
        if not found:
            asked = ", ".join(queues)
            self.tried.append(f"port {port} (LPD) has none of the queues {asked}")
            return self.result(error=f"{self.shown}: the LPD server on port {port} has no queue "
                                     f"{asked}; give one as lpd://HOST:{port}/QUEUE")
        uri = _with_queue(template, found)
        if pjl is None:  # the languages may still be had from the same host's AppSocket port
            pjl = await self._pjl(p.host, self.raw_port, deadline, _PJL_SHARE)
        if pjl.connected and pjl.languages:
            choice = choose_driver(pjl.languages, source=f"PJL INFO CONFIG on port "
                                                         f"{self.raw_port}")
        else:
            choice = DriverChoice(
                "postscript", "",
                "an LPD queue does not say what it prints: postscript is a guess (the filters "
                "of Unix spoolers take PostScript); override it with --driver or the printer's "
                "driver setting")
        self.findings.append(f"chosen: {uri} with {choice.driver}: {choice.reason}")
        return self.result(uri=uri, choice=choice, model=pjl.model if pjl.connected else "")

    async def _queue_unknown(self, settings: LpdSettings, deadline: float) -> bool | None:
        """Whether the server calls the queue unknown; None when nothing answered."""
        where = f"port {settings.port}"
        left = max(0.0, deadline - trio.current_time())
        try:
            stream = await tcp.connect(settings.host, settings.port,
                                       timeout=min(left, settings.contimeout),
                                       source_ports=settings.source_ports, what="")
        except TransportError as exc:
            why = _connect_failure(exc)
            self.tried.append(f"{where} {why}")
            self.findings.append(f"{where} (LPD): {why}")
            return None
        try:
            with trio.move_on_at(deadline) as scope:
                await stream.send_all(queue_state_command(settings.queue))
                reply = await tcp.read_until_eof(stream, _REPLY_LIMIT)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            why = f"lost the connection ({os_reason(exc)})"
            self.tried.append(f"{where} {why}")
            self.findings.append(f"{where} (LPD): queue {settings.queue!r}: {why}")
            return None
        finally:
            await trio.aclose_forcefully(stream)
        if scope.cancelled_caught:
            self.tried.append(f"{where} accepted the connection but sent no queue state")
            self.findings.append(f"{where} (LPD): queue {settings.queue!r}: no answer in time")
            return None
        state = parse_queue_state(reply.decode("utf-8", "replace"))
        if state.unknown_queue:
            self.findings.append(f"{where} (LPD): queue {settings.queue!r}: unknown to the "
                                 f"server ({state.message})")
        else:
            self.findings.append(f"{where} (LPD): queue {settings.queue!r} answered: "
                                 f"{state.message}")
        return state.unknown_queue

    # -- USB, serial and file --------------------------------------------------------------

    async def _ipp(self, deadline: float) -> SetupProbe:
        """An IPP printer or print server: its Get-Printer-Attributes says what it accepts;
        the driver makes what it lacks (drivers.ippcaps)."""
        uri = self.parsed.uri
        transport = open_transport(uri)
        shown = transport.uri.redacted()
        if not isinstance(transport, IppTransport):  # the scheme table says otherwise: a bug
            raise TypeError(f"{uri}: not an IPP transport")
        with trio.move_on_at(deadline):
            try:
                answer = await transport.printer_attributes()
            except DriverError as exc:
                self.findings.append(f"{shown}: {exc.message}")
                return self.result(error=f"{self.shown}: {exc.message}")
            caps = capabilities_from_attributes(answer)
            choice = choose_ipp_driver(caps.formats)
            values = printer_config_values(caps, choice)
            self.findings.append(
                f"{shown}: IPP {', '.join(caps.ipp_versions) or '1.0'}; formats "
                f"{', '.join(caps.formats) or 'none listed'}; "
                f"{'Create-Job' if caps.create_job else 'Print-Job only'}")
            self.findings.append(f"chosen: {shown} with {choice.driver}: {choice.reason}")
            return self.result(uri=uri, choice=choice, model=caps.make_and_model,
                               device_id="", config_values=values)
        self.tried.append(f"{shown} did not answer")
        return self.result(error=f"{self.shown}: no answer from the IPP device")

    async def _local(self, deadline: float) -> SetupProbe:
        uri = self.parsed.uri
        left = max(0.0, deadline - trio.current_time())
        probed = await discovery.probe(uri, timeout=left)
        if probed.reachable is False:
            error = probed.error or (probed.status.message if probed.status else "") \
                or "unreachable"
            self.findings.append(f"{probed.uri}: {error}")
            return self.result(error=f"{self.shown}: {error}")
        device_id = probed.device_id or ""
        if device_id:
            choice = choice_for_device_id(device_id)
            model = parse_device_id(device_id).make_and_model
            self.findings.append(f"{probed.uri}: device id {device_id}")
        else:
            choice = dataclasses.replace(
                choose_driver(()), reason=f"{probed.uri} sends no device id: plain text is the "
                                          "fallback; set the driver by hand if it prints more")
            model = ""
            self.findings.append(f"{probed.uri}: no device id")
        self.findings.append(f"chosen: {uri} with {choice.driver}: {choice.reason}")
        return self.result(uri=uri, choice=choice, model=model, device_id=device_id)


async def _ask_pjl(stream: trio.SocketStream, wait: float) -> tuple[list[PjlMessage], str]:
    """Send the INFO ID / INFO CONFIG query; collect the replies for `wait` seconds at most,
    less once both came. Returns them and a note on how it ended when that was not normal."""
    parser = PjlReplyParser()
    messages: list[PjlMessage] = []
    received = 0
    with trio.move_on_after(wait):
        try:
            await stream.send_all(SETUP_QUERY)
            while received < _REPLY_LIMIT:
                data = await stream.receive_some(tcp.CHUNK)
                if not data:
                    return messages, "" if messages else "it closed the connection"
                received += len(data)
                messages += parser.feed(data)
                headers = {message.header for message in messages}
                if {"INFO ID", "INFO CONFIG"} <= headers:
                    return messages, ""
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            return messages, f"the connection broke ({os_reason(exc)})"
    return messages, ""


def _connect_failure(exc: TransportError) -> str:
    """`tcp.connect`'s message as the end of a sentence: "refused the connection"."""
    text = exc.message
    if text.endswith("connection refused"):
        return "refused the connection"
    if " after " in text and text.startswith("no connection"):
        return "did not accept a connection in time"
    return text.rpartition(": ")[2] or text


def describe_setup(result: SetupProbe) -> list[str]:
    """The lines `ipp-gateway add` prints: what was found and why this driver."""
    lines = [f"target:     {shown_target(result.target)}"]
    if result.device_uri:
        lines.append(f"device uri: {shown_target(result.device_uri)}")
    if result.make_and_model:
        lines.append(f"model:      {result.make_and_model}")
    if result.device_id:
        lines.append(f"device id:  {result.device_id}")
    if result.choice is not None:
        lines.append(f"driver:     {result.choice.driver} ({result.choice.reason})")
    for index, finding in enumerate(result.findings):
        lines.append(("tried:      " if index == 0 else "            ") + finding)
    if result.error:
        lines.append(f"error:      {result.error}")
    return lines


PROBE_SETUP_TIMEOUT = 10.0  # seconds for an IPP device's capabilities, after its status


async def _setup_lines(uri: str) -> list[str]:
    """What `probe` adds for an IPP device: what it accepts and the driver set-up chooses."""
    if DeviceUri.parse(uri).scheme not in _IPP_SCHEMES:
        return []
    setup = await probe_target(uri, timeout=PROBE_SETUP_TIMEOUT)
    return [line for line in describe_setup(setup)
            if not line.startswith(("target:", "device uri:", "model:"))]


def probe_command(uri: str, *, verbose: bool = False) -> int:
    """`probe DEVICE_URI` (discovery.probe_command), with an IPP device's capabilities."""
    return discovery.probe_command(uri, verbose=verbose, more=_setup_lines)
