"""Software facts from real banners and nmap fingerprints; hostile banners never break it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.model import Service
from scanner.probes.banners import (
    cpe_for,
    from_nmap,
    parse_all,
    parse_banner,
    software_of,
)

# (service name, banner, product, version, distro, revision, package version)
BANNERS = [
    (
        "ssh",
        "SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8",
        "openssh",
        "7.2p2",
        "ubuntu",
        "4ubuntu2.8",
        "1:7.2p2-4ubuntu2.8",
    ),
    (
        "ssh",
        "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        "openssh",
        "9.2p1",
        "debian",
        "2+deb12u2",
        "1:9.2p1-2+deb12u2",
    ),
    (
        "ssh",
        "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3\r\n",
        "openssh",
        "8.4p1",
        "debian",
        "5+deb11u3",
        "1:8.4p1-5+deb11u3",
    ),
    (
        "ssh",
        "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
        "openssh",
        "8.9p1",
        "ubuntu",
        "3ubuntu0.6",
        "1:8.9p1-3ubuntu0.6",
    ),
    (
        "ssh",
        "SSH-2.0-OpenSSH_7.9p1 Raspbian-10+deb10u2",
        "openssh",
        "7.9p1",
        "raspbian",
        "10+deb10u2",
        "1:7.9p1-10+deb10u2",
    ),
    ("ssh", "SSH-2.0-OpenSSH_7.4", "openssh", "7.4", None, None, None),
    ("ssh", "SSH-2.0-OpenSSH_8.0", "openssh", "8.0", None, None, None),
    ("ssh", "SSH-2.0-OpenSSH_9.6", "openssh", "9.6", None, None, None),
    ("ssh", "SSH-2.0-OpenSSH_7.8 FreeBSD-20180909", "openssh", "7.8", "freebsd", None, None),
    ("ssh", "SSH-2.0-OpenSSH_for_Windows_8.1", "openssh", "8.1", "windows", None, None),
    ("ssh", "SSH-2.0-dropbear_2019.78", "dropbear", "2019.78", None, None, None),
    ("ssh", "SSH-2.0-dropbear_2022.83", "dropbear", "2022.83", None, None, None),
    ("ssh", "SSH-1.99-Cisco-1.25", "cisco_ssh", "1.25", None, None, None),
    ("ssh", "SSH-2.0-libssh_0.9.6", "libssh", "0.9.6", None, None, None),
    (
        "ssh",
        "SSH-2.0-OpenSSH_6.6.1p1 Ubuntu-2ubuntu2.13",
        "openssh",
        "6.6.1p1",
        "ubuntu",
        "2ubuntu2.13",
        "1:6.6.1p1-2ubuntu2.13",
    ),
    ("http", "Apache/2.4.38 (Debian)", "apache_httpd", "2.4.38", "debian", None, None),
    ("http", "Apache/2.4.41 (Ubuntu)", "apache_httpd", "2.4.41", "ubuntu", None, None),
    (
        "http",
        "Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips mod_fcgid/2.3.9 PHP/5.4.16",
        "apache_httpd",
        "2.4.6",
        "centos",
        None,
        None,
    ),
    (
        "http",
        "Apache/2.4.57 (Red Hat Enterprise Linux)",
        "apache_httpd",
        "2.4.57",
        "rhel",
        None,
        None,
    ),
    ("http", "Apache/2.4.49 (Unix)", "apache_httpd", "2.4.49", None, None, None),
    (
        "http",
        "Apache/2.4.58 (Win64) OpenSSL/3.1.3 PHP/8.2.12",
        "apache_httpd",
        "2.4.58",
        "windows",
        None,
        None,
    ),
    ("http", "Apache", "apache_httpd", None, None, None, None),
    ("http", "nginx/1.18.0 (Ubuntu)", "nginx", "1.18.0", "ubuntu", None, None),
    ("http", "nginx/1.22.1", "nginx", "1.22.1", None, None, None),
    ("http", "nginx", "nginx", None, None, None, None),
    ("http", "Microsoft-IIS/10.0", "iis", "10.0", None, None, None),
    ("http", "Microsoft-IIS/7.5", "iis", "7.5", None, None, None),
    ("http", "lighttpd/1.4.53", "lighttpd", "1.4.53", None, None, None),
    ("http", "Apache-Coyote/1.1", "tomcat", None, None, None, None),
    (
        "http",
        "HTTP/1.1 200 OK\r\nDate: x\r\nServer: nginx/1.20.1\r\nContent-Length: 0\r\n\r\n",
        "nginx",
        "1.20.1",
        None,
        None,
        None,
    ),
    (
        "https",
        "HTTP/1.0 404 Not Found\r\nserver: Apache/2.2.15 (CentOS)\r\n",
        "apache_httpd",
        "2.2.15",
        "centos",
        None,
        None,
    ),
    ("ftp", "220 (vsFTPd 3.0.3)", "vsftpd", "3.0.3", None, None, None),
    ("ftp", "220 (vsFTPd 2.3.4)\r\n", "vsftpd", "2.3.4", None, None, None),
    (
        "ftp",
        "220 ProFTPD 1.3.5e Server (Debian) [::ffff:10.0.0.5]",
        "proftpd",
        "1.3.5e",
        "debian",
        None,
        None,
    ),
    (
        "ftp",
        "220 ProFTPD 1.3.5 Server (ProFTPD Default Installation) [10.0.0.5]",
        "proftpd",
        "1.3.5",
        None,
        None,
        None,
    ),
    ("ftp", "220 ProFTPD Server (ProFTPD) [10.1.2.3]", "proftpd", None, None, None, None),
    (
        "ftp",
        "220 ProFTPD 1.3.6rc2 Server (Debian) [10.0.0.9]",
        "proftpd",
        "1.3.6rc2",
        "debian",
        None,
        None,
    ),
    ("ftp", "220 Microsoft FTP Service", "microsoft_ftp", None, None, None, None),
    (
        "ftp",
        "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
        "pure-ftpd",
        None,
        None,
        None,
        None,
    ),
    ("ftp", "220-FileZilla Server 0.9.60 beta", "filezilla_server", "0.9.60", None, None, None),
    (
        "smtp",
        "220 mail.example.com ESMTP Postfix (Debian/GNU)",
        "postfix",
        None,
        "debian",
        None,
        None,
    ),
    ("smtp", "220 mx.example.org ESMTP Postfix (Ubuntu)", "postfix", None, "ubuntu", None, None),
    (
        "smtp",
        "220 mx.example.org ESMTP Exim 4.92 Tue, 24 Nov 2026 10:00:00 +0000",
        "exim",
        "4.92",
        None,
        None,
        None,
    ),
    (
        "smtp",
        "220 mail.example.net ESMTP Exim 4.94.2 Ubuntu Tue, 24 Nov 2026",
        "exim",
        "4.94.2",
        "ubuntu",
        None,
        None,
    ),
    (
        "smtp",
        "220 host.example ESMTP Sendmail 8.15.2/8.15.2; Tue, 24 Nov 2026",
        "sendmail",
        "8.15.2",
        None,
        None,
        None,
    ),
    (
        "imap",
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS] Dovecot (Debian) ready.",
        "dovecot",
        None,
        "debian",
        None,
        None,
    ),
    ("pop3", "+OK Dovecot (Ubuntu) ready.", "dovecot", None, "ubuntu", None, None),
    (
        "redis",
        "# Server\r\nredis_version:6.0.16\r\nredis_git_sha1:00000000\r\n",
        "redis",
        "6.0.16",
        None,
        None,
        None,
    ),
    ("redis", "redis_version:7.2.4", "redis", "7.2.4", None, None, None),
    ("memcached", "VERSION 1.6.9", "memcached", "1.6.9", None, None, None),
    (
        "mysql",
        "5.7.33-0ubuntu0.18.04.1",
        "mysql",
        "5.7.33",
        "ubuntu",
        "0ubuntu0.18.04.1",
        "5.7.33-0ubuntu0.18.04.1",
    ),
    (
        "mysql",
        "10.3.38-MariaDB-0+deb10u1",
        "mariadb",
        "10.3.38",
        "debian",
        "0+deb10u1",
        "1:10.3.38-0+deb10u1",
    ),
    (
        "mysql",
        "5.5.5-10.11.6-MariaDB-0+deb12u1",
        "mariadb",
        "10.11.6",
        "debian",
        "0+deb12u1",
        "1:10.11.6-0+deb12u1",
    ),
    ("mysql", "8.0.36", "mysql", "8.0.36", None, None, None),
    (
        "mysql",
        "8.0.36-0ubuntu0.22.04.1",
        "mysql",
        "8.0.36",
        "ubuntu",
        "0ubuntu0.22.04.1",
        "8.0.36-0ubuntu0.22.04.1",
    ),
    ("mysql", "5.7.44-log", "mysql", "5.7.44", None, None, None),
    (
        "http",
        '{"name":"n1","version":{"number" : "7.10.2","build_flavor":"default"},'
        '"tagline":"You Know, for Search"}',
        "elasticsearch",
        "7.10.2",
        None,
        None,
        None,
    ),
    (
        "elasticsearch",
        '{"version" : {"number" : "6.8.23"}, "tagline" : "You Know, for Search"}',
        "elasticsearch",
        "6.8.23",
        None,
        None,
        None,
    ),
    ("netbios-ssn", "Samba 4.13.17-Ubuntu", "samba", "4.13.17", "ubuntu", None, None),
    ("microsoft-ds", "Samba 4.17.12-Debian", "samba", "4.17.12", "debian", None, None),
    ("smtp", "220 smtp.example ESMTP ready", None, None, None, None, None),
]


@pytest.mark.parametrize(
    ("name", "banner", "product", "version", "distro", "revision", "package"), BANNERS
)
def test_real_banners(
    name: str,
    banner: str,
    product: str | None,
    version: str | None,
    distro: str | None,
    revision: str | None,
    package: str | None,
) -> None:
    found = parse_banner(name, banner)
    if product is None:
        assert found is None
        return
    assert found is not None
    assert (found.product, found.version, found.distro) == (product, version, distro)
    assert (found.distro_version, found.package_version) == (revision, package)
    assert found.backport_risk is (distro in ("debian", "ubuntu", "raspbian", "centos", "rhel"))


def test_several_products_in_one_server_header() -> None:
    header = "Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips mod_fcgid/2.3.9 PHP/5.4.16"
    found = {s.product: s for s in parse_all("http", header)}
    assert set(found) == {"apache_httpd", "openssl", "php"}
    assert found["openssl"].version == "1.0.2k" and found["openssl"].backport_risk
    assert found["php"].version == "5.4.16"


def test_cpe_follows_nvd_conventions() -> None:
    assert cpe_for("openssh", "7.2p2") == "cpe:2.3:a:openbsd:openssh:7.2:p2:*:*:*:*:*:*"
    assert cpe_for("openssh", "9.6") == "cpe:2.3:a:openbsd:openssh:9.6:*:*:*:*:*:*:*"
    assert cpe_for("apache_httpd", "2.4.49") == "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"
    assert cpe_for("openssl", "1.0.2k") == "cpe:2.3:a:openssl:openssl:1.0.2k:*:*:*:*:*:*:*"
    assert cpe_for("unknown", "1.0") is None and cpe_for("nginx", None) is None


@pytest.mark.parametrize(
    ("product", "version", "extrainfo", "expected"),
    [
        (
            "OpenSSH",
            "7.2p2 Ubuntu 4ubuntu2.8",
            "Ubuntu Linux; protocol 2.0",
            ("openssh", "7.2p2", "ubuntu", "1:7.2p2-4ubuntu2.8"),
        ),
        ("OpenSSH", "8.0", "protocol 2.0", ("openssh", "8.0", None, None)),
        ("Apache httpd", "2.4.38", "(Debian)", ("apache_httpd", "2.4.38", "debian", None)),
        ("nginx", "1.18.0", "Ubuntu", ("nginx", "1.18.0", "ubuntu", None)),
        ("vsftpd", "2.3.4", None, ("vsftpd", "2.3.4", None, None)),
        ("ProFTPD", "1.3.5", None, ("proftpd", "1.3.5", None, None)),
        ("Exim smtpd", "4.92", None, ("exim", "4.92", None, None)),
        (
            "MySQL",
            "5.7.33-0ubuntu0.18.04.1",
            None,
            ("mysql", "5.7.33", "ubuntu", "5.7.33-0ubuntu0.18.04.1"),
        ),
        (
            "MySQL",
            "5.5.5-10.3.38-MariaDB-0+deb10u1",
            None,
            ("mariadb", "10.3.38", "debian", "1:10.3.38-0+deb10u1"),
        ),
        ("Redis key-value store", "6.0.9", None, ("redis", "6.0.9", None, None)),
        ("PostgreSQL DB", "9.6.0 - 9.6.5", None, ("postgresql", None, None, None)),
        ("Samba smbd", "3.X - 4.X", "workgroup: WORKGROUP", ("samba", None, None, None)),
        ("Microsoft IIS httpd", "10.0", None, ("iis", "10.0", None, None)),
        (
            "Elasticsearch REST API",
            "7.10.2",
            "name: n1; cluster: c",
            ("elasticsearch", "7.10.2", None, None),
        ),
    ],
)
def test_nmap_fingerprints(
    product: str, version: str, extrainfo: str | None, expected: tuple[object, ...]
) -> None:
    found = from_nmap(product, version, extrainfo)
    assert found is not None and found.source == "nmap"
    assert (found.product, found.version, found.distro, found.package_version) == expected
    assert from_nmap("SomethingElse", "1.0", None) is None and from_nmap(None, None, None) is None


def test_software_of_prefers_the_banner_build() -> None:
    service = Service(
        22,
        "tcp",
        "open",
        name="ssh",
        product="OpenSSH",
        version="7.2p2",
        extrainfo="protocol 2.0",
        banner="SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8",
    )
    found = software_of(service)
    assert found is not None and found.package_version == "1:7.2p2-4ubuntu2.8"
    nmap_only = Service(21, "tcp", "open", name="ftp", product="vsftpd", version="2.3.4")
    found = software_of(nmap_only)
    assert found is not None and (found.product, found.source) == ("vsftpd", "nmap")
    assert software_of(Service(9, "tcp", "open")) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["ssh", "http", "ftp", "smtp", "mysql", None]), st.text(max_size=600))
def test_hostile_banners_never_raise_and_fields_are_clean(name: str | None, banner: str) -> None:
    for found in parse_all(name, banner):
        for value in (found.version, found.evidence, found.distro_version, found.package_version):
            assert value is None or not any(ord(c) < 32 for c in value)


@pytest.mark.timeout(60)  # a hang guard (catastrophic backtracking), not a speed threshold
def test_pathological_banners_finish() -> None:
    worst = [
        "SSH-2.0-" + "a" * 100_000,
        "Server: " + "(" * 50_000 + "Apache/2.4" * 5_000,
        "220 " + "ProFTPD " * 20_000,
        "5.5.5-" + "1." * 50_000,
        "\x1b[31m" * 20_000,
    ]
    for banner in worst:
        for name in ("ssh", "http", "ftp", "mysql", None):
            for found in parse_all(name, banner):
                assert len(found.evidence) <= 256
