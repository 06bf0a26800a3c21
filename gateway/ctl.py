"""Everyday actions on a running gateway, over IPP: `jobs`, `cancel`, `hold`, `release`,
`pause`, `resume`, `status` (after lpstat, cancel, cupsenable/cupsdisable and LPrint's
sub-commands).

The gateway is found through its spool lock (`<spool>/gateway.lock` names its URLs and
printers) unless `--url` says where it is. Exit status: 0 done, 1 the gateway (or the spool)
refused, a login included, 2 bad usage or no gateway to talk to (or none we can trust).

With authentication on (gateway.authn), the gateway asks for a login where its policy wants
one (pausing, resuming, changing another's job). The client (gateway.ipp_client) then moves
to TLS and logs in as `--user`, with the password from IPP_GATEWAY_PASSWORD, else asked on
the terminal; without either, it stops with one line saying how to give it. The gateway's
TLS certificate is pinned to the one in its spool (`--certificate` names another copy).

Orphaned jobs, kept in the spool for a printer that is no longer configured, are read from the
spool files directly: no gateway serves them.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.config import ConfigError, default_spool, load_config
from gateway.core.orphans import Orphan, SpoolUnreadable, find_orphans, purge, safe
from gateway.core.spool_lock import LOCK_NAME, LockInfo, read_lock_info
from gateway.ipp_client import (
    Answer,
    GatewayUnreachable,
    GatewayUrl,
    IppClient,
    LoginFailed,
    LoginNeeded,
    PasswordSource,
    value_of,
)
from gateway.tls import CERTIFICATE_NAME, TLS_DIRECTORY
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import Group, Value

log = logging.getLogger("gateway.ctl")

COMMANDS: frozenset[str] = frozenset(
    {"jobs", "cancel", "hold", "release", "pause", "resume", "status"})
PROG = "ipp-gateway"
DEFAULT_PRINTER = "default"  # the printer a gateway serves when its config names none
PASSWORD_ENV = "IPP_GATEWAY_PASSWORD"
LOGIN_HINT = f"give --user NAME (password from {PASSWORD_ENV} or asked on the terminal)"
LOGIN_EPILOG = (
    "With authentication on, pause and resume, and changing another user's job, need a "
    "login: the command then talks TLS and logs in as --user, with the password from the "
    f"environment variable {PASSWORD_ENV}, else asked on the terminal. The gateway's "
    "certificate is checked against its spool's tls/server.crt (or --certificate); "
    "unchecked only when the gateway is on this host's loopback.")

_STATE_WORDS = {
    JobState.PENDING: "pending", JobState.PENDING_HELD: "held",
    JobState.PROCESSING: "processing", JobState.PROCESSING_STOPPED: "stopped",
    JobState.CANCELED: "canceled", JobState.ABORTED: "aborted",
    JobState.COMPLETED: "completed",
}
_PRINTER_STATE_WORDS = {3: "idle", 4: "processing", 5: "stopped"}
_JOB_ATTRIBUTES: list[Value] = [
    "job-id", "job-name", "job-originating-user-name", "job-k-octets",
    "date-time-at-creation", "job-state", "job-state-reasons"]
_PRINTER_ATTRIBUTES: list[Value] = [
    "printer-name", "printer-state", "printer-state-reasons", "printer-state-message",
    "queued-job-count", "printer-is-accepting-jobs"]


class UsageError(Exception):
    """Bad arguments or configuration: exit 2."""


class NoGateway(Exception):
    """No gateway runs on the spool and no --url names one: exit 2."""


class Refused(Exception):
    """The gateway answered with an IPP error where we cannot go on without its answer."""


# -- the command line ---------------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the sub-commands of COMMANDS to `ipp-gateway`'s sub-parsers."""
    jobs = _add(commands, "jobs", "list jobs (like lpstat -o), and jobs of removed printers")
    jobs.add_argument("printer", nargs="?", metavar="PRINTER", help="only this printer's jobs")
    which = jobs.add_mutually_exclusive_group()
    which.add_argument("--completed", action="store_true", help="finished jobs only")
    which.add_argument("--all", action="store_true", help="active and finished jobs")
    jobs.add_argument("--purge-orphans", action="store_true",
                      help="delete the spooled jobs of printers that are not configured")
    for name, what in (("cancel", "cancel jobs"), ("hold", "hold jobs"),
                       ("release", "release held jobs")):
        _add(commands, name, what).add_argument(
            "jobs", nargs="+", metavar="JOB", help="a job id, or PRINTER-ID as `jobs` prints it")
    for name, what in (("pause", "stop printing (jobs still queue; like cupsdisable)"),
                       ("resume", "start printing again (like cupsenable)")):
        _add(commands, name, what).add_argument("printers", nargs="+", metavar="PRINTER")
    _add(commands, "status", "every printer: state, reasons, message, queued jobs")


def _add(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
         what: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=what, description=what, epilog=LOGIN_EPILOG)
    parser.add_argument("--url", metavar="ipp://HOST:PORT",
                        help="the gateway to talk to (default: the one running on the spool); "
                             "ipps:// to start over TLS")
    parser.add_argument("--spool", type=Path, help="spool directory of the gateway")
    parser.add_argument("--config", type=Path, help="the gateway's TOML configuration file")
    parser.add_argument("--user", metavar="NAME",
                        help="requesting-user-name, and the user to log in as when the gateway "
                             f"asks (default: your login name; password from {PASSWORD_ENV} "
                             "or asked on the terminal)")
    parser.add_argument("--certificate", type=Path, metavar="PEM",
                        help="the gateway's TLS certificate, to check it against (default: "
                             f"{TLS_DIRECTORY}/{CERTIFICATE_NAME} in the spool, or the "
                             "config's tls_certificate)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Act on a running ipp-gateway.",
                                     epilog=LOGIN_EPILOG)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        context = Context.from_args(args)
        return _HANDLERS[args.command](context, args)
    except (UsageError, ConfigError, NoGateway, GatewayUnreachable) as exc:
        _error(str(exc))
        return 2
    except LoginNeeded as exc:
        _error(f"{exc}: {LOGIN_HINT}")
        return 1
    except LoginFailed as exc:
        _error(str(exc))
        return 1
    except (Refused, SpoolUnreadable) as exc:
        _error(str(exc))
        return 1


def _error(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr)


# -- where the gateway is -----------------------------------------------------------------------


@dataclass
class Context:
    spool: Path
    config_printers: tuple[str, ...] | None  # None: no --config says which printers exist
    lock: LockInfo | None
    url: GatewayUrl | None  # --url
    user: str
    certificate: Path | None = None  # the gateway's TLS certificate, pinned
    password: PasswordSource | None = None  # asked only when the gateway wants a login

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        config = load_config(args.config) if args.config else None
        spool = args.spool or (config.spool if config is not None else default_spool())
        printers = None if config is None else (
            tuple(p.name for p in config.printers) or (DEFAULT_PRINTER,))
        url = None
        if args.url:
            try:
                url = GatewayUrl.parse(args.url)
            except ValueError as exc:
                raise UsageError(f"--url: {exc}") from None
        certificate = args.certificate or (
            config.tls_certificate if config is not None and config.tls_certificate
            else spool / TLS_DIRECTORY / CERTIFICATE_NAME)
        user = args.user or _login_name()
        return cls(spool, printers, read_lock_info(spool), url, user, certificate,
                   password_source(user))

    def client(self) -> IppClient:
        if self.url is not None:
            return self._client(self.url)
        if self.lock is None:
            raise NoGateway(_why_no_gateway(self.spool))
        for text in self.lock.urls:
            try:
                return self._client(GatewayUrl.parse(text))
            except ValueError:
                continue
        raise NoGateway(f"the gateway on spool {self.spool} ({self.lock.describe()}) is not "
                        "listening yet; try again, or name it with --url ipp://HOST:PORT")

    def _client(self, url: GatewayUrl) -> IppClient:
        return IppClient(url, self.user, password=self.password, certificate=self.certificate)

    def printers(self, client: IppClient) -> tuple[str, ...]:
        """The configured printers of the gateway `client` talks to."""
        if self.lock is not None and self.lock.printers and self.lock_is(client.url):
            return self.lock.printers
        if self.config_printers is not None:
            return self.config_printers
        answer = client.call(Operation.GET_PRINTER_ATTRIBUTES, None,
                             {"requested-attributes": (ValueTag.KEYWORD, "printer-name")})
        if not answer.ok:
            raise Refused(f"{client.url}: {answer.describe()}")
        return (str(value_of(answer.first(GroupTag.PRINTER), "printer-name")),)

    def lock_is(self, url: GatewayUrl) -> bool:
        assert self.lock is not None
        return any(_same_url(text, url) for text in self.lock.urls)

    def orphans(self, client: IppClient | None, configured: Iterable[str], *,
                required: bool = True) -> list[Orphan]:
        """Spooled jobs of printers that are not configured. With a gateway to ask, a printer
        it serves is never taken for a removed one, whatever the lists say. Unless
        `required`, a spool this user may not read is a note, not a failure: the gateway's
        own jobs still come over IPP."""
        served = None if client is None else (lambda name: _serves(client, name))
        try:
            return find_orphans(self.spool, frozenset(configured), served)
        except SpoolUnreadable as exc:
            if required:
                raise
            _error(f"{exc} (orphaned jobs not shown)")
            return []


def _why_no_gateway(spool: Path) -> str:
    """A lock we may not read looks like no lock at all: say which it is."""
    path = spool / LOCK_NAME
    try:
        path.stat()
        readable = os.access(path, os.R_OK)
    except PermissionError:
        readable = False
    except OSError:
        readable = True  # no lock file: no gateway ever ran there, or the spool is elsewhere
    if not readable:
        return (f"cannot tell whether a gateway runs on spool {spool}: {path} is not readable "
                "by this user (run as root or the gateway's user, or pass --url ipp://HOST:PORT)")
    return (f"no gateway is running on spool {spool} (start one with `ipp-gateway run`, or "
            "name one with --url ipp://HOST:PORT)")


def _same_url(text: str, url: GatewayUrl) -> bool:
    try:
        parsed = GatewayUrl.parse(text)
    except ValueError:
        return False
    return (parsed.host, parsed.port) == (url.host, url.port)  # ipp and ipps share the port


def _serves(client: IppClient, printer: str) -> bool:
    answer = client.call(Operation.GET_PRINTER_ATTRIBUTES, printer,
                         {"requested-attributes": (ValueTag.KEYWORD, "printer-name")})
    # Only a plain "no such printer" makes it an orphan; any other answer keeps its jobs safe.
    return answer.status != Status.CLIENT_ERROR_NOT_FOUND


def password_source(user: str) -> PasswordSource:
    """The password of `user`, looked for only when the gateway asks for a login: the
    environment's, else asked on the terminal, else none (a script gets the hint instead of a
    prompt it cannot answer)."""

    def password() -> str | None:
        given = os.environ.get(PASSWORD_ENV)
        if given:
            return given
        if not sys.stdin.isatty():
            return None
        try:
            return getpass.getpass(f"Password for {user}: ") or None
        except EOFError:
            return None

    return password


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for our uid (a container, for one)
        return "anonymous"


# -- jobs -------------------------------------------------------------------------------------


def cmd_jobs(context: Context, args: argparse.Namespace) -> int:
    try:
        client = context.client()
    except NoGateway as exc:
        return _jobs_offline(context, args, str(exc))
    configured = context.printers(client)
    orphans = [o for o in context.orphans(client, configured, required=args.purge_orphans)
               if args.printer is None or o.printer == args.printer]
    targets = [args.printer] if args.printer else list(configured)
    which = "all" if args.all else "completed" if args.completed else "not-completed"
    rows: list[tuple[str, ...]] = []
    refused = False
    for printer in targets:
        if any(o.printer == printer for o in orphans):
            continue  # not served: its jobs are listed below from the spool
        answer = client.call(Operation.GET_JOBS, printer, {
            "which-jobs": (ValueTag.KEYWORD, which),
            "requested-attributes": (ValueTag.KEYWORD, _JOB_ATTRIBUTES)})
        if not answer.ok:
            _error(f"jobs {printer}: {answer.describe()}")
            refused = True
            continue
        rows += [_job_row(printer, group) for group in answer.groups(GroupTag.JOB)]
    _print_table(rows)
    purged = _orphan_section(orphans, args.purge_orphans, after=bool(rows))
    return max(1 if refused else 0, purged)


def _jobs_offline(context: Context, args: argparse.Namespace, why: str) -> int:
    """No gateway runs: only the spool's orphaned jobs can be shown, and only when --config
    says which printers are configured (a gateway started with --printer leaves no trace)."""
    if context.config_printers is None:
        if args.purge_orphans:
            why += "; pass --config FILE to tell orphaned jobs from the configured printers'"
        _error(why)
        return 2
    orphans = [o for o in context.orphans(None, context.config_printers)
               if args.printer is None or o.printer == args.printer]
    if not args.purge_orphans:
        _error(why)
    status = _orphan_section(orphans, args.purge_orphans)
    return status if args.purge_orphans else 2


def _orphan_section(orphans: list[Orphan], purging: bool, *, after: bool = False) -> int:
    """List the orphans under one heading per printer, or (purging) delete them, one line
    each; `after` puts a blank line between them and a table above."""
    if purging:
        return _purge(orphans)
    for printer in dict.fromkeys(o.printer for o in orphans):
        if after:
            print()
        after = True
        print(f"orphaned: printer {safe(printer)} is not configured; they print again when it "
              f"is, or `{PROG} jobs --purge-orphans` deletes them")
        _print_table([_orphan_row(o) for o in orphans if o.printer == printer])
    return 0


def _purge(orphans: list[Orphan]) -> int:
    failed = False
    for orphan, deleted, problem in purge(orphans):
        files = ", ".join(map(str, deleted)) or "no files left"
        if problem:
            _error(f"cannot delete orphaned job {orphan.label} ({problem}); deleted: {files}")
            failed = True
        else:
            print(f"deleted orphaned job {orphan.label}: {files}")
    return 1 if failed else 0


HIDDEN = "-"  # a value the gateway keeps private from this user (gateway.privacy)


def _job_row(printer: str, group: Group) -> tuple[str, ...]:
    created = value_of(group, "date-time-at-creation")
    k_octets = value_of(group, "job-k-octets")
    return (f"{safe(printer)}-{value_of(group, 'job-id')}",
            safe(str(value_of(group, "job-originating-user-name") or HIDDEN)),
            str(k_octets * 1024 if isinstance(k_octets, int) else 0),
            _date(created.timestamp() if isinstance(created, datetime) else None),
            _state_word(value_of(group, "job-state")),
            safe(str(value_of(group, "job-name") or HIDDEN)))


def _orphan_row(orphan: Orphan) -> tuple[str, ...]:
    job = orphan.job
    return (orphan.label, safe(str(job.user)), str(job.k_octets * 1024), _date(job.created),
            _state_word(job.state), safe(str(job.name)))


def _state_word(state: object) -> str:
    try:
        return _STATE_WORDS[JobState(state)] if isinstance(state, int) else "unknown"
    except ValueError:
        return f"state-{state}"


def _date(wall: float | None) -> str:
    return "-" if wall is None else datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S")


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Columns two spaces apart; the size right-aligned, the last column (the name) ragged."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.rjust(w) if i == 2 else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=False))]
        print("  ".join([*cells, row[-1]]).rstrip())


# -- cancel, hold, release ----------------------------------------------------------------------


def _job_action(operation: Operation) -> Callable[[Context, argparse.Namespace], int]:
    def action(context: Context, args: argparse.Namespace) -> int:
        specs = [(text, parse_job(text)) for text in args.jobs]
        client = context.client()
        printers: tuple[str, ...] | None = None
        refused = False
        for text, (printer, job_id) in specs:
            if printer is None:
                printers = printers or context.printers(client)
                printer = _printer_of(client, printers, job_id)
            answer = client.call(operation, printer, {"job-id": (ValueTag.INTEGER, job_id)})
            if not answer.ok:
                _error(f"{args.command} {text}: {_refusal(client, answer)}")
                refused = True
        return 1 if refused else 0

    return action


def parse_job(text: str) -> tuple[str | None, int]:
    """`42` -> (None, 42); `front-desk-42` -> ("front-desk", 42), as `jobs` prints it."""
    printer, dash, number = text.rpartition("-")
    if not (number.isascii() and number.isdigit()) or (dash and not printer):
        raise UsageError(f"{text!r} is not a job: give its id, or PRINTER-ID as "
                         f"`{PROG} jobs` prints it")
    job_id = int(number)
    if not 0 < job_id < 2**31:
        raise UsageError(f"{text!r}: a job id is between 1 and {2**31 - 1}")
    return (printer or None), job_id


def _printer_of(client: IppClient, printers: tuple[str, ...], job_id: int) -> str:
    """The printer that has job `job_id`; else the first one (whose refusal then says so)."""
    for printer in printers:
        answer = client.call(Operation.GET_JOB_ATTRIBUTES, printer, {
            "job-id": (ValueTag.INTEGER, job_id),
            "requested-attributes": (ValueTag.KEYWORD, "job-id")})
        if answer.ok:
            return printer
    return printers[0]


def _refusal(client: IppClient, answer: Answer) -> str:
    """The refusal as one line; a login that was not enough says whose it was."""
    text = answer.describe()
    if answer.status == Status.CLIENT_ERROR_NOT_AUTHORIZED and client.logged_in:
        text += f" (logged in as {safe(client.user)})"
    return text


# -- pause, resume, status ------------------------------------------------------------------


def _printer_action(operation: Operation) -> Callable[[Context, argparse.Namespace], int]:
    def action(context: Context, args: argparse.Namespace) -> int:
        client = context.client()
        refused = False
        for printer in args.printers:
            answer = client.call(operation, printer)
            if not answer.ok:
                _error(f"{args.command} {printer}: {_refusal(client, answer)}")
                refused = True
        return 1 if refused else 0

    return action


def cmd_status(context: Context, args: argparse.Namespace) -> int:
    client = context.client()
    who = f"pid {context.lock.pid}, " if context.lock is not None and context.lock_is(
        client.url) else ""
    print(f"gateway {client.url} ({who}spool {context.spool})")
    configured = context.printers(client)
    refused = False
    for printer in configured:
        answer = client.call(Operation.GET_PRINTER_ATTRIBUTES, printer, {
            "requested-attributes": (ValueTag.KEYWORD, _PRINTER_ATTRIBUTES)})
        if not answer.ok:
            _error(f"status {printer}: {answer.describe()}")
            refused = True
            continue
        print(*printer_lines(printer, answer), sep="\n")
    orphans = context.orphans(client, configured, required=False)
    if orphans:
        names = ", ".join(safe(n) for n in dict.fromkeys(o.printer for o in orphans))
        print(f"{len(orphans)} orphaned job(s) of printers not configured ({names}): "
              f"see `{PROG} jobs`")
    return 1 if refused else 0


def printer_lines(printer: str, answer: Answer) -> list[str]:
    """`printer front is stopped, 1 queued job; reasons: paused` and its message, indented."""
    group = answer.first(GroupTag.PRINTER)
    state = value_of(group, "printer-state")
    word = _PRINTER_STATE_WORDS.get(state, f"state-{state}") if isinstance(state, int) \
        else "unknown"
    queued = value_of(group, "queued-job-count")
    count = queued if isinstance(queued, int) else 0
    line = f"printer {safe(printer)} is {word}, {count} queued job{'' if count == 1 else 's'}"
    if value_of(group, "printer-is-accepting-jobs") is False:
        line += ", not accepting jobs"
    attr = group.get("printer-state-reasons")
    reasons = [str(v) for v in attr.plain if v not in (None, "none")] if attr else []
    if reasons:
        line += "; reasons: " + safe(", ".join(reasons))
    message = value_of(group, "printer-state-message")
    return [line] + ([f"\t{safe(str(message))}"] if message else [])


_HANDLERS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "jobs": cmd_jobs,
    "cancel": _job_action(Operation.CANCEL_JOB),
    "hold": _job_action(Operation.HOLD_JOB),
    "release": _job_action(Operation.RELEASE_JOB),
    "pause": _printer_action(Operation.PAUSE_PRINTER),
    "resume": _printer_action(Operation.RESUME_PRINTER),
    "status": cmd_status,
}
assert set(_HANDLERS) == COMMANDS
