"""Software facts from real banners and nmap fingerprints; hostile banners never break it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.model import Service
from scanner.probes import banners
from scanner.probes.banners import (
    Software,
    cpe_for,
    distro_of,
    from_nmap,
    parse_all,
    parse_banner,
    software_of,
)
from scanner.rules.redos import redos_problem

TABLE = Path(__file__).parent / "data" / "banners.txt"


def _none(cell: str) -> str | None:
    return None if cell == "-" else cell


def _rows() -> list[tuple[str | None, str, str | None, tuple[str | None, ...], bool]]:
    rows: list[tuple[str | None, str, str | None, tuple[str | None, ...], bool]] = []
    for number, line in enumerate(TABLE.read_text("utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        assert len(cells) == 8, f"{TABLE.name}:{number}: {len(cells)} cells, expected 8"
        service, banner, product, version, distro, revision, package, backport = cells
        text = banner.encode("latin-1").decode("unicode_escape")
        facts = (_none(version), _none(distro), _none(revision), _none(package))
        rows.append((_none(service), text, _none(product), facts, backport == "y"))
    return rows


ROWS = _rows()


def test_the_table_is_broad() -> None:
    assert len(ROWS) >= 60
    products = {row[2] for row in ROWS}
    assert products >= {
        "openssh", "apache_httpd", "nginx", "iis", "vsftpd", "proftpd",
        "exim", "postfix", "sendmail", "redis", "mysql", "mariadb", "samba", "elasticsearch",
        "dovecot", "pure-ftpd", "dropbear", "lighttpd", "tomcat", "microsoft_ftp", "memcached",
    }  # fmt: skip
    distros = {row[3][1] for row in ROWS}
    assert distros >= {"debian", "ubuntu", "rhel", "centos", "freebsd", "raspbian", "suse"}


@pytest.mark.parametrize(
    ("service", "banner", "product", "facts", "backport"),
    ROWS,
    ids=[f"{r[0]}:{r[1][:40]}" for r in ROWS],
)
def test_real_banners(
    service: str | None,
    banner: str,
    product: str | None,
    facts: tuple[str | None, ...],
    backport: bool,
) -> None:
    found = parse_banner(service, banner)
    if product is None:
        assert found is None
        return
    assert found is not None
    assert found.product == product
    got = (found.version, found.distro, found.distro_version, found.package_version)
    assert got == facts
    assert found.backport_risk is backport
    assert found.source == "banner"
    assert found.evidence and found.evidence in banner.replace("\x00", "\\x00")
    if found.version and product in banners.CPE_NAMES:
        assert found.cpe is not None and found.vendor == banners.CPE_NAMES[product][0]
    if not found.version:
        assert found.cpe is None


def test_several_products_in_one_server_header() -> None:
    header = "Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips mod_fcgid/2.3.9 PHP/5.4.16"
    found = {s.product: s for s in parse_all("http", header)}
    assert list(found) == ["apache_httpd", "openssl", "php"]  # the main product first
    assert found["openssl"].version == "1.0.2k" and found["openssl"].distro == "centos"
    assert found["openssl"].cpe == "cpe:2.3:a:openssl:openssl:1.0.2k:*:*:*:*:*:*:*"
    assert found["php"].version == "5.4.16" and found["php"].backport_risk


def test_vendor_openssl_builds_are_backport_risks() -> None:
    # A -fips build with no distro named: some vendor patched it.
    fips = {s.product: s for s in parse_all("http", "Apache/2.4.6 OpenSSL/1.0.2k-fips")}
    assert not fips["apache_httpd"].backport_risk
    assert fips["openssl"].backport_risk and fips["openssl"].distro is None
    assert fips["openssl"].note and "vendor build" in fips["openssl"].note
    # FreeBSD's base-system OpenSSL gets FreeBSD-SA patches; Apache from ports does not.
    bsd = {
        s.product: s for s in parse_all("http", "Apache/2.4.54 (FreeBSD) OpenSSL/1.1.1o-freebsd")
    }
    assert bsd["openssl"].version == "1.1.1o" and bsd["openssl"].backport_risk
    assert not bsd["apache_httpd"].backport_risk


def test_bare_rhel_openssh_says_why_it_is_tentative() -> None:
    found = parse_banner("ssh", "SSH-2.0-OpenSSH_7.4")
    assert found is not None and found.backport_risk and found.distro is None
    assert found.note is not None and "RHEL/CentOS 7" in found.note
    upstream = parse_banner("ssh", "SSH-2.0-OpenSSH_9.6")
    assert upstream is not None and upstream.note is None and not upstream.backport_risk


@pytest.mark.parametrize(
    ("product", "version", "cpe"),
    [
        ("openssh", "7.2p2", "cpe:2.3:a:openbsd:openssh:7.2:p2:*:*:*:*:*:*"),
        ("openssh", "6.6.1p1", "cpe:2.3:a:openbsd:openssh:6.6.1:p1:*:*:*:*:*:*"),
        ("openssh", "9.6", "cpe:2.3:a:openbsd:openssh:9.6:*:*:*:*:*:*:*"),
        ("proftpd", "1.3.5e", "cpe:2.3:a:proftpd:proftpd:1.3.5:e:*:*:*:*:*:*"),
        ("proftpd", "1.3.5rc3", "cpe:2.3:a:proftpd:proftpd:1.3.5:rc3:*:*:*:*:*:*"),
        ("openssl", "1.0.2k", "cpe:2.3:a:openssl:openssl:1.0.2k:*:*:*:*:*:*:*"),
        ("apache_httpd", "2.4.49", "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"),
        ("nginx", "1.18.0", "cpe:2.3:a:f5:nginx:1.18.0:*:*:*:*:*:*:*"),
        ("iis", "10.0", "cpe:2.3:a:microsoft:internet_information_services:10.0:*:*:*:*:*:*:*"),
        ("vsftpd", "2.3.4", "cpe:2.3:a:vsftpd_project:vsftpd:2.3.4:*:*:*:*:*:*:*"),
        (
            "dropbear",
            "2019.78",
            "cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:2019.78:*:*:*:*:*:*:*",
        ),
        ("mysql", "5.7.33", "cpe:2.3:a:oracle:mysql:5.7.33:*:*:*:*:*:*:*"),
        ("unknown", "1.0", None),
        ("nginx", None, None),
        ("nginx", "1.0 ; drop", None),
    ],
)
def test_cpe_follows_nvd_conventions(product: str, version: str | None, cpe: str | None) -> None:
    assert cpe_for(product, version) == cpe


def test_package_version_reconstruction() -> None:
    """dpkg versions as `dpkg -l` would show them: epoch, upstream, the banner's revision."""
    cases = {
        ("ssh", "SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8"): "1:7.2p2-4ubuntu2.8",
        ("ssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"): "1:9.2p1-2+deb12u2",
        ("mysql", "5.7.33-0ubuntu0.18.04.1"): "5.7.33-0ubuntu0.18.04.1",  # mysql: no epoch
        ("mysql", "10.3.38-MariaDB-0+deb10u1"): "1:10.3.38-0+deb10u1",  # mariadb: epoch 1
        ("http", "Apache/2.4.38 (Debian)"): None,  # the revision is not in the banner
        ("ssh", "SSH-2.0-OpenSSH_7.8 FreeBSD-20180909"): None,  # not a dpkg distro
    }
    for (service, banner), package in cases.items():
        found = parse_banner(service, banner)
        assert found is not None and found.package_version == package, banner


@pytest.mark.parametrize(
    ("service", "banner"),
    [
        ("http", '{"cluster_name":"apache","tagline":"none"}'),
        ("http", "HTTP/1.1 200 OK\r\n\r\nThis page is served to this MariaDB server admin"),
        (None, "<p>Apache/2.4 ships with this MySQL server</p> to this MySQL server"),
        ("smtp", "220 eximious.example.org ESMTP ready"),
        ("ftp", "220 Welcome, apache users"),
        (None, "VERSION 1.6.9"),
        ("http", "Microsoft-HTTPAPI/2.0"),
    ],
)
def test_words_in_passing_name_nothing(service: str | None, banner: str) -> None:
    assert parse_all(service, banner) == []


def test_distro_of() -> None:
    assert distro_of("Debian-5ubuntu1.4") == "ubuntu"
    assert distro_of("(Red Hat Enterprise Linux)") == "rhel"
    assert distro_of("4.10.16-25.el7_9") == "rhel"
    assert distro_of("0+deb10u1") == "debian"
    assert distro_of("(Unix)") is None and distro_of("kernel7 debianish") is None


NMAP_CASES = [
    (
        ("OpenSSH", "7.2p2 Ubuntu 4ubuntu2.8", "Ubuntu Linux; protocol 2.0"),
        ("cpe:/a:openbsd:openssh:7.2p2", "cpe:/o:linux:linux_kernel"),
        ("openssh", "7.2p2", "ubuntu", "4ubuntu2.8", "1:7.2p2-4ubuntu2.8", True),
    ),
    (
        ("OpenSSH", "9.2p1 Debian 2+deb12u2", "protocol 2.0"),
        ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"),
        ("openssh", "9.2p1", "debian", "2+deb12u2", "1:9.2p1-2+deb12u2", True),
    ),
    (
        ("OpenSSH", "5.9p1 Debian 5ubuntu1.10", "Ubuntu Linux; protocol 2.0"),
        ("cpe:/a:openbsd:openssh:5.9p1",),
        ("openssh", "5.9p1", "ubuntu", "5ubuntu1.10", "1:5.9p1-5ubuntu1.10", True),
    ),
    (
        ("OpenSSH", "7.4", "protocol 2.0"),
        ("cpe:/a:openbsd:openssh:7.4",),
        ("openssh", "7.4", None, None, None, True),
    ),
    (
        ("OpenSSH", "9.6", "protocol 2.0"),
        ("cpe:/a:openbsd:openssh:9.6",),
        ("openssh", "9.6", None, None, None, False),
    ),
    (
        ("OpenSSH", "7.8", "FreeBSD 20180909; protocol 2.0"),
        ("cpe:/a:openbsd:openssh:7.8", "cpe:/o:freebsd:freebsd"),
        ("openssh", "7.8", "freebsd", "20180909", None, True),
    ),
    (
        ("OpenSSH", "for_Windows_8.1", "protocol 2.0"),
        ("cpe:/a:openbsd:openssh:for_windows_8.1",),
        ("openssh", "8.1", "windows", None, None, False),
    ),
    (
        ("Apache httpd", "2.4.38", "(Debian)"),
        ("cpe:/a:apache:http_server:2.4.38",),
        ("apache_httpd", "2.4.38", "debian", None, None, True),
    ),
    (
        ("nginx", "1.18.0", "Ubuntu"),
        ("cpe:/a:igor_sysoev:nginx:1.18.0", "cpe:/o:linux:linux_kernel"),
        ("nginx", "1.18.0", "ubuntu", None, None, True),
    ),
    (
        ("vsftpd", "2.3.4", None),
        ("cpe:/a:vsftpd:vsftpd:2.3.4",),
        ("vsftpd", "2.3.4", None, None, None, False),
    ),
    (("ProFTPD", "1.3.5e", None), (), ("proftpd", "1.3.5e", None, None, None, False)),
    (("Exim smtpd", "4.92", None), (), ("exim", "4.92", None, None, None, False)),
    (("Postfix smtpd", None, None), (), ("postfix", None, None, None, None, False)),
    (
        ("MySQL", "5.7.33-0ubuntu0.18.04.1", None),
        ("cpe:/a:mysql:mysql:5.7.33-0ubuntu0.18.04.1",),
        ("mysql", "5.7.33", "ubuntu", "0ubuntu0.18.04.1", "5.7.33-0ubuntu0.18.04.1", True),
    ),
    (
        ("MySQL", "5.5.5-10.3.38-MariaDB-0+deb10u1", None),
        (),
        ("mariadb", "10.3.38", "debian", "0+deb10u1", "1:10.3.38-0+deb10u1", True),
    ),
    (
        ("Redis key-value store", "6.0.9", None),
        ("cpe:/a:redislabs:redis:6.0.9",),
        ("redis", "6.0.9", None, None, None, False),
    ),
    (
        ("PostgreSQL DB", "9.6.0 - 9.6.5", None),
        ("cpe:/a:postgresql:postgresql",),
        ("postgresql", None, None, None, None, False),
    ),
    (
        ("Samba smbd", "3.X - 4.X", "workgroup: WORKGROUP"),
        ("cpe:/a:samba:samba",),
        ("samba", None, None, None, None, False),
    ),
    (
        ("Samba smbd", "4.6.2", None),
        ("cpe:/a:samba:samba",),
        ("samba", "4.6.2", None, None, None, False),
    ),
    (
        ("Microsoft IIS httpd", "10.0", None),
        ("cpe:/a:microsoft:internet_information_services:10.0", "cpe:/o:microsoft:windows"),
        ("iis", "10.0", None, None, None, False),
    ),
    (
        ("Dovecot imapd", None, "Ubuntu"),
        ("cpe:/a:dovecot:dovecot",),
        ("dovecot", None, "ubuntu", None, None, True),
    ),
    (
        ("Apache Tomcat/Coyote JSP engine", "1.1", None),
        ("cpe:/a:apache:coyote_http_connector:1.1",),
        ("tomcat", None, None, None, None, False),
    ),
    (
        ("Elasticsearch REST API", "7.10.2", "name: n1; cluster: c; Lucene 8.7.0"),
        ("cpe:/a:elasticsearch:elasticsearch:7.10.2",),
        ("elasticsearch", "7.10.2", None, None, None, False),
    ),
    (
        ("lighttpd", "1.4.53", None),
        ("cpe:/a:lighttpd:lighttpd:1.4.53",),
        ("lighttpd", "1.4.53", None, None, None, False),
    ),
    (
        ("Dropbear sshd", "2019.78", "protocol 2.0"),
        ("cpe:/a:matt_johnston:dropbear_ssh_server:2019.78", "cpe:/o:linux:linux_kernel"),
        ("dropbear", "2019.78", None, None, None, False),
    ),
    (
        ("nginx", "1.24.0", None),
        ("cpe:/a:igor_sysoev:nginx:1.24.0", "cpe:/o:alpinelinux:alpine_linux"),
        ("nginx", "1.24.0", "alpine", None, None, True),
    ),
]


@pytest.mark.parametrize(("fields", "cpe", "expected"), NMAP_CASES)
def test_nmap_fingerprints(
    fields: tuple[str | None, str | None, str | None],
    cpe: tuple[str, ...],
    expected: tuple[object, ...],
) -> None:
    found = from_nmap(*fields, cpe)
    assert found is not None and found.source == "nmap"
    got = (
        found.product,
        found.version,
        found.distro,
        found.distro_version,
        found.package_version,
        found.backport_risk,
    )
    assert got == expected
    assert found.evidence.startswith(fields[0] or "")
    # posture's NVD names win over nmap's older ones (igor_sysoev:nginx, redislabs:redis).
    if found.product in banners.CPE_NAMES:
        assert found.vendor == banners.CPE_NAMES[found.product][0]


def test_nmap_ranges_keep_their_evidence() -> None:
    found = from_nmap("PostgreSQL DB", "9.6.0 - 9.6.5", None, ())
    assert found is not None and found.version is None and found.cpe is None
    assert found.evidence == "PostgreSQL DB 9.6.0 - 9.6.5"
    later = from_nmap("MySQL", "5.0.51a or later", None, ())
    assert later is not None and later.version is None


def test_nmap_rpm_release_is_a_rhel_build() -> None:
    found = from_nmap("Samba smbd", "4.10.16-25.el7_9", None, ())
    assert found is not None
    assert (found.version, found.distro, found.distro_version) == ("4.10.16", "rhel", "25.el7_9")
    assert found.backport_risk and found.package_version is None


def test_nmap_cpe_names_products_posture_does_not_know() -> None:
    found = from_nmap("OpenSMTPD", "6.6", None, ("cpe:/a:openbsd:opensmtpd:6.6",))
    assert found is not None
    assert (found.product, found.vendor, found.version) == ("opensmtpd", "openbsd", "6.6")
    assert found.cpe == "cpe:2.3:a:openbsd:opensmtpd:6.6:*:*:*:*:*:*:*"
    assert from_nmap("SomethingElse", "1.0", None, ()) is None
    assert from_nmap(None, None, None, ()) is None
    assert from_nmap("Thing", "1.0", None, ("cpe:/a:evil\x1b[31m:thing:1.0", "junk")) is None


def test_software_of_prefers_the_banner_build() -> None:
    service = Service(
        22,
        "tcp",
        "open",
        name="ssh",
        product="OpenSSH",
        version="7.2p2",
        extrainfo="protocol 2.0",
        cpe=("cpe:/a:openbsd:openssh:7.2p2",),
        banner="SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8",
    )
    found = software_of(service)
    assert found is not None and found.source == "banner"
    assert found.package_version == "1:7.2p2-4ubuntu2.8" and found.backport_risk


def test_software_of_fills_from_nmap() -> None:
    # The banner names no distro; nmap's OS CPE does.
    service = Service(
        80,
        "tcp",
        "open",
        name="http",
        product="nginx",
        version="1.24.0",
        cpe=("cpe:/a:igor_sysoev:nginx:1.24.0", "cpe:/o:alpinelinux:alpine_linux"),
        banner="HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n\r\n",
    )
    found = software_of(service)
    assert found is not None and found.source == "banner"
    assert (found.distro, found.backport_risk) == ("alpine", True)
    # A banner without a version loses to nmap's version, keeping the banner's distro.
    ftp = Service(
        21,
        "tcp",
        "open",
        name="ftp",
        product="ProFTPD",
        version="1.3.5e",
        banner="220 ProFTPD Server (Debian) [::ffff:10.0.0.5]",
    )
    found = software_of(ftp)
    assert found is not None and (found.source, found.version, found.distro) == (
        "nmap",
        "1.3.5e",
        "debian",
    )
    assert found.backport_risk
    # nmap's richer revision beats a banner that only has the upstream version.
    ssh = Service(
        22,
        "tcp",
        "open",
        name="ssh",
        product="OpenSSH",
        version="8.2p1 Ubuntu 4ubuntu0.5",
        banner="garbage",
    )
    found = software_of(ssh)
    assert found is not None and found.package_version == "1:8.2p1-4ubuntu0.5"
    nmap_only = Service(21, "tcp", "open", name="ftp", product="vsftpd", version="2.3.4")
    found = software_of(nmap_only)
    assert found is not None and (found.product, found.source) == ("vsftpd", "nmap")
    assert software_of(Service(9, "tcp", "open")) is None


# --- hostile input -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _assert_clean(found: Software) -> None:
    for name, value in vars(found).items():
        if isinstance(value, str):
            assert not _CONTROL.search(value), (name, value)
            assert "\u202e" not in value and "\x1b" not in value
    assert len(found.evidence) <= banners.MAX_EVIDENCE + 20
    for value in (found.version, found.distro_version, found.package_version):
        assert value is None or (value.isascii() and len(value) <= 80)


_PIECES = st.sampled_from(
    [
        "SSH-2.0-",
        "OpenSSH_",
        "7.2p2",
        " Ubuntu-",
        "4ubuntu2.8",
        "Server: ",
        "Apache/",
        "(Debian)",
        "(",
        ")",
        "/",
        "220 ",
        "ProFTPD ",
        " Server",
        "ESMTP Exim ",
        "Sendmail ",
        "/Debian-",
        "redis_version:",
        "5.5.5-",
        "-MariaDB-",
        "0+deb10u1",
        "\x1b[31m",
        "\x00",
        "\r\n",
        "\u202e",
        "٧.٤",
        "𝟕.𝟒",
        "\n",
        '"number" : "',
        "You Know, for Search",
        "Samba ",
        "\t",
        "-",
        ".",
        "9",
    ]
)
_HOSTILE = st.one_of(st.text(max_size=400), st.lists(_PIECES, max_size=40).map("".join))
_SERVICES = st.sampled_from(
    ["ssh", "http", "ftp", "smtp", "mysql", "redis", "memcached", "imap", "", "\x1b", None]
)


@settings(max_examples=400, deadline=None)
@given(_SERVICES, _HOSTILE)
def test_hostile_banners_never_raise_and_fields_are_clean(name: str | None, banner: str) -> None:
    for found in parse_all(name, banner):
        _assert_clean(found)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=60), _PIECES),
    st.one_of(st.none(), st.text(max_size=60), st.lists(_PIECES, max_size=10).map("".join)),
    st.one_of(st.none(), st.text(max_size=60)),
    st.lists(st.one_of(st.text(max_size=40), st.just("cpe:/a:openbsd:openssh:7.2p2")), max_size=4),
)
def test_hostile_nmap_fields_never_raise(
    product: str | None, version: str | None, extrainfo: str | None, cpe: list[str]
) -> None:
    found = from_nmap(product, version, extrainfo, cpe)
    if found is not None:
        _assert_clean(found)
        assert found.cpe is None or found.cpe.isascii()


def test_escape_sequences_and_unicode_digits_are_not_versions() -> None:
    assert parse_banner("ssh", "SSH-2.0-OpenSSH_٧.٤") is None  # Arabic-Indic digits
    evil = parse_banner("ssh", "SSH-2.0-OpenSSH_8.0\x1b]0;pwned\x07 Ubuntu-\x1b[2J")
    assert evil is not None and evil.version == "8.0"
    _assert_clean(evil)
    ansi = parse_banner("http", "HTTP/1.1 200 OK\r\nServer: nginx/1.2\x1b[31m.3 (\u202eUbuntu)\r\n")
    assert ansi is not None and ansi.version == "1.2"
    _assert_clean(ansi)


def test_every_pattern_is_linear() -> None:
    patterns = [v for v in vars(banners).values() if isinstance(v, re.Pattern)]
    patterns += [g.pattern for g in banners._GREETINGS]
    patterns += [p for p, _, _ in banners._SSH_PRODUCTS]
    patterns += list(banners._CPE_UPDATE.values())
    assert len(patterns) > 20
    for pattern in patterns:
        assert redos_problem(pattern.pattern) is None, pattern.pattern


PATHOLOGICAL = [
    "SSH-2.0-" + "a" * 100_000,
    "SSH-2.0-OpenSSH_7.2p2 " + "Ubuntu-" * 15_000,
    "SSH-2.0-" * 12_500,
    "Server: " + "(" * 50_000 + "Apache/2.4" * 5_000,
    "Server: Apache/" + "1." * 50_000,
    "220 " + "ProFTPD " * 20_000,
    "5.5.5-" + "1." * 50_000,
    "J\x00\x00\x00\n" + "9" * 100_000,
    "\x1b[31m" * 20_000,
    '"number" : "' * 10_000 + "You Know, for Search",
    " " * 100_000 + "Sendmail 8.1",
    "ubuntu " * 15_000,
    "\u202e" * 100_000,
]


@pytest.mark.timeout(60)  # a hang guard against catastrophic backtracking, not a speed threshold
def test_pathological_banners_finish() -> None:
    for banner in PATHOLOGICAL:
        for name in ("ssh", "http", "ftp", "smtp", "mysql", "elasticsearch", None):
            for found in parse_all(name, banner):
                _assert_clean(found)
        from_nmap(banner, banner, banner, (banner,))
