"""Configuration: TOML (stdlib tomllib) validated into frozen dataclasses.

Every error names the key path and what is allowed, e.g.
`printer[0].driver: 'pcl6' is not one of pcl5, postscript, raw`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers import (
    MEDIA_SIZES,
    RAW_PASSTHROUGH_FORMATS,
    DeviceUri,
    UriError,
    check_device_uri,
    driver_names,
    get_driver,
    pjl_drivers,
)
from gateway.access import DEFAULT_ALLOW, parse_rule
from gateway.authority import authority
from gateway.policy import ANYONE, AUTHENTICATED

DEFAULT_PORT = 8631
DEFAULT_USER = "lp"  # Debian's printing account: owns /dev/usb/lp* (group lp), no login
# The driver of the built-in default printer: a converting one, so that what lands in the
# output directory is what a legacy printer would get (PostScript, viewable anywhere).
DEFAULT_PRINTER_DRIVER = "postscript"
DEFAULT_RESOLUTION = 300
USER_PATTERN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")
# What `--printer NAME=URI,KEY=VALUE...` may set after the URI.
PRINTER_ARG_KEYS = ("driver", "formats", "resolutions")
LIST_ARG_KEYS = ("formats", "resolutions")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")
# A network interface name as Linux allows it (IFNAMSIZ: at most 15 bytes, no "/" or space).
INTERFACE_PATTERN = re.compile(r"^[^/\s:]{1,15}$")
DNSSD_BACKENDS = ("auto", "avahi", "zeroconf")


class ConfigError(Exception):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ListenAddress:
    host: str  # "" = every interface (IPv4 and IPv6)
    port: int
    # A [[server.listeners]] entry's own access rules (gateway.access); None: the global
    # server.allow / server.deny.
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return authority(self.host or "*", self.port)


@dataclass(frozen=True)
class PrinterConfig:
    name: str
    device_uri: str
    driver: str = "raw"
    info: str = ""
    location: str = ""
    make_and_model: str = ""
    media: tuple[str, ...] = ()
    media_default: str = ""
    resolutions: tuple[int, ...] = ()
    color: bool | None = None
    duplex: bool | None = None
    pjl: bool | None = None  # wrap PCL 5 / PostScript jobs in PJL; None = the driver's default
    status_interval: float = 30.0  # seconds between device status queries while idle; 0 = off
    # raw only: the formats passed through as they are (document-format-supported)
    formats: tuple[str, ...] = ()
    # Who may print (gateway.policy): ("anyone",), ("authenticated",), or user names and
    # "@group"s; anything but "anyone" needs [auth] enabled.
    print_by: tuple[str, ...] = ("anyone",)


@dataclass(frozen=True)
class DnssdConfig:
    """`[dnssd]`: advertising the printers over DNS-SD (gateway.dnssd)."""

    enabled: bool = True
    # "auto": avahi-daemon over D-Bus where it runs (a second mDNS responder on that host
    # would fight it over the host name), else python-zeroconf.
    backend: str = "auto"
    interfaces: tuple[str, ...] = ()  # advertise on these only; () = every interface


@dataclass(frozen=True)
class UsbConfig:
    """`[usb]`: USB printers plugged in while the gateway runs (gateway.hotplug)."""

    enabled: bool = True  # watch the bus: usb:// printers show offline while unplugged
    autosetup: bool = True  # a printer plugged in that no printer uses is set up by itself
    scan_interval: float = 2.0  # seconds between scans where no device events wake us


@dataclass(frozen=True)
class AuthConfig:
    """`[auth]`: HTTP Basic authentication (gateway.authn) against the password file in the
    spool (`ipp-gateway passwd`), and optionally the system's accounts through PAM."""

    enabled: bool = False
    # Basic sends the password in the clear: only over TLS (ipps, or an upgraded
    # connection) unless this is set, which start-up warns about.
    allow_plain_http: bool = False
    pam: bool = False
    pam_service: str = "ipp-gateway"
    realm: str = "ipp-gateway"


@dataclass(frozen=True)
class LimitsConfig:
    """`[limits]`: what one client, or many, may hold of the server at once."""

    max_connections: int = 512  # in total (lowered below the descriptor limit at start)
    max_connections_per_client: int = 64  # from one address
    header_timeout: float = 10.0  # seconds from a request's first byte to the end of its head
    idle_timeout: float = 30.0  # seconds a connection may wait for its next request
    max_header_bytes: int = 16 * 1024  # a request head larger -> 431
    max_header_fields: int = 100  # header lines in a request head; more -> 431
    # Jobs not yet completed (pending, held, processing), each holding a record and maybe a
    # document in the spool: a new job past either is refused with server-error-too-many-jobs.
    max_jobs: int = 500  # in total
    max_jobs_per_user: int = 100  # of one job-originating-user-name
    # New jobs are refused (server-error-busy) while the spool's filesystem has less free
    # space than this; 0 turns the check off. The default is the start-up check's floor
    # (startup.MIN_FREE_BYTES): a gateway that starts also takes jobs.
    min_free_disk_mb: int = 32


@dataclass(frozen=True)
class Config:
    listen: tuple[ListenAddress, ...] = (ListenAddress("", DEFAULT_PORT),)
    spool: Path = field(default_factory=lambda: default_spool())
    printers: tuple[PrinterConfig, ...] = ()
    log_level: str = "info"
    job_history: int = 200
    max_job_bytes: int = 1 << 30
    read_timeout: float = 30.0
    multiple_operation_timeout: int = 120
    # The account the gateway runs as once its ports are bound, when started as root; ""
    # means DEFAULT_USER. "root" keeps root (warned about at start).
    user: str = ""
    log_file: Path | None = None  # rotated at LOG_FILE_BYTES; None = standard error
    # IPPS on the listen ports (gateway.tls): with a self-signed certificate kept in the
    # spool, unless both tls_certificate and tls_key name a PEM pair to serve instead.
    tls: bool = True
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    source: str = "built-in default"
    dnssd: DnssdConfig = DnssdConfig()
    # Who may connect (gateway.access): networks in CIDR form or "local" (loopback and the
    # host's own subnets); deny wins over allow.
    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = ()
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    usb: UsbConfig = UsbConfig()


def default_spool() -> Path:
    if os.geteuid() == 0:
        return Path("/var/spool/ipp-gateway")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ipp-gateway"


def default_printer(spool: Path) -> PrinterConfig:
    """What `make run` serves: a 300 dpi PostScript printer writing into files (a stand-in
    for a real one; at 300 dpi Ghostscript flattens transparent PDFs 2.5x faster than at 600,
    which matters on a Raspberry Pi)."""
    return PrinterConfig(name="default", device_uri=f"file://{spool / 'output' / 'default'}/",
                         driver=DEFAULT_PRINTER_DRIVER, resolutions=(DEFAULT_RESOLUTION,))


def parse_listen(text: str, key: str) -> ListenAddress:
    match = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*)):(\d{1,5})", text.strip())
    if not match:
        raise ConfigError(f"{key}: {text!r} is not HOST:PORT (e.g. 0.0.0.0:631, [::1]:8631, *:631)")
    host = match.group(1) or match.group(2) or ""
    port = int(match.group(3))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{key}: port {port} is outside 0..65535")
    return ListenAddress("" if host in ("*", "") else host, port)


def parse_printer_arg(text: str, key: str = "--printer") -> PrinterConfig:
    """`NAME=DEVICE_URI[,driver=D][,formats=TYPE[,TYPE...]][,resolutions=DPI[,DPI...]]`.

    The settings start at the first `,driver=`, `,formats=` or `,resolutions=`: a device URI
    may itself hold commas (`lpd://h/q?order=data,control`), never those. A list goes on over
    the following commas up to the next `KEY=`."""
    name, sep, rest = text.partition("=")
    if not sep:
        raise ConfigError(f"{key}: {text!r} is not NAME=DEVICE_URI[,driver=D]")
    found = re.search(",({})=".format("|".join(PRINTER_ARG_KEYS)), rest)
    uri, settings = rest, ""
    if found is not None:
        uri, settings = rest[: found.start()], rest[found.start() + 1 :]
    table: dict[str, Any] = {"name": name, "device": uri}
    current = ""
    for part in settings.split(",") if settings else []:
        setting, has_value, value = part.partition("=")
        if has_value and setting in PRINTER_ARG_KEYS:
            current = setting
            if setting in table:
                raise ConfigError(f"{key}: {setting}= is given twice")
            table[setting] = [value] if setting in LIST_ARG_KEYS else value
        elif current in LIST_ARG_KEYS and not has_value:
            table[current].append(part)
        else:
            raise ConfigError(f"{key}: {part!r} is not one of "
                              f"{', '.join(k + '=...' for k in PRINTER_ARG_KEYS)}")
    if "resolutions" in table:
        try:
            table["resolutions"] = [int(dpi) for dpi in table["resolutions"]]
        except ValueError:
            raise ConfigError(f"{key}: resolutions= takes numbers (dots per inch), e.g. "
                              f"resolutions=300,600") from None
    return _printer(table, key)


def load_config(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return config_from_dict(data, source=str(path))


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    _only_keys(data, {"server", "printer", "dnssd", "limits", "auth", "usb"}, "")
    server = data.get("server", {})
    _expect(server, dict, "server", "a table")
    _only_keys(
        server,
        {"listen", "spool", "log_level", "job_history", "max_job_mb", "read_timeout",
         "multiple_operation_timeout", "user", "log_file", "tls", "tls_certificate",
         "tls_key", "allow", "deny", "listeners"},
        "server.",
    )
    listen = _listen(server)
    spool = Path(_str(server.get("spool", str(default_spool())), "server.spool"))
    log_level = _choice(server.get("log_level", "info"), "server.log_level",
                        ("debug", "info", "warning", "error"))
    history = _int(server.get("job_history", 200), "server.job_history", 0, 100_000)
    max_mb = _int(server.get("max_job_mb", 1024), "server.max_job_mb", 1, 1 << 20)
    timeout = _number(server.get("read_timeout", 30), "server.read_timeout", 1, 3600)
    mot = _int(server.get("multiple_operation_timeout", 120),
               "server.multiple_operation_timeout", 10, 86400)
    user = parse_user(_str(server.get("user", ""), "server.user"), "server.user")
    log_file = _optional_path(server.get("log_file"), "server.log_file")
    tls, tls_certificate, tls_key = _tls(server)
    raw_printers = data.get("printer", [])
    _expect(raw_printers, list, "printer", "an array of tables ([[printer]])")
    printers = tuple(_printer(p, f"printer[{i}]") for i, p in enumerate(raw_printers))
    names = [p.name for p in printers]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"printer: the name {name!r} is used twice; names must be unique")
    auth = _auth(data.get("auth", {}))
    for i, printer in enumerate(printers):
        if printer.print_by != ANYONE and not auth.enabled:
            raise ConfigError(f"printer[{i}].print: {list(printer.print_by)} needs "
                              f"authentication: set [auth] enabled = true")
    return Config(listen=listen, spool=spool, printers=printers, log_level=log_level,
                  job_history=history, max_job_bytes=max_mb << 20, read_timeout=timeout,
                  multiple_operation_timeout=mot, user=user, log_file=log_file,
                  tls=tls, tls_certificate=tls_certificate, tls_key=tls_key, source=source,
                  dnssd=_dnssd(data.get("dnssd", {})),
                  allow=_rules(server.get("allow", list(DEFAULT_ALLOW)), "server.allow"),
                  deny=_rules(server.get("deny", []), "server.deny"),
                  limits=_limits(data.get("limits", {})), auth=auth,
                  usb=_usb(data.get("usb", {})))


def _usb(raw: Any) -> UsbConfig:
    _expect(raw, dict, "usb", "a table")
    _only_keys(raw, {"enabled", "autosetup", "scan_interval"}, "usb.")
    defaults = UsbConfig()
    return UsbConfig(
        enabled=bool(_optional_bool(raw.get("enabled", defaults.enabled), "usb.enabled")),
        autosetup=bool(_optional_bool(raw.get("autosetup", defaults.autosetup),
                                      "usb.autosetup")),
        scan_interval=_number(raw.get("scan_interval", defaults.scan_interval),
                              "usb.scan_interval", 0.1, 3600))


def _auth(raw: Any) -> AuthConfig:
    _expect(raw, dict, "auth", "a table")
    _only_keys(raw, set(AuthConfig.__dataclass_fields__), "auth.")
    defaults = AuthConfig()
    flags = {key: raw.get(key, getattr(defaults, key))
             for key in ("enabled", "allow_plain_http", "pam")}
    for key, value in flags.items():
        _expect(value, bool, f"auth.{key}", "true or false")
    realm = _str(raw.get("realm", defaults.realm), "auth.realm")
    if not realm or not realm.isprintable() or '"' in realm or "\\" in realm:
        raise ConfigError("auth.realm: must be printable text without quotes or backslashes")
    service = _str(raw.get("pam_service", defaults.pam_service), "auth.pam_service")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", service):
        raise ConfigError("auth.pam_service: must be a PAM service name (A-Z a-z 0-9 . _ -)")
    return AuthConfig(enabled=flags["enabled"], allow_plain_http=flags["allow_plain_http"],
                      pam=flags["pam"], pam_service=service, realm=realm)


def _print_by(value: Any, key: str) -> tuple[str, ...]:
    """`printer.print`: "anyone", "authenticated", or a list of user names and "@group"s."""
    if isinstance(value, str):
        value = [value]
    entries = tuple(dict.fromkeys(_str(item, f"{key}[{i}]").strip()
                                  for i, item in enumerate(_list(value, key))))
    if not entries:
        raise ConfigError(f"{key}: empty, so nobody could print; say \"anyone\", "
                          f"\"authenticated\", or list users and @groups")
    for entry in entries:
        if entry in (ANYONE[0], AUTHENTICATED) and len(entries) > 1:
            raise ConfigError(f"{key}: {entry!r} stands alone; it cannot be listed with others")
        name = entry.removeprefix("@")
        if not name or ":" in name or not name.isprintable() or " " in name:
            raise ConfigError(f"{key}: {entry!r} is not a user name or @group")
    return entries


def _listen(server: dict[str, Any]) -> tuple[ListenAddress, ...]:
    """`server.listen` (HOST:PORT strings, under server.allow / server.deny) and
    `[[server.listeners]]` (tables: `address`, and `allow` and `deny` lists of its own, each
    left out being the global one). Without either, *:8631."""
    tables = server.get("listeners", [])
    _expect(tables, list, "server.listeners", "an array of tables ([[server.listeners]])")
    listen_list = server.get("listen", [] if tables else [f"*:{DEFAULT_PORT}"])
    if isinstance(listen_list, str):
        listen_list = [listen_list]
    _expect(listen_list, list, "server.listen", "a list of HOST:PORT strings")
    listen = [parse_listen(_str(v, f"server.listen[{i}]"), f"server.listen[{i}]")
              for i, v in enumerate(listen_list)]
    for i, table in enumerate(tables):
        key = f"server.listeners[{i}]"
        _expect(table, dict, key, "a table")
        _only_keys(table, {"address", "allow", "deny"}, f"{key}.")
        if "address" not in table:
            raise ConfigError(f"{key}: needs 'address' (HOST:PORT, e.g. \"*:8632\")")
        address = parse_listen(_str(table["address"], f"{key}.address"), f"{key}.address")
        listen.append(dataclasses.replace(
            address,
            allow=_rules(table["allow"], f"{key}.allow") if "allow" in table else None,
            deny=_rules(table["deny"], f"{key}.deny") if "deny" in table else None))
    if not listen:
        raise ConfigError("server.listen: must name at least one HOST:PORT")
    bound = [(address.host, address.port) for address in listen if address.port != 0]
    for address in listen:
        if bound.count((address.host, address.port)) > 1:
            raise ConfigError(f"server.listeners: {address} is listed twice (in server.listen "
                              "or server.listeners); each address is bound once")
    return tuple(listen)


def _rules(value: Any, key: str) -> tuple[str, ...]:
    """`server.allow` / `server.deny` (or a listener's own): addresses, networks in CIDR
    form, or "local"."""
    if isinstance(value, str):
        value = [value]
    rules = []
    for i, item in enumerate(_list(value, key)):
        text = _str(item, f"{key}[{i}]")
        try:
            parse_rule(text)
        except ValueError as exc:
            raise ConfigError(f"{key}[{i}]: {exc}") from None
        rules.append(text.strip())
    if key.endswith(".allow") and not rules:
        default = '["local"]' if key == "server.allow" else "server.allow"
        raise ConfigError(f"{key}: empty, so nobody could connect; list networks (e.g. "
                          f"[\"local\", \"10.0.0.0/8\"]) or leave it out for {default}")
    return tuple(dict.fromkeys(rules))


def _limits(raw: Any) -> LimitsConfig:
    _expect(raw, dict, "limits", "a table")
    defaults = LimitsConfig()
    _only_keys(raw, set(defaults.__dataclass_fields__), "limits.")
    total = _int(raw.get("max_connections", defaults.max_connections),
                 "limits.max_connections", 1, 1_000_000)
    per_client = _int(raw.get("max_connections_per_client",
                              defaults.max_connections_per_client),
                      "limits.max_connections_per_client", 1, 1_000_000)
    if per_client > total:
        raise ConfigError(f"limits.max_connections_per_client: {per_client} is above "
                          f"limits.max_connections ({total})")
    return LimitsConfig(
        max_connections=total,
        max_connections_per_client=per_client,
        header_timeout=_number(raw.get("header_timeout", defaults.header_timeout),
                               "limits.header_timeout", 0.5, 3600),
        idle_timeout=_number(raw.get("idle_timeout", defaults.idle_timeout),
                             "limits.idle_timeout", 0.5, 86400),
        max_header_bytes=_int(raw.get("max_header_bytes", defaults.max_header_bytes),
                              "limits.max_header_bytes", 1024, 1 << 20),
        max_header_fields=_int(raw.get("max_header_fields", defaults.max_header_fields),
                               "limits.max_header_fields", 8, 10_000),
        **_job_limits(raw, defaults),
    )


def _job_limits(raw: dict[str, Any], defaults: LimitsConfig) -> dict[str, int]:
    """`max_jobs`, `max_jobs_per_user` and `min_free_disk_mb` of `[limits]`."""
    jobs = _int(raw.get("max_jobs", defaults.max_jobs), "limits.max_jobs", 1, 1_000_000)
    # Left out, the per-user limit follows a lower total rather than refuse the file.
    per_user = _int(raw.get("max_jobs_per_user", min(defaults.max_jobs_per_user, jobs)),
                    "limits.max_jobs_per_user", 1, 1_000_000)
    if per_user > jobs:
        raise ConfigError(f"limits.max_jobs_per_user: {per_user} is above "
                          f"limits.max_jobs ({jobs})")
    free = _int(raw.get("min_free_disk_mb", defaults.min_free_disk_mb),
                "limits.min_free_disk_mb", 0, 1 << 30)
    return {"max_jobs": jobs, "max_jobs_per_user": per_user, "min_free_disk_mb": free}


def _dnssd(raw: Any) -> DnssdConfig:
    _expect(raw, dict, "dnssd", "a table")
    _only_keys(raw, {"enabled", "backend", "interfaces"}, "dnssd.")
    enabled = _optional_bool(raw.get("enabled", True), "dnssd.enabled")
    backend = _choice(raw.get("backend", "auto"), "dnssd.backend", DNSSD_BACKENDS)
    interfaces = []
    for i, value in enumerate(_list(raw.get("interfaces", []), "dnssd.interfaces")):
        name = _str(value, f"dnssd.interfaces[{i}]")
        if not INTERFACE_PATTERN.match(name):
            raise ConfigError(f"dnssd.interfaces[{i}]: {name!r} is not a network interface "
                              "name (e.g. eth0, wlan0)")
        interfaces.append(name)
    return DnssdConfig(enabled=bool(enabled), backend=backend,
                       interfaces=tuple(dict.fromkeys(interfaces)))


def _tls(server: dict[str, Any]) -> tuple[bool, Path | None, Path | None]:
    """`server.tls` (default true) and the optional `tls_certificate` / `tls_key` pair."""
    enabled = _optional_bool(server.get("tls", True), "server.tls")
    certificate = _optional_path(server.get("tls_certificate"), "server.tls_certificate")
    key = _optional_path(server.get("tls_key"), "server.tls_key")
    if (certificate is None) != (key is None):
        given, missing = (("tls_certificate", "tls_key") if key is None
                          else ("tls_key", "tls_certificate"))
        raise ConfigError(f"server.{missing}: needed with server.{given} (a certificate and "
                          "its key go together; leave both out for a self-signed certificate)")
    if certificate is not None and not enabled:
        raise ConfigError("server.tls_certificate: given while server.tls = false; remove it "
                          "or turn TLS on")
    return bool(enabled), certificate, key


def _printer(raw: Any, key: str) -> PrinterConfig:
    _expect(raw, dict, key, "a table")
    _only_keys(raw, {"name", "device", "driver", "info", "location", "make_and_model", "media",
                     "media_default", "resolutions", "color", "duplex", "pjl",
                     "status_interval", "formats", "print"},
                key + ".")
    if "name" not in raw or "device" not in raw:
        raise ConfigError(f"{key}: needs both 'name' and 'device'")
    name = _str(raw["name"], f"{key}.name")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{key}.name: {name!r} must be 1-127 of A-Z a-z 0-9 _ . - "
                          "(starting with a letter or digit)")
    device = _str(raw["device"], f"{key}.device")
    try:
        check_device_uri(DeviceUri.parse(device))
    except UriError as exc:
        raise ConfigError(f"{key}.device: {exc}") from None
    driver = _choice(raw.get("driver", "raw"), f"{key}.driver", tuple(driver_names()))
    formats = _formats(raw.get("formats"), driver, f"{key}.formats")
    media = tuple(_choice(_str(m, f"{key}.media"), f"{key}.media", tuple(MEDIA_SIZES))
                  for m in _list(raw.get("media", []), f"{key}.media"))
    media_default = _str(raw.get("media_default", media[0] if media else ""),
                         f"{key}.media_default")
    if media_default and media and media_default not in media:
        raise ConfigError(
            f"{key}.media_default: {media_default!r} is not one of {', '.join(media)}")
    resolutions = tuple(_choice(r, f"{key}.resolutions", (150, 200, 300, 360, 600, 720, 1200))
                        for r in _list(raw.get("resolutions", []), f"{key}.resolutions"))
    return PrinterConfig(
        name=name, device_uri=device, driver=driver,
        info=_str(raw.get("info", ""), f"{key}.info"),
        location=_str(raw.get("location", ""), f"{key}.location"),
        make_and_model=_str(raw.get("make_and_model", ""), f"{key}.make_and_model"),
        media=media, media_default=media_default, resolutions=resolutions,
        color=_optional_bool(raw.get("color"), f"{key}.color"),
        duplex=_optional_bool(raw.get("duplex"), f"{key}.duplex"),
        pjl=_pjl(raw.get("pjl"), driver, f"{key}.pjl"),
        status_interval=_number(raw.get("status_interval", 30), f"{key}.status_interval",
                                0, 86400),
        formats=formats,
        print_by=_print_by(raw.get("print", list(ANYONE)), f"{key}.print"),
    )


def _formats(value: Any, driver: str, key: str) -> tuple[str, ...]:
    """`formats`: what a raw queue passes through untouched; other drivers convert, and their
    formats follow from what they can convert."""
    if value is None:
        return ()
    if driver != "raw":
        raise ConfigError(f"{key}: only a raw printer lists its formats; the {driver!r} driver "
                          "accepts what it can convert")
    listed = [_str(v, key).strip().lower() for v in _list(value, key)]
    allowed = {fmt.lower(): fmt for fmt in RAW_PASSTHROUGH_FORMATS}
    for fmt in listed:
        if fmt not in allowed:
            raise ConfigError(f"{key}: {fmt!r} is not one of {', '.join(RAW_PASSTHROUGH_FORMATS)}")
    if not listed:
        raise ConfigError(f"{key}: list at least one format (e.g. application/octet-stream)")
    return tuple(dict.fromkeys(allowed[fmt] for fmt in listed))


def parse_user(name: str, key: str) -> str:
    if name and not USER_PATTERN.match(name):
        raise ConfigError(f"{key}: {name!r} is not a user name")
    return name


def _optional_path(value: Any, key: str) -> Path | None:
    if value is None:
        return None
    text = _str(value, key)
    if not text:
        return None
    path = Path(text)
    if not path.is_absolute():
        raise ConfigError(f"{key}: {text!r} must be an absolute path")
    return path


def _pjl(value: Any, driver: str, key: str) -> bool | None:
    """`pjl`: only for the languages a PJL job wrapper can carry (PCL 5, PostScript)."""
    wanted = _optional_bool(value, key)
    if wanted is None:
        return None
    choosable = pjl_drivers()
    if driver in choosable:
        return wanted
    if wanted == get_driver(driver).capabilities.pjl:
        return None  # as the language has it anyway: PCL XL's PJL header comes from Ghostscript
    raise ConfigError(f"{key}: the {driver!r} driver cannot {'use' if wanted else 'turn off'} "
                      f"a PJL job wrapper (pjl applies to {', '.join(choosable)})")


def _only_keys(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _expect(value: Any, kind: type, key: str, what: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: must be {what}, not {type(value).__name__}")


def _str(value: Any, key: str) -> str:
    _expect(value, str, key, "a string")
    return str(value)


def _list(value: Any, key: str) -> list[Any]:
    _expect(value, list, key, "a list")
    return list(value)


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} is outside {low}..{high}")
    return value


def _number(value: Any, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: must be a number from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} is outside {low}..{high}")
    return float(value)


def _choice(value: Any, key: str, allowed: tuple[Any, ...]) -> Any:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
    return value


def _optional_bool(value: Any, key: str) -> bool | None:
    if value is None:
        return None
    _expect(value, bool, key, "true or false")
    return bool(value)
