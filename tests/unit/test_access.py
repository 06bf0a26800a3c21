"""Who may connect and how many at once: the CIDR rules, the cap accounting, the listener's
admission and its accept loop when descriptors run out."""

from __future__ import annotations

import errno
import ipaddress
import logging
import time

import pytest
import trio
import trio.testing

from gateway.access import (
    LOCAL,
    AccessRules,
    ConnectionCounter,
    Refusal,
    Verdict,
    effective_cap,
    parse_address,
    parse_rule,
)
from gateway.ratelimit import REFUSAL_LOG_LIMITER
from gateway.server import listener
from gateway.server.listener import Admission

LAN = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("fd00::/64")]


def lan_rules(allow: tuple[str, ...] = (LOCAL,), deny: tuple[str, ...] = ()) -> AccessRules:
    return AccessRules.parse(allow, deny).with_local(LAN)


@pytest.fixture(autouse=True)
def fresh_refusal_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REFUSAL_LOG_LIMITER, "_buckets", type(REFUSAL_LOG_LIMITER._buckets)())


# -- the rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("peer", "allowed"), [
    ("127.0.0.1", True), ("127.9.8.7", True), ("::1", True),
    ("192.0.2.55", True), ("fd00::1234", True),  # the host's own subnets
    ("::ffff:127.0.0.1", True), ("::ffff:192.0.2.9", True),  # IPv4 on a dual-stack socket
    ("fe80::1%eth0", False), ("198.51.100.1", False), ("::ffff:198.51.100.1", False),
    ("10.1.2.3", False), ("2001:db8::1", False), ("", False), ("/run/socket", False),
])
def test_default_allows_loopback_and_the_hosts_subnets(peer: str, allowed: bool) -> None:
    assert lan_rules().allows(peer) is allowed


def test_without_local_networks_only_loopback_is_local() -> None:
    rules = AccessRules()
    assert rules.allows("127.0.0.1") and rules.allows("::ffff:127.0.0.2")
    assert not rules.allows("192.0.2.55")


def test_deny_wins_over_allow() -> None:
    rules = lan_rules(allow=(LOCAL, "10.0.0.0/8"), deny=("192.0.2.128/25", "10.9.0.0/16"))
    assert rules.check("192.0.2.1") is Verdict.ALLOWED
    assert rules.check("192.0.2.200") is Verdict.DENIED
    assert rules.check("::ffff:192.0.2.200") is Verdict.DENIED
    assert rules.check("10.1.0.1") is Verdict.ALLOWED
    assert rules.check("10.9.0.1") is Verdict.DENIED
    assert rules.check("203.0.113.1") is Verdict.NOT_ALLOWED


def test_an_allow_list_without_local_leaves_loopback_out() -> None:
    rules = lan_rules(allow=("10.0.0.0/8",))
    assert not rules.uses_local
    assert rules.check("127.0.0.1") is Verdict.NOT_ALLOWED
    assert rules.check("::ffff:10.2.3.4") is Verdict.ALLOWED


def test_mapped_rules_match_ipv4_peers() -> None:
    rules = AccessRules.parse(["::ffff:10.0.0.0/104"])
    assert rules.allows("10.200.0.1") and not rules.allows("11.0.0.1")


@pytest.mark.parametrize(("text", "parsed"), [
    ("192.168.1.0/24", ipaddress.ip_network("192.168.1.0/24")),
    ("192.168.1.7/24", ipaddress.ip_network("192.168.1.0/24")),  # host bits are dropped
    ("10.0.0.1", ipaddress.ip_network("10.0.0.1/32")),
    (" fd00::/8 ", ipaddress.ip_network("fd00::/8")),
    ("Local", LOCAL),
])
def test_parse_rule(text: str, parsed: object) -> None:
    assert parse_rule(text) == parsed


@pytest.mark.parametrize("text", ["", "10.0.0.0/33", "10.0.0", "example.com", "fe80::/129",
                                  "10.0.0.0/8 # lan"])
def test_parse_rule_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not an address, a network in CIDR form"):
        parse_rule(text)


def test_parse_address() -> None:
    assert parse_address("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert parse_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_address("nonsense") is None


# -- the caps ----------------------------------------------------------------------------------

def test_counter_caps_per_client_then_in_total() -> None:
    counter = ConnectionCounter(total_cap=5, per_client_cap=3)
    assert [counter.open("a") for _ in range(4)] == [None, None, None, Refusal.PER_CLIENT]
    assert [counter.open("b") for _ in range(3)] == [None, None, Refusal.TOTAL]
    assert (counter.total, counter.of("a"), counter.of("b"), counter.refused) == (5, 3, 2, 2)
    counter.close("a")
    assert counter.open("c") is None
    assert counter.open("c") is Refusal.TOTAL


def test_counter_forgets_clients_with_no_connection() -> None:
    counter = ConnectionCounter(total_cap=10, per_client_cap=10)
    for client in ("a", "b", "a"):
        assert counter.open(client) is None
    for client in ("a", "b", "a"):
        counter.close(client)
    assert (counter.total, counter.clients) == (0, 0)
    with pytest.raises(RuntimeError, match="never opened"):
        counter.close("a")


@pytest.mark.parametrize(("configured", "fd_limit", "cap"), [
    (512, None, 512),
    (512, 1024, 512),  # 1024 - 128 leaves room
    (512, 524288, 512),
    (512, 256, 192),  # 256 - 64
    (20000, 20000, 17500),  # the fuzzing run's limit: 20000 - 2500
    (512, 10, 1),
])
def test_effective_cap_stays_below_the_descriptor_limit(configured: int, fd_limit: int | None,
                                                        cap: int) -> None:
    assert effective_cap(configured, fd_limit) == cap


# -- admission ---------------------------------------------------------------------------------

def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "gateway.server.listener" and "refused" in r.getMessage()]


def test_admission_counts_keys_by_address_and_logs_one_line_per_flood(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.server.listener")
    admission = Admission(max_connections=10, max_connections_per_client=2,
                          local_networks=lambda: LAN)
    keys = [admission.admit(f"[::ffff:192.0.2.9]:{port}", "::ffff:192.0.2.9")
            for port in range(1, 6)]
    assert keys == ["192.0.2.9", "192.0.2.9", Refusal.PER_CLIENT, Refusal.PER_CLIENT,
                    Refusal.PER_CLIENT]
    assert refusals(caplog) == [
        "[::ffff:192.0.2.9]:3: connection refused: 2 connections open from 192.0.2.9, the cap "
        "(limits.max_connections_per_client)"]
    admission.release("192.0.2.9")
    assert admission.admit("192.0.2.9:6", "192.0.2.9") == "192.0.2.9"
    assert not any(r.exc_info for r in caplog.records)


def test_admission_refuses_by_rule_before_counting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.server.listener")
    admission = Admission(AccessRules.parse([LOCAL], ["192.0.2.9"]),
                          local_networks=lambda: LAN)
    for _ in range(3):
        assert admission.admit("192.0.2.9:1", "192.0.2.9") is Verdict.DENIED
    assert admission.admit("203.0.113.5:1", "203.0.113.5") is Verdict.NOT_ALLOWED
    assert admission.counter.total == 0
    assert refusals(caplog) == [
        "192.0.2.9:1: connection refused: denied by server.deny",
        "203.0.113.5:1: connection refused: not allowed by server.allow"]


def test_admission_lists_the_interfaces_again_for_an_unknown_peer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    networks = [[ipaddress.ip_network("192.0.2.0/24")]]
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    admission = Admission(local_networks=lambda: networks[0])
    networks[0] = [ipaddress.ip_network("198.51.100.0/24")]  # DHCP gave a new address
    assert admission.admit("198.51.100.7:1", "198.51.100.7") is Verdict.NOT_ALLOWED
    now[0] += 61  # not on every refused connection: once a minute at most
    assert admission.admit("198.51.100.7:1", "198.51.100.7") == "198.51.100.7"


def test_admission_lowers_the_cap_below_the_descriptor_limit(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.server.listener")
    admission = Admission(max_connections=512, fd_limit=256, local_networks=lambda: [])
    admission.log_settings()
    assert admission.counter.total_cap == 192
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("connections: at most 192, 64 per client address "
                           "(limits.max_connections 512 lowered: the descriptor limit is 256)")
    assert "allowed: local (127.0.0.0/8, ::1/128)" in line and line.endswith("denied: none")


# -- the accept loop ----------------------------------------------------------------------------

class StarvedListener:
    """accept() fails with EMFILE `failures` times, then blocks for ever."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def accept(self) -> trio.SocketStream:
        self.calls += 1
        await trio.lowlevel.checkpoint()
        if self.calls <= self.failures:
            raise OSError(errno.EMFILE, "Too many open files")
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_accept_out_of_descriptors_backs_off_and_says_so_once(
        autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    starved = StarvedListener(failures=50)

    async def handler(*args: object) -> None:
        raise AssertionError("nothing was accepted")

    with trio.move_on_after(60):
        await listener._accept_loop(starved, Admission(), handler)  # type: ignore[arg-type]
    assert starved.calls == 51  # one try per back-off, not a busy loop
    lines = [r for r in caplog.records if r.name.startswith(("gateway", "trio"))]
    assert [r.getMessage() for r in lines] == [
        "accept failed: Too many open files (0 connections open); pausing new connections "
        "0.1 s at a time until it passes"]
    assert not any(r.exc_info for r in lines)


class BrokenListener:
    async def accept(self) -> trio.SocketStream:
        await trio.lowlevel.checkpoint()
        raise OSError(errno.EBADF, "Bad file descriptor")


async def test_accept_failing_otherwise_is_not_hidden() -> None:
    async def handler(*args: object) -> None:
        raise AssertionError("nothing was accepted")

    with pytest.raises(ExceptionGroup) as raised:
        await listener._accept_loop(BrokenListener(), Admission(),  # type: ignore[arg-type]
                                    handler)
    assert raised.group_contains(OSError, match="Bad file descriptor")
