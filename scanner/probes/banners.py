"""Software facts (product, upstream version, distro build, CPE) from service banners and nmap's
-sV fingerprints: what scanner/vulndb matches advisories against.

Banners are attacker-controlled: only their first 4 KiB are read, every pattern is ASCII-only and
linear (bounded repeats, none nested), and no field ever carries a control character.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import unquote

from scanner.model import Service
from scanner.safetext import MAX_BANNER, clip, escape_controls

MAX_EVIDENCE = 256  # characters of banner kept as evidence (plus clip's "…[+N chars]")

# posture's product key -> (CPE vendor, CPE product) as NVD names them.
CPE_NAMES: dict[str, tuple[str, str]] = {
    "openssh": ("openbsd", "openssh"),
    "dropbear": ("dropbear_ssh_project", "dropbear_ssh"),
    "libssh": ("libssh", "libssh"),
    "apache_httpd": ("apache", "http_server"),
    "nginx": ("f5", "nginx"),
    "openssl": ("openssl", "openssl"),
    "lighttpd": ("lighttpd", "lighttpd"),
    "iis": ("microsoft", "internet_information_services"),
    "tomcat": ("apache", "tomcat"),
    "php": ("php", "php"),
    "vsftpd": ("vsftpd_project", "vsftpd"),
    "proftpd": ("proftpd", "proftpd"),
    "pure-ftpd": ("pureftpd", "pure-ftpd"),
    "filezilla_server": ("filezilla-project", "filezilla_server"),
    "exim": ("exim", "exim"),
    "postfix": ("postfix", "postfix"),
    "sendmail": ("sendmail", "sendmail"),
    "dovecot": ("dovecot", "dovecot"),
    "redis": ("redis", "redis"),
    "memcached": ("memcached", "memcached"),
    "mysql": ("oracle", "mysql"),
    "mariadb": ("mariadb", "mariadb"),
    "postgresql": ("postgresql", "postgresql"),
    "samba": ("samba", "samba"),
    "elasticsearch": ("elastic", "elasticsearch"),
    "opensearch": ("amazon", "opensearch"),
}
# NVD splits these products' trailing letters into the CPE update field: 7.2p2 -> 7.2 : p2.
_CPE_UPDATE = {
    "openssh": re.compile(r"(\d{1,3}(?:\.\d{1,3}){0,3})(p\d{1,2})", re.A),
    "proftpd": re.compile(r"(\d{1,2}\.\d{1,2}\.\d{1,2})([a-z]{1,3}\d{0,2})", re.A),
}
# Distributions that patch security fixes into an unchanged upstream version.
BACKPORTING = frozenset(
    {
        "debian",
        "ubuntu",
        "raspbian",
        "rhel",
        "centos",
        "fedora",
        "rocky",
        "almalinux",
        "oracle",
        "amazon",
        "suse",
        "alpine",
    }
)
# FreeBSD patches its base system (FreeBSD-SA) without bumping upstream versions; ports do not.
_FREEBSD_BASE = frozenset({"openssh", "openssl"})
# Debian/Ubuntu source packages whose package versions carry an epoch the banner does not show.
_DEBIAN_EPOCHS = {"openssh": "1:", "mariadb": "1:", "redis": "5:", "samba": "2:", "dovecot": "1:"}
_DPKG_DISTROS = frozenset({"debian", "ubuntu", "raspbian"})

# Bare OpenSSH versions that RHEL-family releases send with no distro suffix; almost every such
# banner is one of these builds, which carry years of backported fixes.
_RHEL_OPENSSH = {
    "5.3": "RHEL/CentOS 6",
    "7.4": "RHEL/CentOS 7 and Amazon Linux 2",
    "8.0": "RHEL/CentOS 8",
    "8.7": "RHEL 9",
}

_DISTRO_WORD = re.compile(
    r"(?<![a-z])(ubuntu|raspbian|debian|deb\d{1,2}u\d{1,3}|centos|red[ \t]?hat|rhel|el[5-9]"
    r"|fedora|rocky|almalinux|oracle[ \t]linux|amazon|suse|sles|alpine|freebsd|win32|win64"
    r"|windows)(?![a-z])",
    re.I | re.A,
)
_DISTRO_OF_WORD = {"redhat": "rhel", "red hat": "rhel", "sles": "suse", "oracle linux": "oracle"}
# When a text names several (e.g. "Debian-5ubuntu1.4"), the more specific one wins.
_DISTRO_RANK = ("ubuntu", "raspbian", "debian", "centos", "rocky", "almalinux", "oracle", "rhel")


@dataclass(frozen=True)
class Software:
    """One product a service runs, as its banner, nmap or the package manager tells it."""

    product: str  # posture's key: "openssh", "apache_httpd", "nginx", ...
    version: str | None  # upstream version as the vendor writes it ("7.2p2", "2.4.38", "1.0.2k")
    vendor: str | None = None  # CPE vendor ("openbsd", "apache")
    cpe: str | None = None  # CPE 2.3 formatted string, NVD's conventions
    distro: str | None = None  # "debian", "ubuntu", "rhel", "centos", "freebsd", "windows", ...
    distro_version: str | None = None  # package revision as the banner writes it ("4ubuntu2.8")
    package_version: str | None = None  # full distro package version ("1:7.2p2-4ubuntu2.8")
    source: str = "banner"  # "banner" | "nmap" | "package"
    evidence: str = ""  # the banner or fingerprint text, escaped and clipped
    backport_risk: bool = False  # a distro build: an upstream-version match is only tentative
    note: str | None = None  # why backport_risk is set when the banner names no distro


def _evidence(text: str) -> str:
    return clip(escape_controls(text.strip()), MAX_EVIDENCE)


def _cpe_value(text: str) -> str:
    # CPE 2.3 formatted strings quote every printable character but letters, digits, _ - .
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "\\" + c for c in text)


def cpe_for(product: str, version: str | None) -> str | None:
    """CPE 2.3 as NVD writes it (OpenSSH's `7.2p2` is version 7.2, update p2), or None when
    the product has no known CPE name or the version is unknown."""
    names = CPE_NAMES.get(product)
    if names is None or not version or not _VERSION_TEXT.fullmatch(version):
        return None
    update = "*"
    split = _CPE_UPDATE.get(product)
    found = split.fullmatch(version) if split else None
    if found:
        version, update = found.group(1), found.group(2)
    vendor, name = names
    return f"cpe:2.3:a:{vendor}:{name}:{_cpe_value(version)}:{update}:*:*:*:*:*:*"


_VERSION_TEXT = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}", re.A)
_REVISION_TEXT = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~:_-]{0,63}", re.A)


def _backport_risk(product: str, distro: str | None) -> bool:
    return distro in BACKPORTING or (distro == "freebsd" and product in _FREEBSD_BASE)


def _software(
    product: str,
    version: str | None,
    evidence: str,
    *,
    distro: str | None = None,
    revision: str | None = None,
    source: str = "banner",
    note: str | None = None,
) -> Software:
    # Patterns only capture clean ASCII; this guard keeps it so if one is ever loosened.
    version = version if version and _VERSION_TEXT.fullmatch(version) else None
    revision = revision if revision and _REVISION_TEXT.fullmatch(revision) else None
    package = None
    if version and revision and distro in _DPKG_DISTROS:
        package = f"{_DEBIAN_EPOCHS.get(product, '')}{version}-{revision}"
    names = CPE_NAMES.get(product)
    return Software(
        product=product,
        version=version,
        vendor=names[0] if names else None,
        cpe=cpe_for(product, version),
        distro=distro,
        distro_version=revision,
        package_version=package,
        source=source,
        evidence=_evidence(evidence),
        backport_risk=_backport_risk(product, distro) or note is not None,
        note=note,
    )


def distro_of(text: str) -> str | None:
    """The distribution a banner fragment names ("(Debian)", "Ubuntu-4ubuntu2.8", "el7"), if any."""
    found: set[str] = set()
    for match in _DISTRO_WORD.finditer(text[:MAX_BANNER]):
        word = re.sub(r"[ \t]", " ", match.group(1).lower())
        if word.startswith("deb") and word != "debian":
            word = "debian"  # +deb10u1: a Debian security update
        elif re.fullmatch(r"el\d", word):
            word = "rhel"
        elif word in ("win32", "win64"):
            word = "windows"
        found.add(_DISTRO_OF_WORD.get(word, word))
    if not found:
        return None
    return next((d for d in _DISTRO_RANK if d in found), min(found))


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


# --- SSH -----------------------------------------------------------------------------------------

_SSH_ID = re.compile(
    r"SSH-\d\.\d{1,2}-(?P<software>[!-~]{1,100})(?:[ \t]{1,8}(?P<comment>[ -~]{1,200}))?",
    re.I | re.A,
)
_SSH_VERSION = r"(?P<v>\d{1,4}(?:\.\d{1,3}){0,3}(?:p\d{1,2})?)"
_SSH_PRODUCTS = (
    (re.compile(r"OpenSSH_for_Windows_" + _SSH_VERSION, re.I | re.A), "openssh", "windows"),
    (re.compile(r"OpenSSH_" + _SSH_VERSION, re.I | re.A), "openssh", None),
    (re.compile(r"dropbear(?:_" + _SSH_VERSION + r")?", re.I | re.A), "dropbear", None),
    (re.compile(r"Cisco-" + _SSH_VERSION, re.I | re.A), "cisco_ssh", None),
    (re.compile(r"libssh[_-]" + _SSH_VERSION, re.I | re.A), "libssh", None),
)
# The distro build sshd appends (Debian's package-versioning patch, FreeBSD's VersionAddendum).
_SSH_BUILD = re.compile(
    r"(?<![A-Za-z])(?P<distro>Ubuntu|Debian|Raspbian|FreeBSD)[-_ ]"
    r"(?P<rev>[0-9][0-9A-Za-z.+~]{0,40})",
    re.I | re.A,
)


def _dpkg_distro(named: str, revision: str | None) -> str:
    # Ubuntu up to 12.04 sent "Debian-5ubuntu1.4": the revision tells the truth.
    if revision and "ubuntu" in revision.lower():
        return "ubuntu"
    return named.lower()


def parse_ssh(text: str) -> Software | None:
    """An SSH identification string (RFC 4253 4.2): `SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8`."""
    match = _SSH_ID.search(text)
    if match is None:
        return None
    software, comment = match["software"], match["comment"] or ""
    for pattern, product, fixed_distro in _SSH_PRODUCTS:
        found = pattern.match(software)
        if found is None:
            continue
        version = found["v"]
        distro, revision, note = fixed_distro, None, None
        build = _SSH_BUILD.search(comment)
        if build is not None:
            revision = build["rev"]
            distro = _dpkg_distro(build["distro"], revision)
        elif comment:
            distro = distro or distro_of(comment)
        elif product == "openssh" and fixed_distro is None and version in _RHEL_OPENSSH:
            note = (
                f"OpenSSH {version} with no distro suffix is what {_RHEL_OPENSSH[version]} "
                "sends, with fixes backported into that version"
            )
        return _software(
            product, version, match.group(0), distro=distro, revision=revision, note=note
        )
    return None


# --- HTTP Server header -------------------------------------------------------------------------

_SERVER_LINE = re.compile(r"^server[ \t]{0,8}:[ \t]{0,16}(?P<value>[^\r\n]{1,400})", re.I | re.M)
_HTTP_COMMENT = re.compile(r"\((?P<text>[^()\r\n]{0,100})\)")
_HTTP_TOKEN = re.compile(
    r"(?<![\w.-])(?P<name>[A-Za-z][\w.-]{0,40})(?:/(?P<v>[\w.+~-]{1,40}))?", re.A
)
_HTTP_PRODUCTS = {
    "apache": "apache_httpd",
    "nginx": "nginx",
    "microsoft-iis": "iis",
    "lighttpd": "lighttpd",
    "openssl": "openssl",
    "php": "php",
    "apache-coyote": "tomcat",
}
_LEADING_VERSION = re.compile(r"\d{1,4}(?:\.\d{1,4}){0,3}[a-z]{0,2}\d{0,2}", re.A)
# Build suffixes of a version token: `-fips` is a vendor (mostly RHEL) OpenSSL build,
# `-freebsd` FreeBSD's base-system one.
_VENDOR_SUFFIX = {"-fips": None, "-freebsd": "freebsd"}


def parse_http_server(text: str) -> list[Software]:
    """Every known product of a Server header, given alone or inside a whole HTTP response."""
    line_match = _SERVER_LINE.search(text)
    if line_match is not None:
        line = line_match["value"]
    elif text.startswith("HTTP/"):
        return []
    else:
        line = _line_at(text, 0).strip()
        first = _HTTP_TOKEN.match(line)
        if first is None or first["name"].lower() not in _HTTP_PRODUCTS:
            return []  # not a Server value: a body, a greeting of another protocol
    distro = distro_of(" ".join(m["text"] for m in _HTTP_COMMENT.finditer(line)))
    bare = _HTTP_COMMENT.sub(" ", line)
    found = []
    for token in _HTTP_TOKEN.finditer(bare):
        product = _HTTP_PRODUCTS.get(token["name"].lower())
        if product is None:
            continue
        raw = token["v"] or ""
        version_match = _LEADING_VERSION.match(raw)
        version = version_match.group(0) if version_match else None
        build_distro, note = distro, None
        suffix = raw[len(version) :].lower() if version else ""
        if suffix in _VENDOR_SUFFIX:
            build_distro = build_distro or _VENDOR_SUFFIX[suffix]
            if build_distro is None:
                note = f"{token.group(0)} is a vendor build, which may carry backported fixes"
        if product == "tomcat":
            version = None  # Apache-Coyote/1.1 names the connector's protocol, not Tomcat's version
        found.append(_software(product, version, line, distro=build_distro, note=note))
    return found


# --- FTP, SMTP, IMAP/POP, SMB, databases, caches -------------------------------------------------

_V3 = r"(?P<v>\d{1,3}(?:\.\d{1,3}){1,3}[a-z]{0,3}\d{0,2})"
_PARENS_DISTRO = re.compile(r"\((?P<text>[^()\r\n]{1,60})\)")


@dataclass(frozen=True)
class _Greeting:
    product: str
    pattern: re.Pattern[str]
    services: tuple[str, ...]  # nmap service names it is tried first for
    needs_service: bool = False  # too generic to trust without the service name


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I | re.A)


_GREETINGS = (
    _Greeting("vsftpd", _rx(r"\(vsFTPd(?:[ \t]{1,4}" + _V3 + r")?\)"), ("ftp",)),
    _Greeting("proftpd", _rx(r"ProFTPD(?:[ \t]{1,4}" + _V3 + r")?[ \t]{1,4}Server"), ("ftp",)),
    _Greeting("pure-ftpd", _rx(r"Pure-FTPd"), ("ftp",)),
    _Greeting(
        "filezilla_server",
        _rx(r"FileZilla[ \t]Server(?:[ \t]{1,4}version)?(?:[ \t]{1,4}" + _V3 + ")?"),
        ("ftp",),
    ),
    _Greeting("microsoft_ftp", _rx(r"Microsoft[ \t]FTP[ \t]Service"), ("ftp",)),
    _Greeting(
        "exim",
        _rx(r"(?<![A-Za-z])Exim(?![A-Za-z])(?:[ \t]{1,4}" + _V3 + ")?"),
        ("smtp", "submission"),
    ),
    _Greeting("postfix", _rx(r"ESMTP[ \t]{1,4}Postfix"), ("smtp", "submission")),
    _Greeting(
        "sendmail",
        _rx(
            r"Sendmail(?:[ \t]{1,4}" + _V3 + r"(?:/[0-9.]{1,16})?"
            r"(?:/(?P<d>Debian|Ubuntu)-(?P<r>[0-9][0-9A-Za-z.+~]{0,40}))?)?"
        ),
        ("smtp", "submission"),
    ),
    _Greeting("dovecot", _rx(r"Dovecot"), ("imap", "imaps", "pop3", "pop3s")),
    _Greeting("redis", _rx(r"redis_version:" + _V3), ("redis",)),
    _Greeting("redis", _rx(r"^-(?:DENIED[ \t]Redis|NOAUTH[ \t])"), ("redis",)),
    _Greeting("memcached", _rx(r"\AVERSION[ \t]" + _V3), ("memcached",), needs_service=True),
    _Greeting(
        "samba",
        _rx(r"(?<![A-Za-z])Samba[ \t]{1,4}" + _V3 + r"(?:-(?P<d>[A-Za-z]{1,20}))?"),
        ("netbios-ssn", "microsoft-ds", "smb"),
    ),
)
_ES_NUMBER = _rx(r'"number"[ \t\r\n]{0,8}:[ \t\r\n]{0,8}"' + _V3 + r'(?:-[A-Za-z0-9]{1,20})?"')
_ES_MARKERS = _rx(r'You Know, for Search|"lucene_version"|"cluster_uuid"')
_OPENSEARCH = _rx(r'"distribution"[ \t\r\n]{0,8}:[ \t\r\n]{0,8}"opensearch"')


def _greeting(greeting: _Greeting, text: str) -> Software | None:
    match = greeting.pattern.search(text)
    if match is None:
        return None
    groups = match.groupdict()
    line = _line_at(text, match.start())
    version = groups.get("v")
    revision = groups.get("r")
    if groups.get("d"):
        distro = _dpkg_distro(groups["d"], revision) if revision else distro_of(groups["d"])
    else:
        # "(Debian)", "(Debian/GNU)", "(Ubuntu)": the build the server names, not its hostname
        distro = distro_of(" ".join(m["text"] for m in _PARENS_DISTRO.finditer(line)))
        if distro is None and greeting.product == "exim":
            distro = distro_of(line[match.end() :])
    return _software(greeting.product, version, line, distro=distro, revision=revision)


def _elasticsearch(text: str, service: str) -> Software | None:
    if "elastic" not in service and _ES_MARKERS.search(text) is None:
        return None
    match = _ES_NUMBER.search(text)
    if match is None:
        return None
    product = "opensearch" if _OPENSEARCH.search(text) else "elasticsearch"
    return _software(product, match["v"], _line_at(text, match.start()))


# MySQL/MariaDB server version, as nmap shows it or as the handshake (protocol 10) carries it;
# MariaDB before 11 prefixes `5.5.5-` for old replication clients.
_MYSQL_VERSION = _rx(
    r"(?:5\.5\.5-)?(?P<v>\d{1,2}\.\d{1,2}\.\d{1,3})(?P<rest>-[0-9A-Za-z.+~:_-]{1,80})?"
)
_MYSQL_REFUSED = _rx(r"to[ \t]this[ \t](?P<product>MariaDB|MySQL)[ \t]server")
_MYSQL_TAILS = ("-log", "-debug", "-valgrind")


def parse_mysql_version(text: str) -> Software | None:
    """A MySQL/MariaDB version string (`5.7.33-0ubuntu0.18.04.1`, `10.3.38-MariaDB-0+deb10u1`,
    `5.5.5-10.11.6-MariaDB-0+deb12u1`) or the raw handshake packet that carries one."""
    candidate = text[:MAX_BANNER]
    # Handshake packet: 3-byte length, sequence id, protocol 10, NUL-terminated version.
    if len(candidate) > 5 and candidate[4] == "\n":
        candidate = candidate[5:].split("\x00", 1)[0]
    candidate = candidate.strip()
    match = _MYSQL_VERSION.fullmatch(candidate)
    if match is None:
        # "Host '10.0.0.9' is not allowed to connect to this MySQL server"
        refused = _MYSQL_REFUSED.search(text[:MAX_BANNER])
        if refused is None:
            return None
        product = refused["product"].lower()
        return _software(product, None, _line_at(text, refused.start()))
    rest = match["rest"] or ""
    while rest.lower().endswith(_MYSQL_TAILS):
        rest = rest[: rest.rfind("-")]
    product = "mysql"
    if rest.lower().startswith("-mariadb"):
        product, rest = "mariadb", rest[len("-mariadb") :]
    revision = rest[1:] if rest.startswith("-") else None
    distro = None
    if revision and "maria~" in revision:
        revision = None  # 1:10.11.6+maria~ubu2204: MariaDB's own packages, no backports
    elif revision:
        distro = distro_of(revision)
        if distro not in _DPKG_DISTROS:
            distro, revision = None, None  # Percona's "-24", a custom suffix: not a distro build
    return _software(product, match["v"], candidate, distro=distro, revision=revision)


def _mysql(text: str, service: str) -> Software | None:
    if (
        service != "mysql"
        and not (len(text) > 5 and text[4] == "\n")
        and "maria" not in text[:200].lower()
    ):
        return None
    return parse_mysql_version(text)


# --- entry points ------------------------------------------------------------------------------

_BARE_SERVER = re.compile(r"[A-Za-z][\w.-]{0,40}/\d", re.A)
_SERVICE_FAMILY = {
    "ssh": "ssh",
    "http": "http",
    "https": "http",
    "http-proxy": "http",
    "https-alt": "http",
    "http-alt": "http",
    "ssl/http": "http",
    "mysql": "mysql",
}


def parse_banner(service_name: str | None, banner: str) -> Software | None:
    """The main product a banner names, or None (unknown, or not a banner at all)."""
    found = parse_all(service_name, banner)
    return found[0] if found else None


def parse_all(service_name: str | None, banner: str) -> list[Software]:
    """Every product a banner names, the main one first (an HTTP Server header can name the
    server, OpenSSL and PHP). Never raises on garbage: it returns an empty list."""
    if not isinstance(banner, str) or not banner:
        return []
    text = banner[:MAX_BANNER]
    service = (service_name or "").strip().lower()[:40]
    family = _SERVICE_FAMILY.get(service)
    head = text.lstrip()[:8].upper()
    if family == "ssh" or head.startswith("SSH-"):
        ssh = parse_ssh(text)
        if ssh is not None or family == "ssh":
            return [ssh] if ssh else []
    if family == "http" or head.startswith("HTTP/") or _SERVER_LINE.search(text):
        found = parse_http_server(text)
        if found or family == "http" or head.startswith("HTTP/"):
            search = None if found else _elasticsearch(text, service)
            return found or ([search] if search else [])
    mysql = _mysql(text, service)
    if mysql is not None or family == "mysql":
        return [mysql] if mysql else []
    search = _elasticsearch(text, service)
    if search is not None:
        return [search]
    # The service's own greetings first: an FTP banner may well mention "Exim" in its text.
    for greeting in sorted(_GREETINGS, key=lambda g: service not in g.services):
        if greeting.needs_service and service not in greeting.services:
            continue
        software = _greeting(greeting, text)
        if software is not None:
            return [software]
    if not service and _BARE_SERVER.match(text.lstrip()):
        # A Server header value given alone ("nginx/1.18.0 (Ubuntu)").
        return parse_http_server(text.lstrip())
    return []


# --- nmap ----------------------------------------------------------------------------------------

_NMAP_PRODUCTS = (
    ("openssh", "openssh"),
    ("dropbear", "dropbear"),
    ("libssh", "libssh"),
    ("cisco ssh", "cisco_ssh"),
    ("coyote", "tomcat"),
    ("apache tomcat", "tomcat"),
    ("apache httpd", "apache_httpd"),
    ("nginx", "nginx"),
    ("lighttpd", "lighttpd"),
    ("microsoft iis", "iis"),
    ("microsoft ftpd", "microsoft_ftp"),
    ("vsftpd", "vsftpd"),
    ("proftpd", "proftpd"),
    ("pure-ftpd", "pure-ftpd"),
    ("filezilla", "filezilla_server"),
    ("exim", "exim"),
    ("postfix", "postfix"),
    ("sendmail", "sendmail"),
    ("dovecot", "dovecot"),
    ("redis", "redis"),
    ("memcached", "memcached"),
    ("mariadb", "mariadb"),
    ("mysql", "mysql"),
    ("postgresql", "postgresql"),
    ("samba", "samba"),
    ("opensearch", "opensearch"),
    ("elasticsearch", "elasticsearch"),
)
_NMAP_VERSION = _rx(
    r"(?P<windows>for_Windows_)?(?P<v>\d{1,4}(?:\.\d{1,4}){0,3}[a-z]{0,3}\d{0,2})"
    r"(?:[ \t]{1,4}(?P<distro>Ubuntu|Debian|Raspbian)[ \t]{1,4}(?P<rev>[0-9][0-9A-Za-z.+~]{0,40}))?"
)
# An RPM release after the version: 4.10.16-25.el7_9 (RHEL/CentOS 7 build 25).
_RPM_RELEASE = _rx(r"-(?P<rel>[0-9][0-9A-Za-z.+~_]{0,30}\.el[5-9](?:_[0-9]{1,2})?)(?![0-9A-Za-z])")
_NMAP_FREEBSD = _rx(r"FreeBSD[ \t](?P<rev>\d{8})")
_NMAP_INEXACT = _rx(r"[0-9][ \t]{1,2}-[ \t]{1,2}[0-9]|\.X\b|\bor\s{1,4}later\b")
_CPE_PART = re.compile(r"[A-Za-z0-9._~%!-]{1,100}", re.A)
_CPE_OS_DISTRO = {
    ("canonical", "ubuntu_linux"): "ubuntu",
    ("debian", "debian_linux"): "debian",
    ("redhat", "enterprise_linux"): "rhel",
    ("redhat", "linux"): "rhel",
    ("centos", "centos"): "centos",
    ("fedoraproject", "fedora"): "fedora",
    ("alpinelinux", "alpine_linux"): "alpine",
    ("freebsd", "freebsd"): "freebsd",
    ("microsoft", "windows"): "windows",
    ("suse", "linux_enterprise_server"): "suse",
    ("opensuse", "opensuse"): "suse",
    ("raspberrypi", "raspbian"): "raspbian",
}


@dataclass(frozen=True)
class _Cpe:
    part: str
    vendor: str
    product: str
    version: str | None
    update: str | None


def _parse_cpe(name: str) -> _Cpe | None:
    """A CPE 2.2 URI as nmap prints it (`cpe:/a:openbsd:openssh:7.2p2`), or a CPE 2.3 name."""
    if not isinstance(name, str) or len(name) > 300:
        return None
    if name.startswith("cpe:/"):
        parts = name[5:].split(":")
    elif name.startswith("cpe:2.3:"):
        parts = name[8:].split(":")
    else:
        return None
    if len(parts) < 3 or not all(_CPE_PART.fullmatch(p) for p in parts[:5]):
        return None
    values = [unquote(p).lower() for p in parts[:5]] + [None, None]
    if values[0] not in ("a", "o", "h") or not all(
        v is None or _VERSION_TEXT.fullmatch(v) for v in values[1:5]
    ):
        return None

    def exact(value: str | None) -> str | None:
        return None if value in (None, "*", "-", "") else value

    return _Cpe(str(values[0]), str(values[1]), str(values[2]), exact(values[3]), exact(values[4]))


def _cpe_of(parsed: _Cpe, version: str | None) -> str | None:
    version = version or parsed.version
    if not version:
        return None
    update = _cpe_value(parsed.update) if parsed.update else "*"
    return (
        f"cpe:2.3:{parsed.part}:{_cpe_value(parsed.vendor)}:{_cpe_value(parsed.product)}:"
        f"{_cpe_value(version)}:{update}:*:*:*:*:*:*"
    )


def from_nmap(
    product: str | None,
    version: str | None,
    extrainfo: str | None,
    cpe: Sequence[str] = (),
) -> Software | None:
    """nmap -sV's view of a port: product "OpenSSH", version "7.2p2 Ubuntu 4ubuntu2.8",
    extrainfo "Ubuntu Linux; protocol 2.0", cpe ("cpe:/a:openbsd:openssh:7.2p2", ...).
    A version range ("9.6.0 - 9.6.5", "3.X - 4.X") gives version None; a product posture
    does not know is named after its application CPE."""
    product = (product or "")[:200]
    version = (version or "")[:200]
    extrainfo = (extrainfo or "")[:200]
    cpes = [c for c in (_parse_cpe(n) for n in tuple(cpe)[:16]) if c is not None]
    app = next((c for c in cpes if c.part == "a"), None)
    os_distro = next(
        (
            _CPE_OS_DISTRO[(c.vendor, c.product)]
            for c in cpes
            if (c.vendor, c.product) in _CPE_OS_DISTRO
        ),
        None,
    )
    lowered = product.lower()
    key = next((k for word, k in _NMAP_PRODUCTS if word in lowered), None)
    if key is None and app is not None:
        key = app.product
    if not key:
        return None
    evidence = " ".join(p for p in (product, version, extrainfo and f"({extrainfo})") if p)
    if key in ("mysql", "mariadb") and version:
        parsed = parse_mysql_version(version)
        if parsed is not None:
            return replace(parsed, source="nmap", evidence=_evidence(evidence))
    upstream, revision, distro, note = None, None, None, None
    match = None if _NMAP_INEXACT.search(version) else _NMAP_VERSION.match(version)
    if match is not None:
        upstream = match["v"]
        if match["windows"]:
            distro = "windows"
        elif match["distro"]:
            revision = match["rev"]
            distro = _dpkg_distro(match["distro"], revision)
        elif key == "openssh" and (freebsd := _NMAP_FREEBSD.search(extrainfo)):
            distro, revision = "freebsd", freebsd["rev"]
        elif rpm := _RPM_RELEASE.match(version, match.end()):
            distro, revision = "rhel", rpm["rel"]
    if key == "tomcat" and "coyote" in lowered:
        upstream = None  # Coyote's "1.1" is the HTTP version
    distro = distro or distro_of(f"{product} {extrainfo}") or os_distro
    if distro == "windows" and key != "openssh":
        distro = None  # "Windows" in extrainfo names the OS, not a vendor build of the product
    if key == "openssh" and upstream in _RHEL_OPENSSH and distro is None and revision is None:
        note = (
            f"OpenSSH {upstream} with no distro suffix is what {_RHEL_OPENSSH[upstream]} "
            "sends, with fixes backported into that version"
        )
    found = _software(
        key, upstream, evidence, distro=distro, revision=revision, source="nmap", note=note
    )
    if found.cpe is None and app is not None and found.vendor is None:
        # nmap's CPE names products posture has no table entry for.
        found = replace(found, vendor=app.vendor, cpe=_cpe_of(app, found.version))
    elif found.vendor is None and app is not None:
        found = replace(found, vendor=app.vendor)
    return found


def software_of(service: Service) -> Software | None:
    """The best of what the banner and nmap say about one port. The banner wins when it names a
    distro build (it is what the server itself sent); nmap fills what it leaves out."""
    banner = parse_banner(service.name, service.banner) if service.banner else None
    nmap = from_nmap(service.product, service.version, service.extrainfo, service.cpe)
    if banner is None or nmap is None:
        return banner or nmap
    if banner.product != nmap.product:
        return banner if banner.version or not nmap.version else nmap
    best, other = banner, nmap
    if not banner.distro_version and (nmap.distro_version or (nmap.version and not banner.version)):
        best, other = nmap, banner
    distro, revision, package = best.distro, best.distro_version, best.package_version
    if distro is None and other.distro:
        distro = other.distro
        if best.version == other.version and other.distro_version:
            revision, package = other.distro_version, other.package_version
    return replace(
        best,
        vendor=best.vendor or other.vendor,
        cpe=best.cpe or (other.cpe if other.version == best.version else None),
        distro=distro,
        distro_version=revision,
        package_version=package,
        backport_risk=_backport_risk(best.product, distro) or best.note is not None,
    )


__all__ = [
    "BACKPORTING",
    "CPE_NAMES",
    "Software",
    "cpe_for",
    "distro_of",
    "from_nmap",
    "parse_all",
    "parse_banner",
    "parse_http_server",
    "parse_mysql_version",
    "parse_ssh",
    "software_of",
]
