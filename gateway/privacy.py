"""Job privacy: who may see a job's private values, as CUPS' `JobPrivateAccess default`
(@OWNER @SYSTEM) and `JobPrivateValues default` do it.

A `Viewer` is whoever asks, as gateway.authn identified them: the authenticated user when the
request carried valid credentials, else its `requesting-user-name`, as on an unauthenticated
CUPS queue; `is_admin` says whether they are an administrator (CUPS' @SYSTEM). A job made by
an authenticated user is owned only by that user authenticated: a bare requesting-user-name
proves nothing about it.

What a viewer may not see is left out of the answer, not replaced. That is what cupsd 2.4
does (checked against the cupsd on this machine, unauthenticated, JobPrivate* default:
bob's Get-Jobs with requested-attributes "all" has no job-name and no
job-originating-user-name for alice's job at all; alice's, by requesting-user-name alone,
has both), and RFC 8011 lets a Printer return fewer attributes than were asked for. A
stand-in value ("?", "withheld") would be a lie a client shows as a real name, and the
out-of-band `no-value` would fail an ipptool `EXPECT job-name OF-TYPE name` (the syntax is
checked whenever the attribute is there), where an absent attribute passes every EXPECT
that does not insist on it; an absent attribute is also what CUPS clients already meet
from cupsd. The job-id, job-uri, state and counters stay visible to everyone, as in CUPS,
so that a queue can be watched and its length known.

Pure: no I/O, no trio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

# What the gateway calls a request that names no user (gateway.server.operations).
ANONYMOUS = "anonymous"

# The job and document attributes that name a person or a document: CUPS' default
# JobPrivateValues (job-name, job-originating-host-name, job-originating-user-name, phone)
# and the names of documents. Some are not answered yet; they are
# listed so that answering them later cannot leak them.
PRIVATE_JOB_VALUES = frozenset({
    "document-name", "document-name-supplied", "job-name", "job-originating-host-name",
    "job-originating-user-name", "job-originating-user-uri", "phone",
})

# Printer description attributes (PWG 5100.7-2019, IPP Job Extensions v2.0): which
# attributes are private ("default": the Printer's own set, PRIVATE_JOB_VALUES) and who sees
# them ("owner": the job's owner, and an administrator).
JOB_PRIVACY_ATTRIBUTES = ("default",)
JOB_PRIVACY_SCOPE = "owner"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks about a job, or asks for anything (gateway.policy). `user` is who the
    request comes from ("" or ANONYMOUS: nobody in particular); `authenticated` says the
    name was proven by a password; `is_admin` sees and may change every job; `groups` are
    the account's groups, for a printer's list of who may print."""

    user: str
    is_admin: bool = False
    authenticated: bool = False
    groups: frozenset[str] = frozenset()

    @property
    def is_anonymous(self) -> bool:
        return self.user in ("", ANONYMOUS)

    def owns(self, owner: str, owner_authenticated: bool = False) -> bool:
        """Whether this viewer is the job owner `owner` (its job-originating-user-name);
        `owner_authenticated`: the job was made by `owner` logged in, so only `owner` logged
        in owns it.
        An anonymous viewer owns nothing, not even a job sent without a name: otherwise every
        client that gives no name would see every other's. Names are compared exactly, as
        Cancel-My-Jobs and my-jobs compare them (a system account's name is case-sensitive;
        CUPS folds case here, which would let "Alice" see alice's jobs)."""
        if owner_authenticated and not self.authenticated:
            return False
        return not self.is_anonymous and self.user == owner

    def sees_private_values(self, owner: str, owner_authenticated: bool = False) -> bool:
        """The owner, and an administrator who logged in: with authentication off, the
        gateway's own host may administer (gateway.policy), but its users still see only
        their own jobs whole, as each machine's users do on a CUPS server."""
        return (self.is_admin and self.authenticated) or self.owns(owner, owner_authenticated)


# A request that names nobody; also what a listing shows when its caller does not say who
# asks (gateway.server.job_attributes): every job without its private values.
NOBODY = Viewer(ANONYMOUS)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def visible(attrs: Iterable[N], owner: str, viewer: Viewer,
            owner_authenticated: bool = False) -> list[N]:
    """`attrs` of a job owned by `owner` as `viewer` may see them: whole for the owner and
    an administrator, without the PRIVATE_JOB_VALUES for anyone else."""
    if viewer.sees_private_values(owner, owner_authenticated):
        return list(attrs)
    return [x for x in attrs if x.name not in PRIVATE_JOB_VALUES]
