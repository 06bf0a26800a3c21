"""Device URIs checked once, by each transport's own parser (`check_device_uri`), and the file
transport's promise never to replace a finished output file (issue 9, items 3, 5, 11)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from drivers.errors import Outcome, TransportError, UriError, os_reason
from drivers.testing import FailureCase, check_transport
from drivers.transport import JobInfo, check_device_uri, known_schemes, open_transport
from drivers.transports import file as file_transport
from drivers.uri import DeviceUri

# -- one parser: what check_device_uri refuses, the transport refuses, in the same words ------

REFUSED = {
    # the examples of issue 9, item 5
    "socket://printer?pjll=on": "pjll: unknown option for socket:// (valid: contimeout, pjl, "
                                "status, timeout, waiteof)",
    "socket://printer?contimeout=abc": "contimeout='abc' is not a number of seconds",
    "lpd://printer/q?mode=fast": "mode='fast' is not one of spool, stream",
    "serial:/dev/ttyS0?flow=xon": "flow='xon' is not one of none, soft, hard, dtrdsr",
    "lpd://printer": "no queue: an LPD URI is lpd://HOST[:PORT]/QUEUE",
    "lpd://printer/": "no queue",
    # missing hosts, bad paths
    "socket://": "no host: a socket:// URI is socket://HOST[:PORT]",
    "lpd:///q": "no host",
    "socket://printer:0": "port 0 is not a port",
    "lpd://printer/my queue": "queue 'my queue' has spaces or control characters",
    "serial:ttyS0": "'ttyS0' is not a device path",
    "serial://dev/ttyUSB0": "a serial URI is serial:/dev/ttyUSB0 (one slash, no host)",
    "serial:/etc/hostname": "/etc/hostname is not a serial port",
    "file://tmp/out/": "a file URI is file:///tmp/out/ (three slashes)",
    "file:relative/out": "no absolute path",
    # unknown options everywhere, all named
    "lpd://printer/q?banner=on&copies=2&sanitize=no": "copies, sanitize: unknown options for "
        "lpd:// (valid: banner, contimeout, format, mode, order, reserve, status, timeout)",
    "serial:/dev/ttyS0?speed=9600": "speed: unknown option for serial: (valid: baud, bits, "
                                    "flow, parity, stop, timeout)",
    "usb://04f9:2015?serail=A1": "serail: unknown option for usb:// (valid: interface, "
                                 "serial, softreset, timeout)",
    "file:///tmp/out/?mode=append": "mode: unknown option for file:// (valid: none: it takes "
                                    "no options)",
    # values
    "socket://printer?pjl=2": "pjl='2' is not on or off (yes/no, true/false and 1/0 are "
                              "accepted too)",
    "socket://printer?waiteof=maybe": "waiteof='maybe' is not on or off",
    "socket://printer?timeout=-1": "timeout='-1' is not a number of seconds from 0 to 604800",
    "socket://printer?timeout=nan": "timeout='nan' is not a number of seconds",
    "lpd://printer/q?contimeout=inf": "contimeout='inf' is not a number of seconds",
    "socket://printer?timeout=\uff11": "is not a number of seconds",  # a full-width digit
    "usb://04f9:2015?interface=\u00b2": "interface='²' is not a whole number",
    "serial:/dev/ttyS0?baud=fast": "baud='fast' is not a whole number",
    "serial:/dev/ttyS0?bits=9": "bits=9 is outside 5..8",
    "serial:/dev/ttyS0?stop=3": "stop='3' is not one of 1, 1.5, 2",
    "lpd://printer/q?format=zz": "format='zz' is not one of",
    "usb://04f9": "a USB URI is usb://VENDOR:PRODUCT",
}


@pytest.mark.parametrize(("uri", "words"), list(REFUSED.items()), ids=list(REFUSED))
def test_check_and_transport_refuse_alike(uri: str, words: str) -> None:
    with pytest.raises(UriError) as checked:
        check_device_uri(uri)
    assert words in str(checked.value)
    with pytest.raises(TransportError) as opened:
        open_transport(uri)
    # The same parser, so the same words; and a bad URI stops the printer, never a retry.
    assert opened.value.message == str(checked.value)
    assert opened.value.outcome is Outcome.STOP_PRINTER


ACCEPTED = [
    "socket://printer", "socket://printer:9101?pjl=on&status=pjl&contimeout=5&waiteof=off",
    "socket://[::1]:9100?waiteof=2.5&timeout=0", "socket://printer?PJL=On",
    "lpd://printer/q", "lpd://printer:1515/q?reserve=rfc1179&mode=stream&order=data,control"
    "&banner=off&format=o&timeout=10&contimeout=3&status=long", "lpd://[fe80::1]/raw",
    "serial:/dev/ttyS0?baud=115200&bits=7&parity=even&stop=1.5&flow=hard&timeout=30",
    "serial:/dev/ttyUSB-not-plugged-in?flow=dtrdsr",  # a missing adapter: waited for, not bad
    "usb://04f9:2015?serial=A1&interface=1&timeout=5&softreset=off", "usb:04F9:2015",
    "file:///var/tmp/out/", "file:///var/tmp/out.prn", "file://localhost/var/tmp/x/",
    "file:///dev/usb/lp0",
]


@pytest.mark.parametrize("uri", ACCEPTED)
def test_check_accepts_what_the_transport_takes(uri: str) -> None:
    check_device_uri(uri)
    check_device_uri(DeviceUri.parse(uri))
    assert open_transport(uri).uri.raw == uri


@pytest.mark.parametrize(
    ("uri", "option"),
    [("socket://p?pjl={}", "pjl"), ("socket://p?waiteof={}", "waiteof"),
     ("lpd://p/q?banner={}", "banner"), ("usb://04f9:2015?softreset={}", "softreset")],
)
def test_every_switch_takes_the_same_words(uri: str, option: str) -> None:
    """on/off as CUPS spells them, and yes/no, true/false, 1/0 as CUPS also takes them:
    everywhere, not in one transport only."""
    for word in ("on", "off", "yes", "no", "true", "false", "1", "0", "ON", "Yes"):
        check_device_uri(uri.format(word))
    with pytest.raises(UriError, match=f"{option}='enabled' is not on or off"):
        check_device_uri(uri.format("enabled"))


def test_switch_words_mean_what_they_say() -> None:
    on = open_transport("socket://p?pjl=yes&waiteof=true")
    off = open_transport("socket://p?pjl=no&waiteof=false")
    assert (on.settings.pjl, on.settings.eof_wait) == (True, 90.0)  # type: ignore[attr-defined]
    assert (off.settings.pjl, off.settings.eof_wait) == (False, 0.0)  # type: ignore[attr-defined]


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(UriError) as caught:
        check_device_uri("gopher://printer/ipp/print")
    assert f"no transport for scheme 'gopher' (known: {', '.join(known_schemes())})" in str(
        caught.value)


@pytest.mark.parametrize(
    ("uri", "words"),
    [("socket://[::1:9100", "Invalid IPv6 URL"), ("socket://printer:99999", "bad port"),
     ("socket://printer?pjl=on&PJL=off", "option 'pjl' is given twice"),
     ("printer.local:9100", "no transport for scheme 'printer.local'"),
     ("/dev/usb/lp0", "has no scheme")],
)
def test_malformed_uris_are_uri_errors(uri: str, words: str) -> None:
    with pytest.raises(UriError, match=words.replace("[", r"\[").replace(".", r"\.")):
        check_device_uri(uri)


def test_passwords_stay_out_of_uri_errors() -> None:
    with pytest.raises(UriError) as caught:
        check_device_uri("lpd://alice:s3cr%40t@printer/q?colour=on")
    assert "s3cr" not in str(caught.value) and "alice:***@printer" in str(caught.value)
    with pytest.raises(UriError) as twice:
        check_device_uri("lpd://alice:s3cret@printer/q?a=1&a=2")
    assert "s3cret" not in str(twice.value)


# -- system errors in words ----------------------------------------------------------------


def test_os_reasons_are_words_not_tuples() -> None:
    refused = OSError(errno.ECONNREFUSED,
                      "Error connecting to ('127.0.0.1', 19999): Connection refused")
    assert os_reason(refused) == "connection refused"
    try:  # trio's "all attempts failed": the attempts are the cause
        raise OSError("all attempts to connect to h:1 failed") from ExceptionGroup(
            "attempts", [OSError(errno.EHOSTUNREACH, "Error connecting to ('::1', 1, 0, 0)")])
    except OSError as attempts:
        assert os_reason(attempts) == "no route to host"
    assert os_reason(OSError(-2, "Name or service not known")) == "name or service not known"
    assert os_reason(ValueError("USB stalled")) == "USB stalled"


# -- file:///dir/ never replaces a finished file ---------------------------------------------


async def print_job(uri: str, job_id: int, data: bytes) -> Path | None:
    transport = open_transport(uri)
    assert isinstance(transport, file_transport.FileTransport)
    await transport.start_job(JobInfo(job_id=job_id))
    await transport.send_all(data)
    await transport.end_job()
    return transport.last_output


def outputs(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


async def test_job_numbers_starting_again_take_the_next_free_name(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/out/"
    assert await print_job(uri, 42, b"first life") == tmp_path / "out" / "job-00042.prn"
    await print_job(uri, 7, b"another job")
    # The spool was reset: job numbers start again and 42 comes round twice more.
    assert await print_job(uri, 42, b"second life") == tmp_path / "out" / "job-00042-1.prn"
    assert await print_job(uri, 42, b"third life") == tmp_path / "out" / "job-00042-2.prn"
    assert outputs(tmp_path / "out") == {
        "job-00007.prn": b"another job", "job-00042-1.prn": b"second life",
        "job-00042-2.prn": b"third life", "job-00042.prn": b"first life",
    }


async def test_directory_without_trailing_slash_is_a_directory(tmp_path: Path) -> None:
    await print_job(f"file://{tmp_path}", 1, b"one")
    await print_job(f"file://{tmp_path}", 1, b"two")
    assert outputs(tmp_path) == {"job-00001.prn": b"one", "job-00001-1.prn": b"two"}


async def test_a_resumed_job_replaces_only_its_own_partial(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/"
    (tmp_path / "job-00005.prn").write_bytes(b"finished long ago")
    (tmp_path / "job-00005.prn.part").write_bytes(b"half of the job, then a crash")
    await print_job(uri, 5, b"the whole job")
    assert outputs(tmp_path) == {"job-00005.prn": b"finished long ago",
                                 "job-00005-1.prn": b"the whole job"}


async def test_a_partial_linked_to_a_finished_file_is_never_written_through(
    tmp_path: Path,
) -> None:
    """A crash between link(2) and unlink(2) leaves the partial as a second name of the
    finished file: truncating it would empty the finished file."""
    finished = tmp_path / "job-00009.prn"
    finished.write_bytes(b"printed before the crash")
    os.link(finished, tmp_path / "job-00009.prn.part")
    transport = open_transport(f"file://{tmp_path}/")
    await transport.start_job(JobInfo(job_id=9))
    assert finished.read_bytes() == b"printed before the crash"
    await transport.send_all(b"again")
    await transport.end_job()
    assert outputs(tmp_path) == {"job-00009.prn": b"printed before the crash",
                                 "job-00009-1.prn": b"again"}


async def test_a_cancelled_job_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "job-00003.prn").write_bytes(b"kept")
    transport = open_transport(f"file://{tmp_path}/")
    await transport.start_job(JobInfo(job_id=3))
    await transport.send_all(b"half")
    await transport.abort_job()
    assert outputs(tmp_path) == {"job-00003.prn": b"kept"}


def test_concurrent_jobs_never_land_on_one_name(tmp_path: Path) -> None:
    count = 16
    partials = []
    for index in range(count):
        partial = tmp_path / f"p{index}.part"
        partial.write_bytes(b"job %d" % index)
        partials.append(partial)
    start = threading.Barrier(count)
    landed: list[Path] = []

    def run(partial: Path) -> None:
        start.wait()
        landed.append(file_transport.publish(partial, tmp_path / "job-00001.prn"))

    threads = [threading.Thread(target=run, args=(p,)) for p in partials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(landed)) == count
    assert sorted(p.read_bytes() for p in landed) == sorted(b"job %d" % i for i in range(count))
    assert not any(p.exists() for p in partials)


async def test_without_hard_links_names_are_claimed_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # as FAT answers link(2)

    monkeypatch.setattr(os, "link", no_links)
    uri = f"file://{tmp_path}/"
    await print_job(uri, 2, b"one")
    await print_job(uri, 2, b"two")
    assert outputs(tmp_path) == {"job-00002.prn": b"one", "job-00002-1.prn": b"two"}


async def test_a_named_file_is_replaced_by_each_job(tmp_path: Path) -> None:
    """`file:///path/out.prn` names the one output the admin wants: each job replaces it."""
    uri = f"file://{tmp_path}/out.prn"
    await print_job(uri, 1, b"one")
    await print_job(uri, 2, b"two")
    assert outputs(tmp_path) == {"out.prn": b"two"}


async def test_file_transport_passes_the_conformance_suite(tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def read(job: JobInfo, complete: bool) -> bytes | None:
        path = out / f"job-{job.job_id:05d}.prn"
        return path.read_bytes() if path.exists() else None

    async def break_directory() -> None:
        out.rename(tmp_path / "moved")
        out.write_bytes(b"a file where the directory was")

    async def restore_directory() -> None:
        out.unlink()
        (tmp_path / "moved").rename(out)

    gone = FailureCase("output directory replaced by a file", break_directory,
                       restore_directory, Outcome.STOP_PRINTER, "other")
    passed = await check_transport(lambda: open_transport(f"file://{out}/"), read,
                                   failures=[gone])
    assert passed[-1] == "failure output directory replaced by a file -> stop-printer"
    assert not list(out.glob("*.part")) and not list(out.glob("*-1.prn"))


def test_addresses_in_words() -> None:
    assert DeviceUri.parse("socket://[::1]:9100").host_port == "[::1]:9100"
    assert DeviceUri.parse("lpd://Printer.local/q").host_port == "printer.local"
    assert DeviceUri.parse("serial:/dev/ttyS0").host_port == ""
    assert DeviceUri.parse("socket://p?PJL=on&Status=pjl").options == {"pjl": "on",
                                                                        "status": "pjl"}
