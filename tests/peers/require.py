"""Skip a test, saying why, when a peer cannot run on this machine.

Tests that need peers skip with the reason when a program is missing (or root is needed and
we are not root); `scripts/install-peers.sh` installs them.
"""

from __future__ import annotations

import pytest

from tests.peers.procs import is_root, missing_programs

INSTALL_HINT = "install them with scripts/install-peers.sh (as root)"


def require_programs(*names: str) -> None:
    missing = missing_programs(*names)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}; {INSTALL_HINT}")


def require_root(why: str) -> None:
    if not is_root():
        pytest.skip(f"needs root: {why}")
