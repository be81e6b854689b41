"""Matching a host's software against advisories: banners (upstream and distro builds),
installed packages, how sure each match is, and where nothing could be judged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.model import Confidence, Host, HostState, Service, Severity
from scanner.probes.inventory import Inventory, OsRelease, Package
from scanner.rules import evaluate
from scanner.rules.loader import load_packs
from scanner.vulndb.assess import HOST_LEVEL, Assessor
from scanner.vulndb.db import VulnDb, import_files

DATA = Path(__file__).parent / "data"
RULES = Path(__file__).parents[2] / "rules"
FILES = (
    "nvd-2.0-daemons.json",
    "osv-dsa-5724-1.json",
    "osv-debian-cve-2023-38408.json",
    "osv-ubuntu-cve-2024-6387.json",
    "kev-daemons.json",
    "epss-daemons.csv",
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VulnDb]:
    path = tmp_path_factory.mktemp("assess") / "vulndb.sqlite"
    import_files(path, [DATA / name for name in FILES])
    with VulnDb(path) as opened:
        yield opened


def _ssh(banner: str, port: int = 22) -> Service:
    return Service(port=port, proto="tcp", state="open", name="ssh", banner=banner)


def _host(*services: Service, inventory: Inventory | None = None) -> Host:
    return Host("127.0.95.1", HostState.UP, services=services, inventory=inventory)


def _debian12(*packages: Package) -> Inventory:
    return Inventory(
        host="127.0.95.1",
        os=OsRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
        kernel="6.1.0-18-amd64",
        manager="dpkg",
        packages=packages,
    )


def _ids(found: object) -> set[str]:
    return {v.advisory_id for v in found}  # type: ignore[attr-defined]


def test_a_plain_upstream_banner_matches_nvd_ranges_firmly(db: VulnDb) -> None:
    found = Assessor(db).service(_ssh("SSH-2.0-OpenSSH_9.2p1"))
    assert found is not None
    (match,) = [v for v in found if v.advisory_id == "CVE-2023-38408"]
    assert match.confidence is Confidence.FIRM
    where = (match.product, match.version, match.port, match.proto)
    assert where == ("openssh", "9.2p1", 22, "tcp")
    assert match.cvss_score == 9.8 and match.severity is Severity.CRITICAL
    assert match.ecosystem == "upstream" and match.reason is None
    assert match.key == "openssh:CVE-2023-38408"
    assert Assessor(db).service(_ssh("SSH-2.0-OpenSSH_9.3p2")) == []


def test_a_debian_build_is_judged_by_debians_fixed_versions(db: VulnDb) -> None:
    """9.2p1 is below NVD's 9.3p2 fix for CVE-2023-38408, but Debian fixed it in
    1:9.2p1-2+deb12u1: the deb12u3 build is clean, the deb12u2 build only has CVE-2024-6387."""
    assessor = Assessor(db)
    patched = assessor.service(_ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"))
    assert patched == []
    older = assessor.service(_ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"))
    assert older is not None
    assert _ids(older) == {"CVE-2024-6387"}
    (match,) = older
    assert match.confidence is Confidence.FIRM
    assert (match.ecosystem, match.release) == ("Debian", "12")
    assert match.version == "1:9.2p1-2+deb12u2"
    assert match.fixed_version == "1:9.2p1-2+deb12u3"
    assert "Debian 12" in (match.reason or "")


def test_an_ubuntu_build_finds_its_release_from_the_upstream_version(db: VulnDb) -> None:
    found = Assessor(db).service(_ssh("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13"))
    assert found is not None
    (match,) = [v for v in found if v.advisory_id == "CVE-2024-6387"]
    assert (match.ecosystem, match.release) == ("Ubuntu", "24.04")
    assert match.fixed_version == "1:9.6p1-3ubuntu13.3"
    assert match.confidence is Confidence.FIRM
    fixed = Assessor(db).service(_ssh("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.3"))
    assert fixed is not None and "CVE-2024-6387" not in _ids(fixed)


def test_a_distro_build_without_its_advisories_is_tentative_and_says_why(db: VulnDb) -> None:
    # Ubuntu 16.04's build: the database holds no Ubuntu advisory naming 7.2p2.
    found = Assessor(db).service(_ssh("SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8"))
    assert found is not None and found
    assert {v.confidence for v in found} == {Confidence.TENTATIVE}
    assert "CVE-2023-38408" in _ids(found)
    reason = found[0].reason or ""
    assert "Ubuntu build 4ubuntu2.8 may carry backported fixes" in reason and "7.2p2" in reason
    # A bare RHEL-family version is a backporting build too, though it names no distro.
    rhel = Assessor(db).service(_ssh("SSH-2.0-OpenSSH_7.4"))
    assert rhel is not None and {v.confidence for v in rhel} == {Confidence.TENTATIVE}
    assert "RHEL" in (rhel[0].reason or "")


def test_kev_raises_severity_and_ranks_first(db: VulnDb) -> None:
    nginx = Service(
        port=80,
        proto="tcp",
        state="open",
        name="http",
        banner="HTTP/1.1 200 OK\r\nServer: nginx/1.18.0\r\n\r\n",
    )
    assessment = Assessor(db).host(_host(nginx, _ssh("SSH-2.0-OpenSSH_9.2p1")))
    first = assessment.found[0]
    assert first.advisory_id == "CVE-2021-23017" and first.kev
    assert first.cvss_severity is Severity.HIGH  # 7.7
    assert first.severity is Severity.CRITICAL  # raised: exploited in the wild
    assert first.priority == "kev"
    assert first.epss == 0.15
    assert [v.priority for v in assessment.found].index("kev") == 0


def test_installed_packages_are_certain_and_outrank_the_banner(db: VulnDb) -> None:
    inventory = _debian12(
        Package("openssh-server", "1:9.2p1-2+deb12u2", "dpkg", "amd64", "openssh", None),
        Package("openssh-client", "1:9.2p1-2+deb12u2", "dpkg", "amd64", "openssh", None),
    )
    host = _host(_ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"), inventory=inventory)
    assessment = Assessor(db).host(host)
    assert [(v.advisory_id, v.port, v.source) for v in assessment.found] == [
        ("CVE-2024-6387", None, "package")
    ]
    (match,) = assessment.found
    assert match.confidence is Confidence.CERTAIN
    assert match.product == "openssh" and match.version == "1:9.2p1-2+deb12u2"
    assert assessment.unassessed == ()


def test_what_cannot_be_judged_is_listed(db: VulnDb) -> None:
    unknown = Service(port=9999, proto="tcp", state="open", name="unknown")
    closed = Service(port=23, proto="tcp", state="closed", name="telnet")
    assessment = Assessor(db).host(_host(unknown, closed))
    assert set(assessment.unassessed) == {HOST_LEVEL, ("tcp", 9999)}
    rocky = Inventory(
        host="x",
        os=OsRelease("rocky", "9.3", "Rocky Linux 9.3"),
        kernel=None,
        manager="rpm",
        packages=(Package("openssh", "0:8.7p1-34.el9", "rpm"),),
    )
    assessment = Assessor(db).host(_host(inventory=rocky))
    assert assessment.unassessed == (HOST_LEVEL,)
    assert "rocky" in assessment.notes[0]
    buster = Inventory(
        host="x",
        os=OsRelease("debian", "10", "Debian GNU/Linux 10 (buster)"),
        kernel=None,
        manager="dpkg",
        packages=(),
    )
    assessment = Assessor(db).host(_host(inventory=buster))
    assert assessment.unassessed == (HOST_LEVEL,)
    assert "no advisories for Debian 10" in assessment.notes[0]


def test_the_vulns_pack_turns_matches_into_findings(db: VulnDb) -> None:
    from scanner.vulndb.assess import match_hosts

    ruleset = load_packs([RULES / "vulns.yaml"])
    hosts = match_hosts([_host(_ssh("SSH-2.0-OpenSSH_9.2p1"))], db)
    findings = evaluate(ruleset, hosts)
    (finding,) = [f for f in findings if "CVE-2023-38408" in f.cves]
    assert finding.rule_id == "vulns.known-vulnerability"
    assert finding.title == "CVE-2023-38408 in openssh 9.2p1"
    assert finding.severity is Severity.CRITICAL and finding.confidence is Confidence.FIRM
    assert (finding.port, finding.proto) == (22, "tcp")
    assert finding.discriminator == "openssh:CVE-2023-38408"
    assert finding.evidence["vuln.fixed_version"] == "9.3"
    assert finding.evidence["vuln.kev"] is False
    assert "PCI-DSS-4.0:6.3.3" in finding.controls and "NIST-800-53:SI-2" in finding.controls
    # A later database that adds the CVE to KEV re-scores it, but the finding stays the same one.
    kev = evaluate(ruleset, [_rescored(hosts[0])])
    same = next(f for f in kev if "CVE-2023-38408" in f.cves)
    assert same.fingerprint == finding.fingerprint and same.severity is Severity.CRITICAL


def _rescored(host: Host) -> Host:
    import dataclasses

    assert host.vulnerabilities is not None
    found = tuple(dataclasses.replace(v, kev=True) for v in host.vulnerabilities.found)
    return dataclasses.replace(
        host, vulnerabilities=dataclasses.replace(host.vulnerabilities, found=found)
    )


def test_versions_read_by_active_checks_are_used_when_nmap_has_none() -> None:
    from scanner.vulndb.assess import software_on

    redis = Service(port=6379, proto="tcp", state="open", name="redis", checks={"redis": {}})
    assert software_on(redis) is None
    answered = Service(
        port=6379, proto="tcp", state="open", name="redis", checks={"redis": {"version": "6.0.9"}}
    )
    found = software_on(answered)
    assert found is not None
    assert (found.product, found.version, found.cpe) == (
        "redis",
        "6.0.9",
        "cpe:2.3:a:redis:redis:6.0.9:*:*:*:*:*:*:*",
    )
    ftp = Service(
        port=21,
        proto="tcp",
        state="open",
        name="ftp",
        checks={"ftp": {"banner": "220 (vsFTPd 2.3.4)", "anonymous": False}},
    )
    greeted = software_on(ftp)
    assert greeted is not None and (greeted.product, greeted.version) == ("vsftpd", "2.3.4")
    # nmap's own version wins over a check's.
    named = Service(
        port=6379,
        proto="tcp",
        state="open",
        name="redis",
        product="Redis key-value store",
        version="7.0.15",
        checks={"redis": {"version": "6.0.9"}},
    )
    assert (software := software_on(named)) is not None and software.version == "7.0.15"
    # A version that is not one is ignored.
    odd = Service(port=6379, proto="tcp", state="open", checks={"redis": {"version": "$(reboot)"}})
    assert software_on(odd) is None


def test_rpm_hosts_are_judged_by_their_own_distributions_advisories(tmp_path: Path) -> None:
    """Rocky, AlmaLinux and RHEL share RPM's version ordering but not their builds: a Rocky
    host is judged by Rocky's records (by the installed package's own name, epoch-aware), a
    RHEL host by every RHEL stream, an AlmaLinux host by Alma's; a CentOS host is not judged.
    (The fixture is shaped like the three distributions' OSV records.)"""
    path = tmp_path / "rpm.sqlite"
    import_files(path, [DATA / "osv-rpm-openssh.json"])

    def host(os_id: str, version: str, *packages: Package) -> Host:
        inventory = Inventory(
            host="x",
            os=OsRelease(os_id, version, None),
            kernel=None,
            manager="rpm",
            packages=packages,
        )
        return _host(inventory=inventory)

    old = Package("openssh-server", "8.7p1-34.el9", "rpm", "x86_64", "openssh")
    fixed = Package("openssh-server", "8.7p1-38.el9_4.1", "rpm", "x86_64", "openssh")
    with VulnDb(path) as db:
        assessor = Assessor(db)
        rocky = assessor.host(host("rocky", "9.3", old))
        assert [(v.advisory_id, v.release, v.confidence) for v in rocky.found] == [
            ("CVE-2024-6387", "rocky linux:9", Confidence.CERTAIN)
        ]
        assert rocky.found[0].fixed_version == "0:8.7p1-38.el9_4.1"
        assert rocky.found[0].product == "openssh-server"
        assert assessor.host(host("rocky", "9.4", fixed)).found == ()
        rhel = assessor.host(host("rhel", "9.4", old))
        assert [v.release for v in rhel.found] == ["red hat:enterprise_linux:9:baseos"]
        alma = assessor.host(host("almalinux", "9.4", fixed))
        # Alma's own build of the fix sorts after RHEL's: the RHEL-numbered one is older.
        assert [v.fixed_version for v in alma.found] == ["8.7p1-38.el9_4.1.alma.1"]
        eight = assessor.host(host("rocky", "8.10", old))
        assert eight.found == () and eight.unassessed == (HOST_LEVEL,)
        assert "rocky linux:8" in eight.notes[0]
        centos = assessor.host(host("centos", "7", old))
        assert centos.unassessed == (HOST_LEVEL,) and "centos" in centos.notes[0]
