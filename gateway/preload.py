"""Import, while still root, every module a job may need later.

After the hand-over to an unprivileged account, an import that was left lazy reads the Python
installation as that account. Where the interpreter lives somewhere the account cannot read
(a pyenv under /root, say), such an import would fail in the middle of a job; importing
everything up front makes the modules' availability a start-up fact, not a per-job chance.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pkgutil

log = logging.getLogger("gateway")

# Our packages, imported whole; `__main__` modules would run their command lines.
PACKAGES = ("gateway", "drivers", "ippwire")
# Run in a child process at start (and imported only by a renewal, every two years): left
# out so that the gateway does not carry `cryptography` in memory.
NOT_PRELOADED = frozenset({"gateway.certificates"})
# Imported lazily by libraries on some paths: host names with non-ASCII labels (socket, trio),
# the file type guesses of Pillow's plugins.
STDLIB_LAZY = ("encodings.idna", "encodings.ascii", "encodings.latin_1", "stringprep",
               "unicodedata", "mimetypes", "email.utils", "http.client")
# Imported on first use by our own modules, when installed: PAM (gateway.pam_auth).
OPTIONAL = ("pamela",)


def import_everything() -> int:
    """Import every module of our packages, Pillow's format plugins and the lazily used
    parts of the standard library; returns how many of ours were imported."""
    count = 0
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if module.name.endswith(".__main__") or module.name in NOT_PRELOADED:
                continue
            importlib.import_module(module.name)
            count += 1
    for name in STDLIB_LAZY:
        importlib.import_module(name)
    for name in OPTIONAL:
        # Not installed: the feature says so when it is asked for.
        with contextlib.suppress(ImportError, OSError):
            importlib.import_module(name)
    from PIL import Image

    Image.init()  # every format plugin, not only the ones a first open() happens to need
    return count


def unreadable_installation() -> str | None:
    """Where the current account cannot read the Python installation, a warning saying so."""
    stdlib = os.path.dirname(os.__file__)  # sysconfig would itself import lazily
    if os.access(stdlib, os.R_OK | os.X_OK):
        return None
    return (f"this account cannot read the Python installation ({stdlib}); everything was "
            "imported before the switch, but install Python where it can read it (Debian's "
            "python3) to be safe")
