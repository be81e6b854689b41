"""Software facts (product, upstream version, distro build, CPE) from service banners and nmap's
fingerprints: what scanner/vulndb matches advisories against.

Banners are hostile: only their first 4 KiB are read, every pattern is linear (bounded repeats,
no nested ones), and every field is clipped and stripped of control characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scanner.model import Service
from scanner.safetext import clip, escape_controls

MAX_BANNER = 4096
MAX_FIELD = 128

# Products as posture names them -> (CPE vendor, CPE product).
CPE_NAMES: dict[str, tuple[str, str]] = {
    "openssh": ("openbsd", "openssh"),
    "dropbear": ("dropbear_ssh_project", "dropbear_ssh"),
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
}
# Distributions whose packages keep the upstream version while carrying backported fixes.
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
_DISTRO_WORDS = (
    ("ubuntu", "ubuntu"),
    ("raspbian", "raspbian"),
    ("debian", "debian"),
    ("deb", "debian"),
    ("centos", "centos"),
    ("red hat", "rhel"),
    ("rhel", "rhel"),
    ("el7", "rhel"),
    ("el8", "rhel"),
    ("el9", "rhel"),
    ("fedora", "fedora"),
    ("rocky", "rocky"),
    ("almalinux", "almalinux"),
    ("amazon", "amazon"),
    ("suse", "suse"),
    ("alpine", "alpine"),
    ("freebsd", "freebsd"),
    ("win32", "windows"),
    ("win64", "windows"),
    ("windows", "windows"),
)
# Debian/Ubuntu source packages whose versions carry an epoch the banner does not show.
_DEBIAN_EPOCHS = {"openssh": "1:", "mariadb": "1:", "redis": "5:"}


@dataclass(frozen=True)
class Software:
    """One product a service runs, as its banner or fingerprint tells it."""

    product: str  # posture's key: "openssh", "apache_httpd", "nginx", ...
    version: str | None  # upstream version as the vendor writes it ("7.2p2", "2.4.38")
    vendor: str | None = None
    cpe: str | None = None  # CPE 2.3
    distro: str | None = None  # "debian", "ubuntu", "rhel", "freebsd", "windows", ...
    distro_version: str | None = None  # the package revision the banner shows ("4ubuntu2.8")
    package_version: str | None = None  # full distro package version, when it can be rebuilt
    source: str = "banner"  # "banner" | "nmap" | "package"
    evidence: str = ""

    @property
    def backport_risk(self) -> bool:
        """True when a distro build may carry fixes its upstream version does not show."""
        return self.distro in BACKPORTING


def _text(value: str, limit: int = MAX_FIELD) -> str:
    return clip(escape_controls(value.strip()), limit)


def cpe_for(product: str, version: str | None) -> str | None:
    """CPE 2.3 as NVD writes it (OpenSSH's `7.2p2` is version 7.2, update p2)."""
    names = CPE_NAMES.get(product)
    if names is None or not version:
        return None
    vendor, name = names
    update = "*"
    if product == "openssh":
        match = re.fullmatch(r"(\d{1,3}(?:\.\d{1,3}){0,3})(p\d{1,3})?", version)
        if match and match.group(2):
            version, update = match.group(1), match.group(2)
    safe = re.sub(r"[^0-9A-Za-z._-]", "_", version)[:64]
    return f"cpe:2.3:a:{vendor}:{name}:{safe}:{update}:*:*:*:*:*:*"


def _software(
    product: str,
    version: str | None,
    evidence: str,
    *,
    distro: str | None = None,
    revision: str | None = None,
    source: str = "banner",
) -> Software:
    version = _text(version, 64) if version else None
    revision = _text(revision, 64) if revision else None
    package = None
    if version and revision and distro in ("debian", "ubuntu", "raspbian"):
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
        evidence=_text(evidence, 256),
    )


def distro_of(text: str) -> str | None:
    lowered = text.lower()
    for word, distro in _DISTRO_WORDS:
        if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered):
            return distro
    return None


# --- SSH -----------------------------------------------------------------------------------------

_SSH = re.compile(
    r"SSH-\d\.\d{1,2}-(?P<software>[^\s]{1,80})(?:[ \t]{1,8}(?P<comment>[^\r\n]{0,120}))?"
)
_SSH_PRODUCTS = (
    (re.compile(r"OpenSSH_for_Windows_(\d[\w.]{0,20})"), "openssh", "windows"),
    (re.compile(r"OpenSSH_(\d[\w.]{0,20})"), "openssh", None),
    (re.compile(r"dropbear_(\d[\w.]{0,20})"), "dropbear", None),
    (re.compile(r"Cisco-(\d[\w.]{0,20})"), "cisco_ssh", None),
    (re.compile(r"libssh[_-](\d[\w.]{0,20})"), "libssh", None),
)
_SSH_COMMENT = re.compile(
    r"(?P<distro>Ubuntu|Debian|Raspbian|FreeBSD)[-_](?P<revision>[0-9][0-9A-Za-z.+~]{0,40})"
)


def parse_ssh(banner: str) -> Software | None:
    match = _SSH.search(banner)
    if match is None:
        return None
    software, comment = match["software"], match["comment"] or ""
    for pattern, product, fixed_distro in _SSH_PRODUCTS:
        found = pattern.fullmatch(software) or pattern.match(software)
        if found is None:
            continue
        version = found.group(1).rstrip(".")
        distro, revision = fixed_distro, None
        build = _SSH_COMMENT.search(comment)
        if build is not None:
            distro = build["distro"].lower()
            revision = build["revision"] if distro != "freebsd" else None
        elif comment:
            distro = distro or distro_of(comment)
        return _software(product, version, match.group(0), distro=distro, revision=revision)
    return None


# --- HTTP Server header -------------------------------------------------------------------------

_SERVER_LINE = re.compile(r"(?im)^server:[ \t]{0,8}([^\r\n]{1,300})")
_HTTP_TOKEN = re.compile(r"(?P<name>[A-Za-z][\w.-]{0,40})(?:/(?P<version>[\w.+~-]{1,40}))?")
_HTTP_PRODUCTS = {
    "apache": "apache_httpd",
    "nginx": "nginx",
    "microsoft-iis": "iis",
    "lighttpd": "lighttpd",
    "openssl": "openssl",
    "php": "php",
    "apache-coyote": "tomcat",
}


def parse_http_server(text: str) -> list[Software]:
    """Every known product of a Server header (or of a whole response's Server line)."""
    line_match = _SERVER_LINE.search(text)
    line = line_match.group(1) if line_match else text.splitlines()[0] if text else ""
    comments = " ".join(re.findall(r"\(([^()]{0,80})\)", line))
    distro = distro_of(comments) if comments else None
    found = []
    for token in _HTTP_TOKEN.finditer(re.sub(r"\([^()]{0,80}\)", " ", line)):
        product = _HTTP_PRODUCTS.get(token["name"].lower())
        if product is None:
            continue
        version = token["version"]
        build_distro = distro
        if product == "tomcat":
            version = None  # Apache-Coyote/1.1 is the connector's protocol, not Tomcat's version
        if version and version.lower().endswith("-fips"):
            version, build_distro = version[: -len("-fips")], build_distro or "rhel"
        found.append(_software(product, version, line, distro=build_distro))
    return found


# --- FTP, SMTP, IMAP/POP, databases, caches ----------------------------------------------------

_GREETINGS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\(vsFTPd (?P<v>\d[\w.]{0,20})\)"), "vsftpd"),
    (re.compile(r"ProFTPD(?: (?P<v>\d[\w.]{0,20}))? Server"), "proftpd"),
    (re.compile(r"Pure-FTPd"), "pure-ftpd"),
    (re.compile(r"FileZilla Server(?: version)? (?P<v>\d[\w.]{0,20})"), "filezilla_server"),
    (re.compile(r"Microsoft FTP Service"), "microsoft_ftp"),
    (re.compile(r"ESMTP Exim (?P<v>\d[\w.]{0,20})"), "exim"),
    (re.compile(r"ESMTP Postfix"), "postfix"),
    (re.compile(r"Sendmail (?P<v>\d[\w.]{0,20})"), "sendmail"),
    (re.compile(r"Dovecot"), "dovecot"),
    (re.compile(r"redis_version:(?P<v>\d[\w.]{0,20})"), "redis"),
    (re.compile(r"VERSION (?P<v>\d[\w.]{0,20})"), "memcached"),
    (re.compile(r'"number"\s{0,4}:\s{0,4}"(?P<v>\d[\w.]{0,20})"'), "elasticsearch"),
    (re.compile(r"Samba (?P<v>\d[\w.]{0,20})(?:-(?P<d>[A-Za-z]{1,20}))?"), "samba"),
)
_MYSQL = re.compile(r"(?:5\.5\.5-)?(?P<v>\d{1,2}\.\d{1,2}\.\d{1,3})(?P<rest>[-+~][\w.+~-]{0,60})?")


def parse_mysql_version(text: str) -> Software | None:
    """A MySQL/MariaDB server version (`5.7.33-0ubuntu0.18.04.1`, `10.3.38-MariaDB-0+deb10u1`,
    MariaDB's `5.5.5-` replication prefix included)."""
    match = _MYSQL.search(text)
    if match is None:
        return None
    rest = match["rest"] or ""
    product = "mariadb" if "mariadb" in rest.lower() else "mysql"
    revision = None
    distro = distro_of(rest)
    if product == "mariadb":
        # 10.3.38-MariaDB-0+deb10u1: the Debian revision follows "-MariaDB-"
        after = re.search(r"MariaDB-(?P<rev>[0-9][0-9A-Za-z.+~]{0,40})", rest, re.IGNORECASE)
        revision = after["rev"] if after and distro else None
    elif distro in ("debian", "ubuntu"):
        revision = rest[1:]  # 5.7.33-0ubuntu0.18.04.1
    return _software(product, match["v"], match.group(0), distro=distro, revision=revision)


def parse_banner(service_name: str | None, banner: str) -> Software | None:
    """The main product a banner names, or None."""
    found = parse_all(service_name, banner)
    return found[0] if found else None


def parse_all(service_name: str | None, banner: str) -> list[Software]:
    """Every product a banner names (an HTTP Server header can name several)."""
    if not banner:
        return []
    text = banner[:MAX_BANNER]
    name = (service_name or "").lower()
    if text.startswith("SSH-") or name == "ssh":
        ssh = parse_ssh(text)
        return [ssh] if ssh else []
    if name.startswith(("http", "https")) or _SERVER_LINE.search(text) or text.startswith("HTTP/"):
        found = parse_http_server(text)
        if found:
            return found
    if name == "mysql":
        mysql = parse_mysql_version(text)
        return [mysql] if mysql else []
    for pattern, product in _GREETINGS:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        version = groups.get("v")
        distro = distro_of(text)
        if product == "samba" and groups.get("d"):
            distro = distro_of(groups["d"] or "")
        return [_software(product, version, text.splitlines()[0] if text else "", distro=distro)]
    return []


# --- nmap ----------------------------------------------------------------------------------------

_NMAP_PRODUCTS = (
    ("openssh", "openssh"),
    ("dropbear", "dropbear"),
    ("apache httpd", "apache_httpd"),
    ("apache tomcat", "tomcat"),
    ("nginx", "nginx"),
    ("lighttpd", "lighttpd"),
    ("microsoft iis", "iis"),
    ("vsftpd", "vsftpd"),
    ("proftpd", "proftpd"),
    ("pure-ftpd", "pure-ftpd"),
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
    ("elasticsearch", "elasticsearch"),
)
_NMAP_VERSION = re.compile(r"(?P<v>\d[\w.]{0,30})(?:[ -](?P<rest>[^\r\n]{0,80}))?")


def from_nmap(
    product: str | None, version: str | None, extrainfo: str | None, cpe: Sequence[str] = ()
) -> Software | None:
    """nmap -sV's view: product "OpenSSH", version "7.2p2 Ubuntu 4ubuntu2.8", extrainfo
    "Ubuntu Linux; protocol 2.0". A version range ("9.6.0 - 9.6.5") gives no version."""
    if not product:
        return None
    lowered = product.lower()
    key = next((k for word, k in _NMAP_PRODUCTS if word in lowered), None)
    if key is None:
        return None
    evidence = " ".join(p for p in (product, version or "", extrainfo or "") if p)
    if key in ("mysql", "mariadb") and version:
        parsed = parse_mysql_version(version)
        if parsed is not None:
            return replace(parsed, source="nmap", evidence=_text(evidence, 256))
    upstream, revision, distro = None, None, distro_of(f"{version or ''} {extrainfo or ''}")
    if version and " - " not in version and not version.endswith(".X"):
        match = _NMAP_VERSION.match(version)
        if match is not None:
            upstream = match["v"]
            rest = match["rest"] or ""
            build = re.search(
                r"(?:Ubuntu|Debian|Raspbian)[ -](?P<r>[0-9][0-9A-Za-z.+~]{0,40})", rest
            )
            revision = build["r"] if build else None
    return _software(key, upstream, evidence, distro=distro, revision=revision, source="nmap")


def software_of(service: Service) -> Software | None:
    """The best of what the banner and nmap say: the banner's distro build when it has one
    (it is what the server itself sent), nmap's otherwise."""
    from_banner = parse_banner(service.name, service.banner) if service.banner else None
    fingerprint = from_nmap(service.product, service.version, service.extrainfo, service.cpe)
    if from_banner is None:
        return fingerprint
    if fingerprint is None or from_banner.version:
        if fingerprint is not None and from_banner.distro is None and fingerprint.distro:
            return replace(from_banner, distro=fingerprint.distro)
        return from_banner
    return fingerprint


__all__ = [
    "Software",
    "cpe_for",
    "from_nmap",
    "parse_all",
    "parse_banner",
    "parse_mysql_version",
    "software_of",
]
