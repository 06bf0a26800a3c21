#!/usr/bin/env bash
# Install the real peers the integration tests and benchmarks run against (Debian 12).
#
# Idempotent. Not root: say what is missing and exit 0 (those tests then skip with a reason).
# Root: install what is missing with a policy-rc.d that forbids maintainer scripts to start
# daemons, then stop any daemon that started anyway, so nothing is left on ports 631/515/9100.
set -euo pipefail

# package -> what the tests use from it
declare -A PURPOSE=(
    [cups-ipp-utils]="ipptool and its suites, ippeveprinter"
    [cups-daemon]="cupsd and the ipp backend"
    [cups-client]="lp, lpstat, lpadmin"
    [cups-filters]="pdftopdf/imagetopdf/gstoraster, needed by lpadmin -m everywhere queues"
    [cups]="rastertopwg, for everywhere queues that are sent PWG raster"
    [ghostscript]="gs: PWG raster / URF / PostScript test documents, PDF conversion"
    [poppler-utils]="pdftoppm, pdfinfo"
    [lpr]="BSD lpd, an LPD peer"
    [p910nd]="a port 9100 peer"
    [wrk]="HTTP load for bench/"
    [dbus]="dbus-daemon, which ippeveprinter needs even without DNS-SD"
    [avahi-daemon]="the mDNS responder of the DNS-SD tests' namespace hosts, on a private bus"
    [avahi-utils]="avahi-browse and avahi-publish, the DNS-SD tests' browser and stand-in"
    [iproute2]="ip netns and veth pairs: the DNS-SD tests' two-host LAN"
    [libnss-mdns]="HOST.local names for ippfind, ipptool and cupsd inside the DNS-SD tests' namespaces"
    [chromium]="headless Chromium for the dashboard's browser tests (Playwright drives the system executable)"
    [fonts-dejavu-core]="the same fonts in every dashboard screenshot"
    [shellcheck]="lints deploy/install.sh and deploy/uninstall.sh"
    [systemd]="systemd-analyze verify, for deploy/ipp-gateway.service"
)
PACKAGES=(cups-ipp-utils cups-daemon cups-client cups-filters cups ghostscript poppler-utils
          lpr p910nd wrk dbus avahi-daemon avahi-utils iproute2
          libnss-mdns chromium fonts-dejavu-core shellcheck systemd)
DAEMONS=(cupsd lpd p910nd avahi-daemon dbus-daemon cups-browsed)
SYSTEMD_UNITS=(cups.socket cups.path cups.service lpd.service p910nd.service
               avahi-daemon.socket avahi-daemon.service dbus.socket dbus.service
               cups-browsed.service)
POLICY=/usr/sbin/policy-rc.d

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            echo "$pkg"
        fi
    done
}

# PIDs whose command name is $1 (no procps on a minimal image).
pids_of() {
    local comm_file
    for comm_file in /proc/[0-9]*/comm; do
        if [ "$(cat "$comm_file" 2>/dev/null)" = "$1" ]; then
            basename "$(dirname "$comm_file")"
        fi
    done
}

running_daemons() {
    local name pid
    for name in "${DAEMONS[@]}"; do
        for pid in $(pids_of "$name"); do echo "$pid $name"; done
    done
}

active_units() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl is-active "${SYSTEMD_UNITS[@]}" 2>/dev/null \
            | paste -d' ' - <(printf '%s\n' "${SYSTEMD_UNITS[@]}") \
            | awk '$1 == "active" {print $2}'
    fi
}

# Stop units and processes that appeared since the "before" snapshots.
stop_new_daemons() {
    local units_before=$1 daemons_before=$2 unit line pid name
    for unit in $(active_units); do
        if ! grep -qx "$unit" <<<"$units_before"; then
            echo "stopping $unit (started by a maintainer script)"
            systemctl stop "$unit" || true
        fi
    done
    while read -r pid name; do
        [ -n "$pid" ] || continue
        if ! grep -qx "$pid $name" <<<"$daemons_before"; then
            echo "stopping $name (pid $pid, started by a maintainer script)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done < <(running_daemons)
}

report_missing() {
    local pkg
    for pkg in "$@"; do echo "  $pkg: ${PURPOSE[$pkg]}"; done
}

mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -eq 0 ]; then
    echo "install-peers: all peer packages are installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-peers: missing (tests that need them will skip); run this script as root:"
    report_missing "${MISSING[@]}"
    exit 0
fi

echo "install-peers: installing:"
report_missing "${MISSING[@]}"
OUR_POLICY=no
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# ipp-gateway install-peers: no daemons from maintainer scripts\nexit 101\n' \
        >"$POLICY"
    chmod 755 "$POLICY"
    OUR_POLICY=yes
fi
cleanup() { if [ "$OUR_POLICY" = yes ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

UNITS_BEFORE=$(active_units)
DAEMONS_BEFORE=$(running_daemons)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
stop_new_daemons "$UNITS_BEFORE" "$DAEMONS_BEFORE"

mapfile -t STILL_MISSING < <(missing_packages)
if [ "${#STILL_MISSING[@]}" -ne 0 ]; then
    echo "install-peers: still missing after apt-get install: ${STILL_MISSING[*]}" >&2
    exit 1
fi
echo "install-peers: done"
