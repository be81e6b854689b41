"""The bundled distro advisories (advisories/osv/): Ubuntu's own OSV records and Debian records
built from the security tracker. Each file imports, and real lookups of distro package versions
give the CVEs and fixed versions the records say, judged only within their own release."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.model import Confidence, Service
from scanner.probes.inventory import Inventory, OsRelease, Package
from scanner.vulndb.assess import Assessor
from scanner.vulndb.bundled import BUNDLE_DIR
from scanner.vulndb.db import Match, VulnDb, import_files
from scanner.vulndb.versions import Ecosystem

OSV_DIR = BUNDLE_DIR / "osv"
OSV_FILES = sorted(OSV_DIR.glob("*.json"))
UBUNTU, DEBIAN = Ecosystem.UBUNTU, Ecosystem.DEBIAN
# The releases the bundle covers, as their OSV ecosystems name them.
RELEASES = {"Ubuntu:20.04:LTS", "Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS", "Debian:11", "Debian:12"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VulnDb]:
    path = tmp_path_factory.mktemp("distro") / "vulndb.sqlite"
    report = import_files(path, OSV_FILES)
    assert {kind for _, kind, _ in report.files} == {"osv"}
    with VulnDb(path) as opened:
        yield opened


def _by_cve(
    db: VulnDb, package: str, version: str, ecosystem: Ecosystem, release: str
) -> dict[str, Match]:
    found: dict[str, Match] = {}
    for match in db.lookup(package, version, ecosystem=ecosystem, release=release):
        for cve in match.cves:
            found[cve] = match
    return found


def test_each_file_is_a_list_of_one_distros_records_for_one_source_package() -> None:
    names = {path.name for path in OSV_FILES}
    assert {"ubuntu-openssh.json", "debian-openssh.json", "ubuntu-postgresql.json"} <= names
    ids: list[str] = []
    for path in OSV_FILES:
        distro, _, package = path.stem.partition("-")
        records = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(records, list) and records, path.name
        for record in records:
            ids.append(record["id"])
            assert record["id"].startswith(("UBUNTU-CVE-", "DEBIAN-CVE-", "DSA-")), record["id"]
            assert [c for c in record["upstream"] if c.startswith("CVE-")], record["id"]
            for entry in record["affected"]:
                ecosystem = entry["package"]["ecosystem"]
                assert ecosystem in RELEASES and ecosystem.lower().startswith(distro), ecosystem
                # postgresql-12/-14/-15/-16 share one file; every other package is the file's own.
                assert entry["package"]["name"].startswith(package), (path.name, entry)
    assert len(ids) == len(set(ids))


def test_every_file_imports_on_its_own(tmp_path: Path) -> None:
    for path in OSV_FILES:
        records = len(json.loads(path.read_text(encoding="utf-8")))
        report = import_files(tmp_path / f"{path.stem}.sqlite", [path])
        assert report.files[0][1:] == ("osv", records)
        assert report.advisories == records


# (ecosystem, release, source package, an affected version, CVE, the release's fixed version)
CASES = [
    (UBUNTU, "22.04", "openssh", "1:8.9p1-3ubuntu0.6", "CVE-2024-6387", "1:8.9p1-3ubuntu0.10"),
    (UBUNTU, "24.04", "openssh", "1:9.6p1-3ubuntu13", "CVE-2024-6387", "1:9.6p1-3ubuntu13.3"),
    (UBUNTU, "20.04", "openssh", "1:8.2p1-4ubuntu0.7", "CVE-2023-38408", "1:8.2p1-4ubuntu0.8"),
    (UBUNTU, "22.04", "openssh", "1:8.9p1-3ubuntu0.1", "CVE-2023-38408", "1:8.9p1-3ubuntu0.3"),
    (UBUNTU, "20.04", "openssh", "1:8.2p1-4ubuntu0.9", "CVE-2023-48795", "1:8.2p1-4ubuntu0.10"),
    (UBUNTU, "22.04", "openssh", "1:8.9p1-3ubuntu0.4", "CVE-2023-48795", "1:8.9p1-3ubuntu0.5"),
    (UBUNTU, "24.04", "openssh", "1:9.4p1-1ubuntu1", "CVE-2023-48795", "1:9.6p1-3ubuntu1"),
    (UBUNTU, "20.04", "openssh", "1:8.2p1-4ubuntu0.10", "CVE-2021-41617", "1:8.2p1-4ubuntu0.11"),
    (UBUNTU, "22.04", "openssl", "3.0.2-0ubuntu1.6", "CVE-2022-3602", "3.0.2-0ubuntu1.7"),
    (UBUNTU, "22.04", "openssl", "3.0.2-0ubuntu1.6", "CVE-2022-3786", "3.0.2-0ubuntu1.7"),
    (UBUNTU, "20.04", "openssl", "1.1.1f-1ubuntu2.16", "CVE-2023-0286", "1.1.1f-1ubuntu2.17"),
    (UBUNTU, "22.04", "openssl", "3.0.2-0ubuntu1.7", "CVE-2023-0286", "3.0.2-0ubuntu1.8"),
    (UBUNTU, "20.04", "openssl", "1.1.1f-1ubuntu2.11", "CVE-2022-0778", "1.1.1f-1ubuntu2.12"),
    (UBUNTU, "22.04", "openssl", "3.0.1-0ubuntu1", "CVE-2022-0778", "3.0.2-0ubuntu1"),
    (UBUNTU, "20.04", "apache2", "2.4.41-4ubuntu3.5", "CVE-2021-40438", "2.4.41-4ubuntu3.6"),
    (UBUNTU, "20.04", "apache2", "2.4.41-4ubuntu3.13", "CVE-2023-25690", "2.4.41-4ubuntu3.14"),
    (UBUNTU, "22.04", "apache2", "2.4.52-1ubuntu4.3", "CVE-2023-25690", "2.4.52-1ubuntu4.4"),
    (UBUNTU, "20.04", "apache2", "2.4.41-4ubuntu3.17", "CVE-2024-38476", "2.4.41-4ubuntu3.19"),
    (UBUNTU, "22.04", "apache2", "2.4.52-1ubuntu4.9", "CVE-2024-38476", "2.4.52-1ubuntu4.10"),
    (UBUNTU, "24.04", "apache2", "2.4.58-1ubuntu8.1", "CVE-2024-38476", "2.4.58-1ubuntu8.2"),
    (UBUNTU, "20.04", "nginx", "1.18.0-0ubuntu1", "CVE-2021-23017", "1.18.0-0ubuntu1.2"),
    (UBUNTU, "20.04", "exim4", "4.93-13ubuntu1.7", "CVE-2023-42115", "4.93-13ubuntu1.8"),
    (UBUNTU, "22.04", "exim4", "4.95-4ubuntu2.2", "CVE-2023-42115", "4.95-4ubuntu2.3"),
    (
        UBUNTU,
        "20.04",
        "samba",
        "2:4.13.14+dfsg-0ubuntu0.20.04.4",
        "CVE-2021-44142",
        "2:4.13.17~dfsg-0ubuntu0.21.04.1",
    ),
    (
        UBUNTU,
        "20.04",
        "postgresql-12",
        "12.20-0ubuntu0.20.04.1",
        "CVE-2024-10979",
        "12.22-0ubuntu0.20.04.1",
    ),
    (
        UBUNTU,
        "22.04",
        "postgresql-14",
        "14.13-0ubuntu0.22.04.1",
        "CVE-2024-10979",
        "14.15-0ubuntu0.22.04.1",
    ),
    (
        UBUNTU,
        "24.04",
        "postgresql-16",
        "16.4-0ubuntu0.24.04.2",
        "CVE-2024-10979",
        "16.6-0ubuntu0.24.04.1",
    ),
    (
        UBUNTU,
        "20.04",
        "postgresql-12",
        "12.22-0ubuntu0.20.04.1",
        "CVE-2025-1094",
        "12.22-0ubuntu0.20.04.2",
    ),
    (
        UBUNTU,
        "22.04",
        "postgresql-14",
        "14.15-0ubuntu0.22.04.1",
        "CVE-2025-1094",
        "14.17-0ubuntu0.22.04.1",
    ),
    (
        UBUNTU,
        "24.04",
        "postgresql-16",
        "16.6-0ubuntu0.24.04.1",
        "CVE-2025-1094",
        "16.8-0ubuntu0.24.04.1",
    ),
    (UBUNTU, "20.04", "redis", "5:5.0.7-2", "CVE-2022-0543", "5:5.0.7-2ubuntu0.1"),
    (DEBIAN, "12", "openssh", "1:9.2p1-2+deb12u2", "CVE-2024-6387", "1:9.2p1-2+deb12u3"),
    (DEBIAN, "11", "openssh", "1:8.4p1-5", "CVE-2023-38408", "1:8.4p1-5+deb11u2"),
    (DEBIAN, "12", "openssh", "1:9.2p1-2", "CVE-2023-38408", "1:9.2p1-2+deb12u1"),
    (DEBIAN, "12", "openssh", "1:9.2p1-2+deb12u1", "CVE-2023-48795", "1:9.2p1-2+deb12u2"),
    (DEBIAN, "11", "openssl", "1.1.1n-0+deb11u3", "CVE-2023-0286", "1.1.1n-0+deb11u4"),
    (DEBIAN, "11", "openssl", "1.1.1k-1+deb11u1", "CVE-2022-0778", "1.1.1k-1+deb11u2"),
    (DEBIAN, "11", "apache2", "2.4.48-3.1+deb11u1", "CVE-2021-40438", "2.4.51-1~deb11u1"),
    (DEBIAN, "11", "apache2", "2.4.53-1~deb11u1", "CVE-2023-25690", "2.4.56-1~deb11u1"),
    (
        DEBIAN,
        "11",
        "samba",
        "2:4.13.13+dfsg-1~deb11u2",
        "CVE-2021-44142",
        "2:4.13.13+dfsg-1~deb11u3",
    ),
    (DEBIAN, "11", "redis", "5:6.0.16-1+deb11u1", "CVE-2022-0543", "5:6.0.16-1+deb11u2"),
    (DEBIAN, "12", "postgresql-15", "15.3-0+deb12u1", "CVE-2024-10979", "15.9-0+deb12u1"),
    (DEBIAN, "12", "postgresql-15", "15.10-0+deb12u1", "CVE-2025-1094", "15.11-0+deb12u1"),
]


@pytest.mark.parametrize(("ecosystem", "release", "package", "version", "cve", "fixed"), CASES)
def test_a_release_package_is_affected_until_its_fixed_version(
    db: VulnDb,
    ecosystem: Ecosystem,
    release: str,
    package: str,
    version: str,
    cve: str,
    fixed: str,
) -> None:
    found = _by_cve(db, package, version, ecosystem, release)
    assert cve in found, (package, version, sorted(found))
    assert found[cve].fixed_version == fixed
    assert found[cve].match_kind == "osv-range"
    assert cve not in _by_cve(db, package, fixed, ecosystem, release)


def test_ubuntu_records_carry_their_cve_and_ubuntus_cvss(db: VulnDb) -> None:
    regresshion = _by_cve(db, "openssh", "1:8.9p1-3ubuntu0.6", UBUNTU, "22.04")["CVE-2024-6387"]
    assert regresshion.advisory_id == "UBUNTU-CVE-2024-6387"
    assert regresshion.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert regresshion.cvss_score == 8.1
    # Exim's record is scored with a CVSS 3.0 vector.
    exim = _by_cve(db, "exim4", "4.95-4ubuntu2.2", UBUNTU, "22.04")["CVE-2023-42115"]
    assert exim.cvss_score == 9.8 and exim.cvss_vector.startswith("CVSS:3.0/")  # type: ignore[union-attr]


def test_a_debian_security_advisory_names_all_its_cves(db: VulnDb) -> None:
    (match,) = db.lookup("openssl", "1.1.1n-0+deb11u3", ecosystem=DEBIAN, release="11")
    assert match.advisory_id == "DSA-5343-1" and match.fixed_version == "1.1.1n-0+deb11u4"
    expected = ("CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286")
    assert match.cves == expected


def test_a_release_never_judges_another_releases_package(db: VulnDb) -> None:
    # Debian 11 was never affected by CVE-2024-6387 (code introduced in 8.5p1): only the
    # Debian 12 range would flag bullseye's 8.4p1 build, and it must not be used for release 11.
    assert "CVE-2024-6387" not in _by_cve(db, "openssh", "1:8.4p1-5", DEBIAN, "11")
    assert "CVE-2024-6387" in _by_cve(db, "openssh", "1:8.4p1-5", DEBIAN, "12")
    # Bullseye's fixed build is clean in Debian 11 though below Debian 12's fixed version.
    assert _by_cve(db, "openssh", "1:8.4p1-5+deb11u2", DEBIAN, "11") == {}
    bookworm = _by_cve(db, "openssh", "1:8.4p1-5+deb11u2", DEBIAN, "12")
    assert bookworm["CVE-2023-38408"].fixed_version == "1:9.2p1-2+deb12u1"
    # Ubuntu 20.04's OpenSSH 8.2p1 never had the regression; 22.04's range alone would flag it.
    focal = _by_cve(db, "openssh", "1:8.2p1-4ubuntu0.11", UBUNTU, "20.04")
    assert "CVE-2024-6387" not in focal
    assert "CVE-2024-6387" in _by_cve(db, "openssh", "1:8.2p1-4ubuntu0.11", UBUNTU, "22.04")
    # One distro's records never judge the other's packages.
    ubuntu_build = db.lookup("openssh", "1:8.9p1-3ubuntu0.6", ecosystem=DEBIAN, release="12")
    assert not [m for m in ubuntu_build if m.advisory_id.startswith("UBUNTU-")]
    debian_build = db.lookup("openssl", "1.1.1k-1+deb11u1", ecosystem=UBUNTU, release="20.04")
    assert not [m for m in debian_build if m.advisory_id.startswith("DSA-")]


def test_an_ubuntu_fix_only_in_ubuntu_pro_leaves_the_release_affected(db: VulnDb) -> None:
    jammy = _by_cve(db, "redis", "5:6.0.16-1ubuntu1", UBUNTU, "22.04")
    assert jammy["CVE-2023-45145"].fixed_version is None
    # 20.04's fixed build is in Ubuntu Pro only (an ecosystem the bundle leaves out).
    assert "CVE-2023-45145" not in _by_cve(db, "redis", "5:5.0.7-2ubuntu0.1", UBUNTU, "20.04")


def test_the_upstream_versions_of_each_release_name_its_builds(db: VulnDb) -> None:
    assessor = Assessor(db)
    ubuntu = assessor.releases_with_upstream(UBUNTU, "openssh")
    assert [r for r, names in ubuntu.items() if "8.9p1" in names] == ["22.04"]
    assert [r for r, names in ubuntu.items() if "8.2p1" in names] == ["20.04"]
    assert [r for r, names in ubuntu.items() if "9.6p1" in names] == ["24.04"]
    debian = assessor.releases_with_upstream(DEBIAN, "openssh")
    assert {r for r, names in debian.items() if "9.2p1" in names} == {"12"}
    assert {r for r, names in debian.items() if "8.4p1" in names} == {"11"}


def _ssh(banner: str) -> Service:
    return Service(port=22, proto="tcp", state="open", name="ssh", banner=banner)


def test_distro_banners_are_judged_by_their_release(db: VulnDb) -> None:
    assessor = Assessor(db)
    jammy = assessor.service(_ssh("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"))
    assert jammy is not None
    (match,) = jammy
    assert (match.advisory_id, match.release, match.fixed_version) == (
        "CVE-2024-6387",
        "22.04",
        "1:8.9p1-3ubuntu0.10",
    )
    assert match.confidence is Confidence.FIRM
    assert assessor.service(_ssh("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10")) == []
    bookworm = assessor.service(_ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1"))
    assert bookworm is not None
    assert {(v.advisory_id, v.release) for v in bookworm} == {
        ("CVE-2024-6387", "12"),
        ("CVE-2023-48795", "12"),
    }


def test_installed_packages_are_judged_by_their_release_with_certainty(db: VulnDb) -> None:
    inventory = Inventory(
        host="127.0.96.1",
        os=OsRelease("ubuntu", "22.04", "Ubuntu 22.04.4 LTS"),
        kernel="5.15.0-105-generic",
        manager="dpkg",
        packages=(
            Package("libssl3", "3.0.2-0ubuntu1.7", "dpkg", "amd64", "openssl", None),
            Package("openssl", "3.0.2-0ubuntu1.7", "dpkg", "amd64", "openssl", None),
            Package("apache2-bin", "2.4.52-1ubuntu4.10", "dpkg", "amd64", "apache2", None),
        ),
    )
    found, why_not = Assessor(db).packages(inventory)
    assert why_not is None
    assert {(v.advisory_id, v.product, v.fixed_version) for v in found} == {
        ("CVE-2023-0286", "openssl", "3.0.2-0ubuntu1.8")
    }
    assert {v.confidence for v in found} == {Confidence.CERTAIN}
