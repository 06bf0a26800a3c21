"""Who may do what: the operation policy, with CUPS' default policy as the model.

Each IPP operation needs one of four things (`NEEDS`):
- nothing: reading printer and job attributes (job privacy, gateway.privacy, still hides
  others' names);
- the printer's print permission (`PrinterConfig.print_by`): "anyone", "authenticated", or
  listed users and "@group"s;
- the job's owner or an administrator: Cancel-, Hold-, Release-Job, Send-Document, Close-Job
  (CUPS: `Require user @OWNER @SYSTEM`);
- an administrator: Pause-, Resume-, Identify-Printer, and Cancel-My-Jobs naming others' jobs
  (CUPS: `Require user @SYSTEM`).

`decide` answers for one `Viewer` (gateway.privacy: who asks, as gateway.authn identified
them): allowed, a challenge (log in: HTTP 401 with `WWW-Authenticate`, or 426 to move to TLS
first), or forbidden (client-error-not-authorized). A challenge is only possible while
authentication is on: with it off, nobody can prove a name, the owner is whoever the request
names (as on an unauthenticated CUPS queue), and the administrator is a client on the
gateway's own host (gateway.authn gives it `is_admin`).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.privacy import Viewer
from ippwire.enums import Operation

ANYONE = ("anyone",)
AUTHENTICATED = "authenticated"
ADMIN_GROUP = "@admin"  # in a print list: the gateway's administrators


class Need(Enum):
    NOTHING = "nothing"
    PRINT = "print"
    OWNER = "owner"  # the target job's owner, or an administrator
    ADMIN = "admin"


NEEDS: dict[int, Need] = {
    int(Operation.PRINT_JOB): Need.PRINT,
    int(Operation.VALIDATE_JOB): Need.PRINT,
    int(Operation.CREATE_JOB): Need.PRINT,
    int(Operation.SEND_DOCUMENT): Need.OWNER,
    int(Operation.CLOSE_JOB): Need.OWNER,
    int(Operation.CANCEL_JOB): Need.OWNER,
    int(Operation.HOLD_JOB): Need.OWNER,
    int(Operation.RELEASE_JOB): Need.OWNER,
    int(Operation.PAUSE_PRINTER): Need.ADMIN,
    int(Operation.RESUME_PRINTER): Need.ADMIN,
    int(Operation.IDENTIFY_PRINTER): Need.ADMIN,
    # Its own jobs: the owner is the requester by definition; others' need an administrator
    # (checked by the handler, which knows which jobs were named).
    int(Operation.CANCEL_MY_JOBS): Need.NOTHING,
    # Subscriptions (RFC 3995): anyone may subscribe to a printer and list subscriptions
    # (without others' private values); a job's subscriptions are its owner's to make, and a
    # subscription its subscriber's to read, renew or cancel (or an administrator's). The
    # handlers check those, knowing the job (notify-job-id) or the subscription.
    int(Operation.CREATE_PRINTER_SUBSCRIPTIONS): Need.NOTHING,
    int(Operation.CREATE_JOB_SUBSCRIPTIONS): Need.NOTHING,
    int(Operation.GET_SUBSCRIPTION_ATTRIBUTES): Need.NOTHING,
    int(Operation.GET_SUBSCRIPTIONS): Need.NOTHING,
    int(Operation.RENEW_SUBSCRIPTION): Need.NOTHING,
    int(Operation.CANCEL_SUBSCRIPTION): Need.NOTHING,
    int(Operation.GET_NOTIFICATIONS): Need.NOTHING,
}


class Outcome(Enum):
    ALLOWED = "allowed"
    CHALLENGE = "challenge"  # authenticate (401), or first move to TLS (426)
    FORBIDDEN = "forbidden"  # client-error-not-authorized


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str = ""  # for a refusal: what is needed, in words a user can act on

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED


ALLOWED = Decision(Outcome.ALLOWED)


@dataclass(frozen=True, slots=True)
class JobOwner:
    """The owner of the job a request targets: its job-originating-user-name and whether
    that name was proven by a password when the job was made."""

    user: str
    authenticated: bool = False


def needs_login(print_by: tuple[str, ...]) -> bool:
    """Whether printing on a printer with this print permission needs a login: what
    uri-authentication-supported and the DNS-SD key `air` say."""
    return tuple(print_by) != ANYONE


def may_print(viewer: Viewer, print_by: tuple[str, ...]) -> bool:
    """Whether `viewer`, as identified, is in the print permission `print_by`."""
    if tuple(print_by) == ANYONE:
        return True
    if not viewer.authenticated:
        return False
    if print_by == (AUTHENTICATED,) or viewer.is_admin:
        return True
    for entry in print_by:
        if entry.startswith("@"):
            if (entry == ADMIN_GROUP and viewer.is_admin) or entry[1:] in viewer.groups:
                return True
        elif entry == viewer.user:
            return True
    return False


def decide(need: Need, viewer: Viewer, *, auth_enabled: bool,
           print_by: tuple[str, ...] = ANYONE, owner: JobOwner | None = None) -> Decision:
    """May `viewer` do what needs `need`, on a printer whose print permission is
    `print_by`, to a job owned by `owner`?"""
    if need is Need.NOTHING:
        return ALLOWED
    if need is Need.PRINT:
        if may_print(viewer, print_by):
            return ALLOWED
        who = ("an authenticated user" if print_by == (AUTHENTICATED,)
               else "one of " + ", ".join(print_by))
        return _refuse(viewer, auth_enabled, f"printing here is for {who}")
    if need is Need.OWNER:
        if viewer.is_admin or (owner is not None
                               and viewer.owns(owner.user, owner.authenticated)):
            return ALLOWED
        return _refuse(viewer, auth_enabled,
                       "only the job's owner or an administrator may change it")
    if viewer.is_admin:
        return ALLOWED
    if not auth_enabled:
        return Decision(Outcome.FORBIDDEN,
                        "this needs an administrator: with authentication off, only a "
                        "client on the gateway's own host is one")
    return _refuse(viewer, auth_enabled, "this needs an administrator")


def _refuse(viewer: Viewer, auth_enabled: bool, reason: str) -> Decision:
    """A challenge when logging in could help (authentication on and none given), else a
    refusal: a user who is logged in and still not allowed is not asked again."""
    if auth_enabled and not viewer.authenticated:
        return Decision(Outcome.CHALLENGE, reason)
    return Decision(Outcome.FORBIDDEN, reason)
