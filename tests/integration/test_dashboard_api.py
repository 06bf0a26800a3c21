"""The dashboard's JSON API and live feed against a real gateway process: the snapshot, the
login (426 over plain HTTP, 401 without credentials), actions refused without a login or
without the CSRF token or across sites, an admin's cancel, and the WebSocket feed showing a
job's life without a reload. (The page itself, in Chromium: test_dashboard_browser.py.)"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from gateway.passwords import PasswordFile
from ippwire.enums import Operation, ValueTag
from ippwire.writer import request
from tests.peers import CORPUS_DIR
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK, free_port
from tests.support.ipps_client import basic, send

ADMIN, USER = ("admin", "admin-pw"), ("carol", "carol-pw")
PDF = CORPUS_DIR / "testpage-1p-vector.pdf"


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("dashboard")
    passwords = PasswordFile(workdir / "spool" / "passwd")
    passwords.set(*ADMIN, admin=True)
    passwords.set(*USER, admin=False)
    with start_configured_gateway(workdir, (PrinterTable("office"),), log_level="info",
                                  extra_toml="[auth]\nenabled = true\n") as running:
        yield running


def call(gateway: GatewayProcess, method: str, path: str, *, tls: bool = True,
         credentials: tuple[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(LOOPBACK, gateway.port, timeout=30, context=_context())
        if tls else http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=30))
    sent = dict(headers or {})
    if credentials is not None:
        sent["Authorization"] = basic(*credentials)
    try:
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        body = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    parsed = json.loads(body) if found.get("content-type") == "application/json" else body
    return response.status, found, parsed


def token_of(gateway: GatewayProcess, credentials: tuple[str, str]) -> str:
    status, _, body = call(gateway, "GET", "/api/login", credentials=credentials)
    assert status == 200 and body["user"] == credentials[0], body
    return str(body["token"])


def held_job(gateway: GatewayProcess, credentials: tuple[str, str] | None = None) -> int:
    message = request(Operation.PRINT_JOB, printer_uri=f"ipps://{LOOPBACK}/ipp/print/office",
                      user="carol", attrs={
                          "document-format": (ValueTag.MIME_MEDIA_TYPE,
                                              "application/octet-stream")},
                      job_attrs={"job-hold-until": (ValueTag.KEYWORD, "indefinite")})
    answer = send(gateway.port, "/ipp/print/office", message, b"a held job",
                  credentials=credentials)
    assert answer.message is not None and answer.message.code == 0, answer
    group = answer.message.groups[1]
    job_id = group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def job_in(state: dict[str, Any], job_id: int) -> dict[str, Any]:
    return next(j for j in state["jobs"] if j["id"] == job_id)


def test_the_snapshot_hides_names_until_a_login(gateway: GatewayProcess) -> None:
    job_id = held_job(gateway, USER)
    status, _, anonymous = call(gateway, "GET", "/api/state")
    assert status == 200 and anonymous["type"] == "snapshot"
    assert [p["name"] for p in anonymous["printers"]] == ["office"]
    assert anonymous["server"]["auth_enabled"] is True
    assert len(anonymous["server"]["certificate_sha256"]) == 95
    shown = job_in(anonymous, job_id)
    assert shown["state"] == "held" and "name" not in shown and "owner" not in shown
    _, _, as_admin = call(gateway, "GET", "/api/state", credentials=ADMIN)
    assert job_in(as_admin, job_id)["owner"] == "carol"
    assert as_admin["viewer"] == {"user": "admin", "admin": True, "authenticated": True}


def test_login_needs_tls_and_credentials(gateway: GatewayProcess) -> None:
    status, headers, _ = call(gateway, "GET", "/api/login", tls=False, credentials=ADMIN)
    assert status == 426 and "TLS" in headers["upgrade"]
    status, headers, _ = call(gateway, "GET", "/api/login")
    assert status == 401 and headers["www-authenticate"].startswith("Basic ")
    status, _, _ = call(gateway, "GET", "/api/login", credentials=("admin", "wrong"))
    assert status == 401
    assert token_of(gateway, ADMIN)


def test_actions_need_a_login_and_the_token(gateway: GatewayProcess) -> None:
    job_id = held_job(gateway, USER)
    path = f"/api/jobs/{job_id}/cancel"
    admin_token, user_token = token_of(gateway, ADMIN), token_of(gateway, USER)
    assert call(gateway, "POST", path)[0] == 401
    assert call(gateway, "POST", path, tls=False)[0] == 426
    assert call(gateway, "POST", path, credentials=ADMIN)[0] == 403  # no token
    status, _, body = call(gateway, "POST", path, credentials=ADMIN,
                           headers={"X-CSRF-Token": user_token})  # someone else's
    assert status == 403 and "CSRF" in body.decode()
    status, _, body = call(gateway, "POST", path, credentials=ADMIN, headers={
        "X-CSRF-Token": admin_token, "Origin": "https://evil.example"})
    assert status == 403
    _, _, state = call(gateway, "GET", "/api/state", credentials=ADMIN)
    assert job_in(state, job_id)["state"] == "held"  # nothing refused changed anything
    # Another user's job: the operation policy refuses it, as over IPP.
    other = held_job(gateway, ADMIN)
    status, _, body = call(gateway, "POST", f"/api/jobs/{other}/cancel", credentials=USER,
                           headers={"X-CSRF-Token": user_token})
    assert status == 403 and body["status"] == "client-error-not-authorized"
    status, _, body = call(gateway, "POST", path, credentials=ADMIN,
                           headers={"X-CSRF-Token": admin_token})
    assert status == 200 and body["status"] == "successful-ok", body
    _, _, state = call(gateway, "GET", "/api/state", credentials=ADMIN)
    assert job_in(state, job_id)["state"] == "canceled"
    audit = (gateway.spool / "audit.log").read_text().splitlines()
    assert any('"operation":"Cancel-Job"' in line and '"user":"admin"' in line
               and f'"job":{job_id}' in line for line in audit)


def test_printer_actions_and_the_test_page(gateway: GatewayProcess) -> None:
    token = token_of(gateway, ADMIN)
    before = len(gateway.output_files("office"))
    for verb in ("pause", "resume", "identify"):
        status, _, body = call(gateway, "POST", f"/api/printers/office/{verb}",
                               credentials=ADMIN, headers={"X-CSRF-Token": token})
        assert status == 200, body
    status, _, body = call(gateway, "POST", "/api/printers/office/test-page",
                           credentials=ADMIN, headers={"X-CSRF-Token": token})
    # The raw test queue takes text/plain (tests/peers/gateway_proc.RAW_TEST_FORMATS).
    assert status == 200 and isinstance(body["job"], int), body
    assert call(gateway, "POST", "/api/printers/office/explode", credentials=ADMIN,
                headers={"X-CSRF-Token": token})[0] == 404
    assert call(gateway, "POST", "/api/printers/nosuch/pause", credentials=ADMIN,
                headers={"X-CSRF-Token": token})[0] == 404
    wait_files(gateway, before + 1)
    printed = sorted(gateway.output_files("office"))[-1].read_bytes()
    assert printed.startswith(b"%!PS-Adobe-3.0") or b"Test page: office" in printed


def wait_files(gateway: GatewayProcess, count: int) -> None:
    for _ in range(300):
        if len(gateway.output_files("office")) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count} output files expected: {gateway.output_files('office')}")


async def test_the_live_feed_follows_a_job_without_a_reload(gateway: GatewayProcess) -> None:
    token = await trio.to_thread.run_sync(token_of, gateway, ADMIN)
    url = f"wss://{LOOPBACK}:{gateway.port}/api/live"
    async with open_websocket_url(url, ssl_context=_context()) as ws:
        first = json.loads(await ws.get_message())
        assert first["type"] == "snapshot"
        await ws.send_message(json.dumps({"type": "login", "token": token}))
        again = json.loads(await ws.get_message())
        assert again["type"] == "snapshot" and again["viewer"]["user"] == "admin"
        job_id = await trio.to_thread.run_sync(held_job, gateway, USER)
        seen: list[tuple[str, str]] = []
        with trio.fail_after(30):
            while ("job-state-changed", "held") not in seen:
                message = json.loads(await ws.get_message())
                for event in message.get("events", []):
                    if event["type"] == "job" and event["job"]["id"] == job_id:
                        seen.append((event["kind"], event["job"]["state"]))
                        assert event["job"]["owner"] == "carol"  # the admin sees it whole
        assert seen[0][0] == "job-created"
        status, _, _ = await trio.to_thread.run_sync(lambda: call(
            gateway, "POST", f"/api/jobs/{job_id}/cancel", credentials=ADMIN,
            headers={"X-CSRF-Token": token}))
        assert status == 200
        with trio.fail_after(30):
            while True:
                message = json.loads(await ws.get_message())
                done = [e for e in message.get("events", []) if e["type"] == "job"
                        and e["job"]["id"] == job_id and e["kind"] == "job-completed"]
                if done:
                    assert done[0]["job"]["state"] == "canceled"
                    break


def wait_state(gateway: GatewayProcess, check: Callable[[dict[str, Any]], bool]
               ) -> dict[str, Any]:
    for _ in range(300):
        status, _, state = call(gateway, "GET", "/api/state", credentials=ADMIN)
        if status == 200 and check(state):
            return state
        time.sleep(0.1)
    raise AssertionError("the dashboard's state never got there")


def test_a_printer_added_through_the_form_prints_then_goes(
        gateway: GatewayProcess, tmp_path: Path) -> None:
    token = token_of(gateway, ADMIN)
    out = tmp_path / "added"
    out.mkdir()
    config_before = (gateway.workdir / "gateway.toml").read_text()
    table = {"name": "added", "device": f"{out.as_uri()}/", "driver": "postscript",
             "location": "Room 3"}
    user_token = token_of(gateway, USER)
    assert post_json(gateway, "/api/printers", table, USER, user_token)[0] == 403
    bad = dict(table, device="bogus://x")
    status, body = post_json(gateway, "/api/printers", bad, ADMIN, token)
    assert status == 400 and "bogus" in body["error"]
    status, body = post_json(gateway, "/api/printers", table, ADMIN, token)
    assert status == 202, body
    state = wait_state(gateway, lambda s: "added" in [p["name"] for p in s["printers"]])
    added = next(p for p in state["printers"] if p["name"] == "added")
    assert added["driver"] == "postscript" and added["location"] == "Room 3"
    text = (gateway.workdir / "gateway.toml").read_text()
    assert text.startswith(config_before.rstrip("\n")) and 'name = "added"' in text
    # It prints: PDF in, PostScript out.
    message = request(Operation.PRINT_JOB, printer_uri=f"ipps://{LOOPBACK}/ipp/print/added",
                      user="carol", attrs={"document-format": (ValueTag.MIME_MEDIA_TYPE,
                                                               "application/pdf")})
    answer = send(gateway.port, "/ipp/print/added", message, PDF.read_bytes())
    assert answer.message is not None and answer.message.code == 0, answer
    for _ in range(600):
        if list(out.glob("job-*.prn")):
            break
        time.sleep(0.1)
    printed = list(out.glob("job-*.prn"))
    assert printed and printed[0].read_bytes().startswith(b"%!PS"), printed
    status, body = post_json(gateway, "/api/printers/added/edit", {"info": "Added laser"},
                             ADMIN, token)
    assert status == 202, body
    wait_state(gateway, lambda s: any(p["name"] == "added" and p["info"] == "Added laser"
                                      for p in s["printers"]))
    status, body = post_json(gateway, "/api/printers/added/remove", {}, ADMIN, token)
    assert status == 202, body
    wait_state(gateway, lambda s: "added" not in [p["name"] for p in s["printers"]])
    assert 'name = "added"' not in (gateway.workdir / "gateway.toml").read_text()


def post_json(gateway: GatewayProcess, path: str, body: dict[str, Any],
              credentials: tuple[str, str], token: str) -> tuple[int, Any]:
    connection = http.client.HTTPSConnection(LOOPBACK, gateway.port, timeout=30,
                                             context=_context())
    try:
        connection.request("POST", path, body=json.dumps(body).encode(), headers={
            "Authorization": basic(*credentials), "X-CSRF-Token": token,
            "Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, json.loads(data) if data.startswith(b"{") else data


def test_probe_and_devices(gateway: GatewayProcess) -> None:
    token = token_of(gateway, ADMIN)
    status, _, body = call(gateway, "GET", "/api/devices", credentials=ADMIN)
    assert status == 200 and isinstance(body["devices"], list)
    assert call(gateway, "GET", "/api/devices", credentials=USER)[0] == 403
    closed = free_port()
    status, body = post_json(gateway, "/api/probe", {"uri": f"socket://{LOOPBACK}:{closed}"},
                             ADMIN, token)
    assert status == 200 and body["ok"] is False and body["reachable"] is False, body
    status, body = post_json(gateway, "/api/probe", {"uri": "nonsense"}, ADMIN, token)
    assert status == 400
