#!/usr/bin/env python3
"""The dashboard's cost and speed (issue 13): Get-Printer-Attributes throughput and print
latency with 0 and 20 dashboards open, how fast a job's state change reaches a browser,
and idle RSS with the dashboard served.

Run from the repository root: `.venv/bin/python bench/bench_dashboard.py` (~40 s). A
"dashboard" is a WebSocket client of /api/live that reads every update, as the page does
(the page's rendering is the browser's cost, not the gateway's). Throughput is wrk against
the status poll (bench_gpa.py's request); print latency is from sending Print-Job to the
job-completed update on an observing WebSocket; state-change latency is from sending
Release-Job for a held job to its first update on the WebSocket.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gpa import (
    VARIANTS,
    Server,
    get_printer_attributes,
    idle_rss_kib,
    lua_script,
    run_wrk,
)
from tests.peers.gateway_proc import start_gateway

JOB_ID = struct.Struct(">I")


def ipp_message(operation: int, uri: str, extra: bytes = b"", job: bytes = b"") -> bytes:
    def attr(tag: int, name: str, value: bytes) -> bytes:
        return struct.pack(">BH", tag, len(name)) + name.encode() + \
            struct.pack(">H", len(value)) + value
    return b"".join([
        struct.pack(">BBHI", 2, 0, operation, 1), b"\x01",
        attr(0x47, "attributes-charset", b"utf-8"),
        attr(0x48, "attributes-natural-language", b"en"),
        attr(0x45, "printer-uri", uri.encode()),
        attr(0x42, "requesting-user-name", b"bench"), extra,
        (b"\x02" + job) if job else b"", b"\x03"])


async def post(port: int, body: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        head = (f"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/ipp\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n").encode()
        await stream.send_all(head + body)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def job_id_of(reply: bytes) -> int:
    marker = b"\x21\x00\x06job-id\x00\x04"
    at = reply.index(marker) + len(marker)
    return int(JOB_ID.unpack(reply[at:at + 4])[0])


async def hold_and_release(port: int, uri: str, ws: WebSocketConnection) -> float:
    """Seconds from sending Release-Job to the first update of that job on `ws`."""
    keyword = b"indefinite"
    job_attrs = struct.pack(">BH", 0x44, 14) + b"job-hold-until" + \
        struct.pack(">H", len(keyword)) + keyword
    mime = b"application/octet-stream"
    extra = struct.pack(">BH", 0x49, 15) + b"document-format" + struct.pack(">H", len(mime)) \
        + mime
    reply = await post(port, ipp_message(0x0002, uri, extra, job_attrs) + b"held")
    job_id = job_id_of(reply)
    await drain_until(ws, job_id, None, 2.0)  # its creation and hold
    id_attr = struct.pack(">BH", 0x21, 6) + b"job-id" + struct.pack(">H", 4) + \
        JOB_ID.pack(job_id)
    started = time.perf_counter()
    await post(port, ipp_message(0x000D, uri, id_attr))  # Release-Job
    await drain_until(ws, job_id, "any", 10.0)
    return time.perf_counter() - started


async def drain_until(ws: WebSocketConnection, job_id: int, kind: str | None,
                      timeout: float) -> None:  # noqa: ASYNC109
    """Read updates until one about `job_id` (of any kind, with kind "any") or, with kind
    None, until nothing arrives for a moment."""
    with trio.move_on_after(timeout if kind else 0.3):
        while True:
            message = json.loads(await ws.get_message())
            for event in message.get("events", []):
                if kind and event.get("type") == "job" and event["job"]["id"] == job_id \
                        and (kind == "any" or event["kind"] == kind):
                    return


async def print_latency(port: int, uri: str, ws: WebSocketConnection) -> float:
    mime = b"text/plain"
    extra = struct.pack(">BH", 0x49, 15) + b"document-format" + struct.pack(">H", len(mime)) \
        + mime
    started = time.perf_counter()
    reply = await post(port, ipp_message(0x0002, uri, extra) + b"hello\n")
    await drain_until(ws, job_id_of(reply), "job-completed", 30.0)
    return time.perf_counter() - started


async def dashboard(url: str, ready: trio.Event | None, count: list[int]) -> None:
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # the snapshot
        if ready is not None:
            ready.set()
        while True:
            await ws.get_message()
            count[0] += 1


async def run_level(server: Server, dashboards: int, seconds: int, samples: int,
                    workdir: Path) -> dict[str, float]:
    url = f"ws://127.0.0.1:{server.port}/api/live"
    updates = [0]
    async with trio.open_nursery() as nursery:
        for _ in range(dashboards):
            ready = trio.Event()
            nursery.start_soon(dashboard, url, ready, updates)
            await ready.wait()
        async with open_websocket_url(url) as observer:
            await observer.get_message()
            script = workdir / "gpa-status.lua"
            script.write_text(lua_script(get_printer_attributes(server.uri,
                                                                VARIANTS["status"])))

            # Jobs printing while wrk polls: every dashboard gets updates during the run.
            async def traffic() -> None:
                while True:
                    await post(server.port, ipp_message(0x0002, server.uri, b"") + b"x")
                    await trio.sleep(0.2)

            async with trio.open_nursery() as load:
                load.start_soon(traffic)
                gpa = await trio.to_thread.run_sync(run_wrk, server, script, 8, seconds)
                load.cancel_scope.cancel()
            await drain_until(observer, 0, None, 0)
            prints = [await print_latency(server.port, server.uri, observer)
                      for _ in range(samples)]
            changes = [await hold_and_release(server.port, server.uri, observer)
                       for _ in range(samples)]
        nursery.cancel_scope.cancel()
    return {"gpa": gpa.requests_per_s, "print_ms": statistics.median(prints) * 1000,
            "change_ms": statistics.median(changes) * 1000,
            "change_p90_ms": sorted(changes)[int(len(changes) * 0.9) - 1] * 1000,
            "updates": float(updates[0])}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk per level")
    parser.add_argument("--samples", type=int, default=20, help="jobs per latency figure")
    parser.add_argument("--dashboards", type=int, default=20)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        workdir = Path(tmp)
        gateway = start_gateway(workdir / "gw")
        server = Server(gateway.pid, gateway.port, gateway.stop,
                        lambda: gateway.proc.poll() is None)
        try:
            import http.client
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/")
            page = connection.getresponse()
            page.read()
            connection.close()
            time.sleep(0.5)
            rss = idle_rss_kib(server.pid)
            results = {level: trio.run(run_level, server, level, args.duration,
                                       args.samples, workdir)
                       for level in (0, args.dashboards)}
        finally:
            server.stop()
    none, many = results[0], results[args.dashboards]
    print(f"{'dashboards':>10} {'GPA req/s':>10} {'print ms':>9} {'change ms':>10} "
          f"{'p90 ms':>7} {'updates':>8}")
    for level, row in results.items():
        print(f"{level:>10} {row['gpa']:10.0f} {row['print_ms']:9.1f} {row['change_ms']:10.1f} "
              f"{row['change_p90_ms']:7.1f} {row['updates']:8.0f}")
    print(f"GPA with {args.dashboards} dashboards: {many['gpa'] / none['gpa']:.2f}x of none; "
          f"print latency {many['print_ms'] / none['print_ms']:.2f}x")
    print(f"idle RSS after serving the dashboard page: {rss / 1024:.1f} MB "
          f"(page status {page.status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
