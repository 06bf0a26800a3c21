#!/usr/bin/env bash
# Remove ipp-gateway as installed by deploy/install.sh (also kept as
# /opt/ipp-gateway/share/uninstall.sh). The config (/etc/ipp-gateway) and the spool
# (/var/lib/ipp-gateway: jobs, the TLS pair, the password file, the audit log) and the account
# stay unless --purge is given, so that installing again carries on where this one stopped.
set -euo pipefail
export LC_ALL=C

ACCOUNT=ipp-gateway
REMOVE=(/etc/systemd/system/ipp-gateway.service /etc/udev/rules.d/70-ipp-gateway.rules
        /usr/local/bin/ipp-gateway /opt/ipp-gateway)
KEEP=(/etc/ipp-gateway /var/lib/ipp-gateway)

usage() {
    cat <<USAGE
usage: $0 [--purge] [--destdir DIR] [--no-systemctl]
  --purge         also remove ${KEEP[*]} and the account $ACCOUNT
  --destdir DIR   remove from a staged tree (also the DESTDIR variable); implies --no-systemctl
  --no-systemctl  do not stop or disable the service, nor reload systemd and udev
USAGE
}

die() { echo "uninstall.sh: $*" >&2; exit 1; }
say() { echo "uninstall.sh: $*"; }

DESTDIR=${DESTDIR:-}
PURGE=no
DO_SYSTEMCTL=yes
while [ $# -gt 0 ]; do
    case $1 in
        --purge) PURGE=yes ;;
        --destdir) DESTDIR=${2:?--destdir needs a directory}; shift ;;
        --no-systemctl) DO_SYSTEMCTL=no ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

LIVE=yes
if [ -n "$DESTDIR" ]; then
    [ -d "$DESTDIR" ] || die "--destdir $DESTDIR: no such directory"
    DESTDIR=$(cd "$DESTDIR" && pwd)
    LIVE=no DO_SYSTEMCTL=no
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0), or use --destdir DIR"
fi
if [ "$LIVE" = yes ] && [ ! -d /run/systemd/system ]; then DO_SYSTEMCTL=no; fi

if [ "$DO_SYSTEMCTL" = yes ] && [ -e /etc/systemd/system/ipp-gateway.service ]; then
    systemctl disable --now --quiet ipp-gateway.service || true
fi

for path in "${REMOVE[@]}"; do
    if [ -e "$DESTDIR$path" ] || [ -L "$DESTDIR$path" ]; then
        rm -rf -- "$DESTDIR$path"
        say "removed $path"
    fi
done

if [ "$DO_SYSTEMCTL" = yes ]; then
    systemctl daemon-reload
    systemctl reset-failed ipp-gateway.service 2>/dev/null || true
    udevadm control --reload
fi

if [ "$PURGE" = no ]; then
    for path in "${KEEP[@]}"; do
        if [ -e "$DESTDIR$path" ]; then say "kept $path (--purge removes it)"; fi
    done
    exit 0
fi
for path in "${KEEP[@]}"; do
    if [ -e "$DESTDIR$path" ]; then
        rm -rf "$DESTDIR$path"
        say "removed $path"
    fi
done
if [ "$LIVE" = yes ] && getent passwd "$ACCOUNT" >/dev/null; then
    userdel "$ACCOUNT"
    say "removed the account $ACCOUNT"
fi
if [ "$LIVE" = yes ] && getent group "$ACCOUNT" >/dev/null; then
    groupdel "$ACCOUNT"
fi
