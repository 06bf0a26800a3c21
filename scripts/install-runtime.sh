#!/usr/bin/env bash
# What `make run` needs beyond the Python packages: Ghostscript, for PDF and PostScript.
set -euo pipefail
if command -v gs >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "note: Ghostscript (Debian package ghostscript) is missing; PDF/PostScript conversion" \
         "will fail until it is installed" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ghostscript >/dev/null
