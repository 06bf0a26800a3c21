#!/usr/bin/env bash
# Install or update ipp-gateway as a system service on Debian 12 or Raspberry Pi OS (arm64,
# armhf, amd64). One command, safe to run again: a second run with the same source changes
# nothing, and one with a new source updates the venv and restarts the service.
#
#   sudo deploy/install.sh                       from this checkout, with apt, enabled and started
#   deploy/install.sh --destdir /tmp/stage       staged: no apt, no account, no systemctl
#
# What it puts where (DESTDIR, when set, is prepended to every path):
#   /opt/ipp-gateway/venv            the gateway and its Python packages (python3 -m venv)
#   /opt/ipp-gateway/share/          the example config, the uninstall script, the install stamp
#   /usr/local/bin/ipp-gateway       the command line, a link into the venv
#   /etc/ipp-gateway/gateway.toml    the config: written only when missing, never replaced
#   /etc/systemd/system/ipp-gateway.service, /etc/udev/rules.d/70-ipp-gateway.rules
# and, on the live system only, the account ipp-gateway (member of lp and dialout).
# The spool, /var/lib/ipp-gateway, is the unit's StateDirectory: systemd makes it.
set -euo pipefail
export LC_ALL=C

ACCOUNT=ipp-gateway
OPT=/opt/ipp-gateway
ETC=/etc/ipp-gateway
UNIT=/etc/systemd/system/ipp-gateway.service
RULES=/etc/udev/rules.d/70-ipp-gateway.rules
LINK=/usr/local/bin/ipp-gateway
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APT_PACKAGES=(python3 python3-venv ghostscript libusb-1.0-0
              gcc libc6-dev python3-dev)  # the compiler builds the fast raster codec

usage() {
    cat <<EOF
usage: $0 [options]
  --destdir DIR     stage into DIR (also the DESTDIR variable): implies --no-apt,
                    --no-systemctl, and no account is made
  --source DIR      the checkout to install (default: $(dirname "$HERE"))
  --wheelhouse DIR  install offline from the wheels in DIR, made with
                    'pip wheel -w DIR /path/to/checkout' (the gateway's and its dependencies')
  --python PATH     the interpreter for the venv, 3.11 or newer (default: /usr/bin/python3)
  --no-apt          do not install Debian packages (${APT_PACKAGES[*]} avahi-daemon)
  --no-avahi        leave avahi-daemon out (DNS-SD then uses python-zeroconf)
  --no-systemctl    do not reload udev or systemd, nor enable or start the service
  --no-start        enable the service but do not start or restart it
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

DESTDIR=${DESTDIR:-}
SOURCE=$(dirname "$HERE")
WHEELHOUSE=""
PYTHON=/usr/bin/python3
DO_APT=yes
DO_AVAHI=yes
DO_SYSTEMCTL=yes
DO_START=yes
while [ $# -gt 0 ]; do
    case $1 in
        --destdir) DESTDIR=${2:?--destdir needs a directory}; shift ;;
        --source) SOURCE=${2:?--source needs a path}; shift ;;
        --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a directory}; shift ;;
        --python) PYTHON=${2:?--python needs a path}; shift ;;
        --no-apt) DO_APT=no ;;
        --no-avahi) DO_AVAHI=no ;;
        --no-systemctl) DO_SYSTEMCTL=no ;;
        --no-start) DO_START=no ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

if [ -n "$WHEELHOUSE" ]; then WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd); fi
LIVE=yes
if [ -n "$DESTDIR" ]; then
    # Staging must not touch the host: its packages, accounts and services stay as they are.
    LIVE=no DO_APT=no DO_SYSTEMCTL=no
    mkdir -p "$DESTDIR"
    DESTDIR=$(cd "$DESTDIR" && pwd)
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0), or stage with --destdir DIR"
fi
if [ "$LIVE" = yes ] && [ ! -d /run/systemd/system ] && [ "$DO_SYSTEMCTL" = yes ]; then
    say "systemd is not running here: the service is installed but not enabled or started"
    DO_SYSTEMCTL=no
fi

CHANGED=no
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

missing_packages() {
    local pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            echo "$pkg"
        fi
    done
}

install_packages() {
    local wanted=("${APT_PACKAGES[@]}") missing
    if [ "$DO_AVAHI" = yes ]; then wanted+=(avahi-daemon); fi
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then return; fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    CHANGED=yes
}

make_account() {
    if ! getent group "$ACCOUNT" >/dev/null; then
        groupadd --system "$ACCOUNT"
        CHANGED=yes
    fi
    if ! getent passwd "$ACCOUNT" >/dev/null; then
        useradd --system --gid "$ACCOUNT" --home-dir /var/lib/ipp-gateway --no-create-home \
            --shell /usr/sbin/nologin --comment "IPP gateway" "$ACCOUNT"
        say "made the account $ACCOUNT"
        CHANGED=yes
    fi
    # The unit adds these groups to the service itself; membership here lets
    # `sudo -u ipp-gateway ipp-gateway doctor` open the same devices.
    local group
    for group in lp dialout; do
        if getent group "$group" >/dev/null && [[ " $(id -nG "$ACCOUNT") " != *" $group "* ]]; then
            usermod -a -G "$group" "$ACCOUNT"
            CHANGED=yes
        fi
    done
}

# put SRC DEST MODE: copy when the content or mode differs, so that an unchanged file keeps
# its timestamp and a second run leaves the tree exactly as it was.
put() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        if [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then chmod "$mode" "$dest"; CHANGED=yes; fi
        return
    fi
    install -D -m "$mode" "$src" "$dest"
    say "installed $2"
    CHANGED=yes
}

# The source as a tree in $WORK/src, copied so that pip's in-tree build leaves the checkout
# clean, and without build leftovers (a compiled codec of another architecture).
stage_source() {
    [ -f "$SOURCE/pyproject.toml" ] || die "--source $SOURCE: not a checkout (no pyproject.toml)"
    mkdir -p "$WORK/src"
    tar -C "$SOURCE" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.so' \
        --exclude='*.egg-info' -cf - pyproject.toml setup.py README.md gateway drivers ippwire \
        | tar -C "$WORK/src" -xf -
}

# What decides whether the venv is up to date: the interpreter and what pip would install.
install_digest() {
    {
        "$PYTHON" -c 'import sys; print(sys.version)'
        if [ -n "$WHEELHOUSE" ]; then
            (cd "$WHEELHOUSE" && find . -maxdepth 1 -name '*.whl' -type f -print0 | sort -z \
                | xargs -0 -r sha256sum)
        else
            (cd "$WORK/src" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
        fi
    } | sha256sum | cut -d' ' -f1
}

# The wheels pip fetches on armhf come from piwheels (Raspberry Pi OS names it in
# /etc/pip.conf); elsewhere on armhf cryptography and Pillow would be built from source.
pip_index_args() {
    if [ -n "$WHEELHOUSE" ]; then
        printf '%s\n' --no-index --find-links "$WHEELHOUSE"
    elif [ "$(dpkg --print-architecture 2>/dev/null || true)" = armhf ] \
            && ! grep -qs piwheels /etc/pip.conf; then
        printf '%s\n' --extra-index-url https://www.piwheels.org/simple
    fi
}

package_path() {
    if [ -z "$WHEELHOUSE" ]; then echo "$WORK/src"; return; fi
    local wheels=("$WHEELHOUSE"/ipp_gateway-*.whl)
    if [ ! -f "${wheels[0]}" ] || [ "${#wheels[@]}" -ne 1 ]; then
        die "--wheelhouse $WHEELHOUSE: needs exactly one ipp_gateway-*.whl"
    fi
    echo "${wheels[0]}"
}

install_venv() {
    local venv=$DESTDIR$OPT/venv stamp=$DESTDIR$OPT/share/installed digest index_args
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is older than Python 3.11 (Debian 12 or later is needed)"
    if [ -z "$WHEELHOUSE" ]; then stage_source; fi
    digest=$(install_digest)
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import gateway' 2>/dev/null \
            && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
        return
    fi
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        # Missing, or made by an interpreter that is gone (a Debian upgrade): start over.
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        "$PYTHON" -m venv "$venv" || die "$PYTHON -m venv failed: apt-get install python3-venv"
    fi
    mapfile -t index_args < <(pip_index_args)
    say "installing the gateway into $OPT/venv"
    # A path, not a name: pip then reinstalls the gateway even when its version is the same.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
        "${index_args[@]}" "$(package_path)"
    if [ -n "$DESTDIR" ]; then
        # The venv's scripts name their interpreter by its staged path; name the final one.
        { grep -lrsI --null -F "$DESTDIR$OPT/venv" "$venv/bin" "$venv/pyvenv.cfg" || true; } \
            | xargs -0 -r sed -i "s|$DESTDIR$OPT/venv|$OPT/venv|g"
    fi
    mkdir -p "$(dirname "$stamp")"
    echo "$digest" >"$stamp"
    CHANGED=yes
}

install_files() {
    put "$HERE/ipp-gateway.service" "$UNIT" 0644
    put "$HERE/70-ipp-gateway.rules" "$RULES" 0644
    put "$HERE/uninstall.sh" "$OPT/share/uninstall.sh" 0755
    put "$HERE/ipp-gateway.example.toml" "$OPT/share/ipp-gateway.example.toml" 0644
    if [ "$(readlink "$DESTDIR$LINK" 2>/dev/null)" != "$OPT/venv/bin/ipp-gateway" ]; then
        mkdir -p "$(dirname "$DESTDIR$LINK")"
        ln -sfn "$OPT/venv/bin/ipp-gateway" "$DESTDIR$LINK"
        CHANGED=yes
    fi
    # The service may write here (the web page's printer form): group-writable, no others.
    if [ ! -d "$DESTDIR$ETC" ]; then
        install -d -m 0770 "$DESTDIR$ETC"
        CHANGED=yes
    fi
    if [ ! -e "$DESTDIR$ETC/gateway.toml" ]; then
        install -m 0660 "$HERE/gateway.toml" "$DESTDIR$ETC/gateway.toml"
        say "installed $ETC/gateway.toml"
        CHANGED=yes
    else
        say "kept $ETC/gateway.toml"
    fi
    if [ "$LIVE" = yes ]; then
        chown "root:$ACCOUNT" "$ETC" "$ETC/gateway.toml"
    fi
}

check_config() {
    if ! "$DESTDIR$OPT/venv/bin/python" -m gateway check-config "$DESTDIR$ETC/gateway.toml"; then
        die "fix $ETC/gateway.toml (the service would not start), then run this again"
    fi
}

start_service() {
    udevadm control --reload
    # Devices plugged in before the rule existed get their group now.
    udevadm trigger --action=change --subsystem-match=usb --subsystem-match=usbmisc \
        --subsystem-match=tty
    systemctl daemon-reload
    systemctl enable --quiet ipp-gateway.service
    if [ "$DO_START" = no ]; then return; fi
    if systemctl is-active --quiet cups.service cups.socket; then
        say "warning: CUPS is active and may hold port 631; see server.listen in $ETC/gateway.toml"
    fi
    if [ "$CHANGED" = yes ]; then
        systemctl restart ipp-gateway.service
    else
        systemctl start ipp-gateway.service
    fi
}

if [ "$DO_APT" = yes ]; then install_packages; fi
if [ "$LIVE" = yes ]; then make_account; fi
install_venv
install_files
check_config
if [ "$DO_SYSTEMCTL" = yes ]; then start_service; fi
# The last line is for automation (the Ansible role's changed_when).
if [ "$CHANGED" = yes ]; then say "result: changed"; else say "result: unchanged"; fi
