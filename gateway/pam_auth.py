"""System accounts through PAM, for a host whose users already exist (a Pi, a school server).

The binding is `pamela` (the one JupyterHub authenticates with): a single ctypes module over
libpam, so nothing to compile, with a conversation function that answers the password prompt
and calls pam_acct_mgmt too, so an expired or locked account is refused. It is optional and
imported on first use: without it (or without libpam) `pam_available()` is False and the
gateway runs on its own password file alone.

An administrator is root or a member of `lpadmin` (CUPS's group), `sudo` or `wheel`; the
other unix groups of the user become the account's groups, for printer policies.

pam_unix reads /etc/shadow: a gateway that dropped to an unprivileged account needs that
account in the `shadow` group (Debian), since its setgid helper only checks the caller's own
password. The PAM service is `ipp-gateway` (/etc/pam.d/ipp-gateway; without that file PAM
uses /etc/pam.d/other).
"""

from __future__ import annotations

import functools
import grp
import importlib
import logging
import os
import pwd
from types import ModuleType

from gateway.passwords import Account

log = logging.getLogger("gateway")

PAM_SERVICE = "ipp-gateway"
ADMIN_GROUPS = frozenset({"lpadmin", "sudo", "wheel"})


@functools.cache
def _binding() -> ModuleType | None:
    try:
        # importlib keeps the optional module out of the type checker's import graph.
        return importlib.import_module("pamela")
    except ImportError:
        return None
    except (OSError, AttributeError) as exc:  # pamela is there, libpam is not
        log.warning("PAM is not usable: libpam cannot be loaded (%s)", exc)
        return None


def pam_available() -> bool:
    """Whether system accounts can be checked: the pamela binding and libpam are there."""
    return _binding() is not None


def _usable(text: str) -> bool:
    # C strings end at NUL: "alice\0x" would reach PAM as "alice".
    return bool(text) and "\0" not in text


def pam_verify(user: str, password: str, service: str = PAM_SERVICE) -> Account | None:
    """The account if PAM accepts `password` for `user`, else None. BLOCKING: PAM may read
    files, ask a directory server, and sleep after a failure; run it in a worker thread."""
    pamela = _binding()
    if pamela is None or not _usable(user) or not _usable(password) or ":" in user:
        return None
    try:
        # resetcred=0: checking a password establishes no credentials (no pam_setcred).
        pamela.authenticate(user, password, service=service, resetcred=0, check=True)
    except pamela.PAMError as exc:
        log.debug("PAM (service %s) refused user %r: %s", service, user, exc)
        return None
    except UnicodeError:
        return None
    return system_account(user)


def system_account(user: str) -> Account:
    """`user` as an Account: its unix groups, and whether it administers printing."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:  # PAM knows users NSS does not (rare): no groups, no admin
        return Account(user)
    groups: set[str] = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            groups.add(grp.getgrgid(gid).gr_name)
        except KeyError:  # a gid without a name grants nothing by name
            continue
    admin = entry.pw_uid == 0 or bool(groups & ADMIN_GROUPS)
    return Account(user, admin, frozenset(groups))
