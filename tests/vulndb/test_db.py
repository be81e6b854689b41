"""The advisory database: imports from each real format, all-or-nothing; lookups with OSV and
NVD semantics; KEV and EPSS joined by CVE; one match per CVE; staleness."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from scanner.vulndb.db import VulnDb, VulnDbError, detect_format, import_files, status
from scanner.vulndb.versions import Ecosystem

DATA = Path(__file__).parent / "data"
NVD, OSV = DATA / "nvd-sample.json", DATA / "osv-debian-openssh.json"
KEV, EPSS = DATA / "kev-sample.json", DATA / "epss-sample.csv"
OPENSSH = [("openbsd", "openssh")]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    path = tmp_path / "vulndb.sqlite"
    report = import_files(path, [NVD, OSV, KEV, EPSS])
    assert report.advisories == 4
    assert [kind for _, kind, _ in report.files] == ["nvd", "osv", "kev", "epss"]
    return path


def test_formats_are_told_from_content(tmp_path: Path) -> None:
    assert [detect_format(p) for p in (NVD, OSV, KEV, EPSS)] == ["nvd", "osv", "kev", "epss"]
    packed = tmp_path / "nvd.json.gz"
    packed.write_bytes(gzip.compress(NVD.read_bytes()))
    assert detect_format(packed) == "nvd"
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello")
    with pytest.raises(VulnDbError, match="not an OSV, NVD"):
        detect_format(garbage)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("4.3p2", True),
        ("4.4", True),  # NVD lists the unpatched 4.4 itself; 4.4p1 is the fix
        ("4.4p1", False),
        ("8.4p1", False),
        ("8.5p1", True),
        ("9.7p1", True),
        ("9.8p1", False),
        ("9.3p2", True),
    ],
)
def test_nvd_cpe_ranges(built: Path, version: str, expected: bool) -> None:
    db = VulnDb(built)
    found = {m.advisory_id for m in db.lookup("openssh", version, cpe_names=OPENSSH)}
    assert ("CVE-2024-6387" in found) is expected


def test_exact_cpe_versions_kev_and_epss(built: Path) -> None:
    db = VulnDb(built)
    [apache] = db.lookup("apache_httpd", "2.4.49", cpe_names=[("apache", "http_server")])
    assert apache.cves == ("CVE-2021-41773",) and apache.cvss_score == 7.5
    assert apache.kev is True and apache.kev_ransomware is False
    assert apache.epss == 0.94 and apache.epss_percentile == 0.999
    assert db.lookup("apache_httpd", "2.4.50", cpe_names=[("apache", "http_server")]) == []
    [backdoor] = db.lookup("vsftpd", "2.3.4", cpe_names=[("vsftpd_project", "vsftpd")])
    assert backdoor.kev_ransomware is True and backdoor.severity == "CRITICAL"


def test_distro_builds_match_their_distro_advisory(built: Path) -> None:
    db = VulnDb(built)
    old = db.lookup("openssh", "1:9.2p1-2+deb12u2", ecosystem=Ecosystem.DEBIAN)
    assert [m.advisory_id for m in old] == ["DEBIAN-CVE-2024-6387"]
    assert old[0].fixed_version == "1:9.2p1-2+deb12u3" and old[0].match_kind == "osv-range"
    assert old[0].epss == 0.38  # joined through the alias
    assert db.lookup("openssh", "1:9.2p1-2+deb12u3", ecosystem=Ecosystem.DEBIAN) == []


def test_one_match_per_cve_and_priority(built: Path, tmp_path: Path) -> None:
    osv_upstream = json.loads(OSV.read_text())
    osv_upstream["id"] = "OSV-2024-6387"
    osv_upstream["affected"][0]["package"]["ecosystem"] = "OSS-Fuzz"
    osv_upstream["affected"][0]["ranges"][0]["events"] = [
        {"introduced": "8.5p1"},
        {"fixed": "9.8p1"},
    ]
    osv_upstream["affected"][0]["versions"] = []
    extra = tmp_path / "osv-upstream.json"
    extra.write_text(json.dumps(osv_upstream))
    import_files(built, [extra])
    matches = VulnDb(built).lookup("openssh", "9.3p1", cpe_names=OPENSSH)
    assert len(matches) == 1  # the OSV and the NVD record are the same CVE
    assert matches[0].sources == ("nvd", "osv") and matches[0].cvss_score == 8.1
    assert matches[0].fixed_version == "9.8p1"


def test_a_bad_file_leaves_the_database_as_it_was(built: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(built.read_bytes()).hexdigest()
    truncated = tmp_path / "nvd-truncated.json"
    truncated.write_text(NVD.read_text()[:1500])
    with pytest.raises(VulnDbError, match=r"nvd-truncated\.json: truncated in record 0"):
        import_files(built, [OSV, truncated])
    assert hashlib.sha256(built.read_bytes()).hexdigest() == before
    bad_epss = tmp_path / "epss.csv"
    bad_epss.write_text("#model_version:x,score_date:2026-11-20\ncve,epss,percentile\nCVE-1,2,x\n")
    with pytest.raises(VulnDbError, match=r"epss\.csv: line 3"):
        import_files(built, [bad_epss])
    bad_osv = tmp_path / "osv-bad.json"
    bad_osv.write_text(json.dumps({"id": "X-1", "affected": [{"ranges": []}]}))
    with pytest.raises(VulnDbError, match="X-1 affected\\[0\\] has no package"):
        import_files(built, [bad_osv])
    assert hashlib.sha256(built.read_bytes()).hexdigest() == before


def test_osv_zip_and_its_bomb_guard(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("DEBIAN-CVE-2024-6387.json", OSV.read_text())
    path = tmp_path / "db.sqlite"
    assert import_files(path, [archive]).advisories == 1
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("big.json", b" " * (11 * 1024 * 1024))
    with pytest.raises(VulnDbError, match="a record of"):
        import_files(path, [bomb])


def test_status_counts_and_staleness(built: Path) -> None:
    fresh = status(built)
    assert fresh.counts["advisories"] == 4 and fresh.counts["kev"] == 2
    assert fresh.counts["epss"] == 3 and fresh.warning is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    stale = status(built, now=later, max_age_days=7)
    assert stale.warning is not None and "10 days old" in stale.warning
    with pytest.raises(VulnDbError, match="no advisory database"):
        status(built.with_name("missing.sqlite"))


def test_hostile_versions_do_not_break_lookups(built: Path) -> None:
    db = VulnDb(built)
    assert db.lookup("openssh", "\x1b[31m", cpe_names=OPENSSH) == []
    assert db.lookup("openssh", "9" * 1000, cpe_names=OPENSSH) == []
