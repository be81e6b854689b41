"""The advisory database: imports from each real format, all-or-nothing; lookups with OSV and
NVD semantics; KEV and EPSS joined by CVE; one match per CVE; staleness."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import sqlite3
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.vulndb import db as db_module
from scanner.vulndb import rows as rows_module
from scanner.vulndb.db import (
    EPSS_NOTABLE,
    Match,
    VulnDb,
    VulnDbError,
    detect_format,
    import_files,
    lookup,
    status,
)
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


# --- the daemons fixtures: NVD bounds, OSV ranges per release, KEV/EPSS, dedup ------------------

DAEMONS = [
    DATA / "nvd-2.0-daemons.json",
    DATA / "osv-ghsa-terrapin.json",
    DATA / "osv-ghsa-ecdsa.json",
    DATA / "osv-dsa-5724-1.json",
    DATA / "osv-debian-cve-2023-38408.json",
    DATA / "osv-ubuntu-cve-2024-6387.json",
    DATA / "kev-daemons.json",
    DATA / "epss-daemons.csv",
]


@pytest.fixture
def daemons(built: Path) -> Path:
    import_files(built, DAEMONS)
    return built


def _ids(db: VulnDb, product: str, version: str, **kwargs: object) -> set[str]:
    return {c for m in db.lookup(product, version, **kwargs) for c in m.cves}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("product", "version", "cve", "expected"),
    [
        ("openssh", "9.2p1", "CVE-2023-38408", True),  # versionEndExcluding 9.3
        ("openssh", "9.3", "CVE-2023-38408", True),  # exact 9.3:-
        ("openssh", "9.3p1", "CVE-2023-38408", True),  # exact 9.3:p1, NVD's update folded in
        ("openssh", "9.3p2", "CVE-2023-38408", False),
        ("openssh", "5.3p1", "CVE-2016-0777", False),  # versionStartIncluding 5.4
        ("openssh", "5.4", "CVE-2016-0777", True),
        ("openssh", "7.1", "CVE-2016-0777", True),  # versionEndIncluding 7.1
        ("openssh", "7.1p1", "CVE-2016-0777", True),  # above 7.1, but listed exactly
        ("openssh", "7.1p2", "CVE-2016-0777", False),
        ("nginx", "0.6.17", "CVE-2021-23017", False),  # f5:nginx, versionStartIncluding
        ("nginx", "0.6.18", "CVE-2021-23017", True),
        ("nginx", "1.20.0", "CVE-2021-23017", True),
        ("nginx", "1.20.1", "CVE-2021-23017", False),  # versionEndExcluding
        ("nginx", "1.3.8", "CVE-2013-2028", False),  # nginx:nginx, versionStartExcluding
        ("nginx", "1.3.9", "CVE-2013-2028", True),
        ("nginx", "1.4.0", "CVE-2013-2028", True),  # versionEndIncluding
        ("nginx", "1.4.1", "CVE-2013-2028", False),
        ("iis", "7.5", "CVE-2010-3972", True),
        ("iis", "8.0", "CVE-2010-3972", False),
    ],
)
def test_nvd_bounds_through_the_product_aliases(
    daemons: Path, product: str, version: str, cve: str, expected: bool
) -> None:
    with VulnDb(daemons) as db:
        assert (cve in _ids(db, product, version)) is expected


def test_negated_nodes_and_platforms_match_nothing(daemons: Path) -> None:
    with VulnDb(daemons) as db:
        assert db.lookup("nginx", "0.5.0") == []  # only the negated node covers it
        assert db.lookup("x", "11.0", cpe="cpe:2.3:o:debian:debian_linux:11.0:*:*:*:*:*:*:*") == []


def test_kev_epss_and_fixed_version_joined(daemons: Path) -> None:
    with VulnDb(daemons) as db:
        [iis] = db.lookup("iis", "7.5")
        assert (iis.cvss_score, iis.severity) == (10.0, "HIGH")  # CVSS v2 only
        assert iis.kev and iis.kev_ransomware is True and iis.epss == 0.71
        [nginx] = db.lookup("nginx", "1.19.0")
        assert nginx.kev and nginx.kev_ransomware is False and nginx.epss_percentile == 0.95
        assert nginx.fixed_version == "1.20.1" and nginx.match_kind == "nvd-cpe"
        found = {m.cves[0]: m for m in db.lookup("openssh", "7.0")}
        assert found["CVE-2023-38408"].fixed_version == "9.3"
        assert found["CVE-2016-0777"].fixed_version is None  # an included end names no fix
        assert not found["CVE-2016-0777"].kev and found["CVE-2016-0777"].kev_ransomware is None


def test_priority_kev_then_notable_epss_then_cvss() -> None:
    def match(name: str, *, cvss_score: float | None = None, **kwargs: Any) -> Match:
        return Match(name, (name,), None, cvss_score, None, None, None, **kwargs)

    matches = [
        match("low-epss-high-cvss", epss=0.05, cvss_score=9.8),
        match("notable", epss=0.2, cvss_score=5.0),
        match("more-notable", epss=0.6, cvss_score=4.0),
        match("kev", kev=True, epss=0.01, cvss_score=3.0),
        match("plain", cvss_score=7.0),
        match("unscored"),
        match("tiny-epss", epss=0.09, cvss_score=6.9),
    ]
    ordered = [m.advisory_id for m in sorted(matches, key=lambda m: m.priority)]
    assert ordered == [
        "kev",
        "more-notable",
        "notable",
        "low-epss-high-cvss",
        "plain",
        "tiny-epss",
        "unscored",
    ]
    assert EPSS_NOTABLE == 0.1


def test_distro_release_decides_which_fix_applies(daemons: Path) -> None:
    debian = Ecosystem.DEBIAN
    with VulnDb(daemons) as db:
        patched11 = "1:8.4p1-5+deb11u2"
        assert _ids(db, "openssh", patched11, ecosystem=debian, release="11") == set()
        # Without the release the Debian 12 range (fixed in 1:9.2p1-2+deb12u1) claims it.
        assert "CVE-2023-38408" in _ids(db, "openssh", patched11, ecosystem=debian)
        [old] = db.lookup("openssh", "1:8.4p1-5+deb11u1", ecosystem=debian, release="11")
        assert old.fixed_version == "1:8.4p1-5+deb11u2" and old.cves == ("CVE-2023-38408",)
        bookworm = db.lookup("openssh", "1:9.2p1-2", ecosystem=debian, release="12")
        assert [m.cves for m in bookworm] == [("CVE-2023-38408",), ("CVE-2024-6387",)]
        regresshion = bookworm[1]
        # DSA-5724-1 and DEBIAN-CVE-2024-6387 are one CVE: one match, NVD's score borrowed.
        assert regresshion.fixed_version == "1:9.2p1-2+deb12u3"
        assert regresshion.cvss_score == 8.1 and regresshion.match_kind == "osv-range"
        ubuntu = Ecosystem.UBUNTU
        [noble] = db.lookup("openssh", "1:9.6p1-3ubuntu13.2", ecosystem=ubuntu, release="24.04")
        assert noble.advisory_id == "UBUNTU-CVE-2024-6387" and noble.cvss_score == 8.1
        assert db.lookup("openssh", "1:9.6p1-3ubuntu13.3", ecosystem=ubuntu) == []
        assert db.lookup("openssh", "1:9.6p1-3ubuntu13.2", ecosystem=ubuntu, release="22.04") == []


@pytest.mark.parametrize(
    ("ecosystem", "package", "version", "fixed"),
    [
        (Ecosystem.PYPI, "paramiko", "3.3.1", "3.4.0"),
        (Ecosystem.PYPI, "Paramiko", "3.4.0", None),  # fixed: not affected
        (Ecosystem.PYPI, "asyncssh", "2.14.1", "2.14.2"),
        (Ecosystem.SEMVER, "golang.org/x/crypto", "0.16.0", "0.17.0"),
        (Ecosystem.SEMVER, "russh", "0.40.2", None),
        (Ecosystem.PYPI, "ecdsa", "0.18.0", "-"),  # last_affected: affected, no fix known
        (Ecosystem.PYPI, "ecdsa", "0.18.1", None),
    ],
)
def test_osv_introduced_fixed_last_affected(
    daemons: Path, ecosystem: Ecosystem, package: str, version: str, fixed: str | None
) -> None:
    found = lookup(daemons, package, version, ecosystem=ecosystem)
    if fixed is None:
        assert found == []
        return
    [match] = found
    assert match.match_kind == "osv-range" and match.sources == ("osv",)
    assert match.fixed_version == (None if fixed == "-" else fixed)
    assert match.cvss_score in (5.9, 5.3)  # computed from each GHSA's vector


def test_records_sharing_cves_merge_transitively(daemons: Path, tmp_path: Path) -> None:
    both = json.loads((DATA / "osv-dsa-5724-1.json").read_text())
    both["id"] = "DSA-9999-1"
    both["upstream"] = ["CVE-2024-6387", "CVE-2023-38408"]
    both["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1:9.2p1-2+deb12u9"
    extra = tmp_path / "dsa-9999-1.json"
    extra.write_text(json.dumps(both))
    import_files(daemons, [extra])
    [merged] = lookup(daemons, "openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
    assert merged.cves == ("CVE-2023-38408", "CVE-2024-6387")
    assert merged.epss == 0.62  # the highest of the CVEs'


@pytest.mark.parametrize(
    "cpe",
    [
        "cpe:/a:openbsd:openssh:7.4",
        "cpe:2.3:a:openbsd:openssh:7.4:-:*:*:*:*:*:*",
        "openbsd:openssh",
        "OpenBSD:OpenSSH",
    ],
)
def test_lookup_by_cpe_forms(daemons: Path, cpe: str) -> None:
    found = {m.cves[0] for m in lookup(daemons, "sshd", "7.4", cpe=cpe)}
    assert found == {"CVE-2023-38408"}
    assert lookup(daemons, "sshd", "7.4") == []  # no alias for "sshd", no CPE given


@pytest.mark.parametrize("bad", ["cpe:2.3:a", "openssh", "cpe:/a:*:openssh", "a:b:c"])
def test_bad_cpe_is_a_clear_error(daemons: Path, bad: str) -> None:
    with pytest.raises(VulnDbError, match="not a CPE name"):
        lookup(daemons, "openssh", "7.4", cpe=bad)


def test_truncated_second_file_keeps_counts_and_bytes(daemons: Path, tmp_path: Path) -> None:
    before_bytes = hashlib.sha256(daemons.read_bytes()).hexdigest()
    before = status(daemons)
    text = (DATA / "nvd-2.0-daemons.json").read_text()
    cut = tmp_path / "nvdcve-2.0-2023.json"
    cut.write_text(text[: text.index('"CVE-2021-23017"') + 40])
    with pytest.raises(VulnDbError) as caught:
        import_files(daemons, [DATA / "kev-sample.json", cut])
    assert str(caught.value) == f"{cut}: truncated in record 2"
    assert hashlib.sha256(daemons.read_bytes()).hexdigest() == before_bytes
    assert status(daemons).counts == before.counts
    assert [p.name for p in daemons.parent.iterdir() if p.name.startswith(".vulndb.sqlite-")] == []


def test_reimport_replaces_rows(daemons: Path) -> None:
    before = status(daemons).counts
    import_files(daemons, DAEMONS)
    assert status(daemons).counts == before
    assert status(daemons).per_source == {"nvd": 8, "osv": 6}


def test_concurrent_imports_both_land(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    files = [[DATA / "nvd-2.0-daemons.json"], [DATA / "osv-ghsa-terrapin.json"], [KEV], [EPSS]]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda f: import_files(path, f), files))
    counts = status(path).counts
    assert (counts["advisories"], counts["kev"], counts["epss"]) == (6, 2, 3)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE sources (name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL,
    records INTEGER NOT NULL, imported_at TEXT NOT NULL);
CREATE TABLE advisories (id TEXT PRIMARY KEY, source TEXT NOT NULL, summary TEXT, published TEXT,
    modified TEXT, cvss_score REAL, cvss_vector TEXT, severity TEXT,
    aliases TEXT NOT NULL DEFAULT '[]', refs TEXT NOT NULL DEFAULT '[]');
CREATE TABLE aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL);
CREATE TABLE affected (advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
    events TEXT NOT NULL, versions TEXT NOT NULL);
CREATE INDEX affected_package ON affected (ecosystem, package);
CREATE TABLE cpe_matches (advisory_id TEXT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL,
    version TEXT, start_including TEXT, start_excluding TEXT, end_including TEXT,
    end_excluding TEXT);
CREATE TABLE kev (cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware INTEGER,
    vendor TEXT, product TEXT, name TEXT);
CREATE TABLE epss (cve TEXT PRIMARY KEY, score REAL, percentile REAL, date TEXT);
INSERT INTO meta VALUES ('schema_version', '1'), ('built_at', '2026-11-01T00:00:00+00:00');
INSERT INTO advisories VALUES ('CVE-2024-6387', 'nvd', 'old', NULL, NULL, 8.1, NULL, 'HIGH',
    '[]', '[]');
INSERT INTO cpe_matches VALUES ('CVE-2024-6387', 'openbsd', 'openssh', NULL, '8.5', NULL, NULL,
    '9.8');
INSERT INTO advisories VALUES ('DEBIAN-CVE-2024-6387', 'osv', 'old', NULL, NULL, NULL, NULL,
    NULL, '["CVE-2024-6387"]', '[]');
INSERT INTO affected VALUES ('DEBIAN-CVE-2024-6387', 'Debian', 'openssh',
    '[{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}]', '[]');
"""


def test_a_schema_1_database_is_migrated_by_the_next_import(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)
    old.close()
    with pytest.raises(
        VulnDbError, match="schema 1, built by an older posture: this posture reads schema 3"
    ):
        VulnDb(path)
    import_files(path, [KEV])
    with VulnDb(path) as db:
        assert [m.cves for m in db.lookup("openssh", "9.7p1")] == [("CVE-2024-6387",)]
        debian = db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
        assert [m.fixed_version for m in debian] == ["1:9.2p1-2+deb12u3"]
        assert debian[0].cvss_score == 8.1


def test_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(VulnDbError, match="not an advisory database"):
        VulnDb(junk)
    with pytest.raises(VulnDbError, match=r"junk\.sqlite: not an advisory database"):
        import_files(junk, [KEV])
    assert junk.read_bytes() == b"not sqlite at all" * 100


def test_status_never_built_and_per_source(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    import_files(path, [KEV], now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    found = status(path, now=dt.datetime(2026, 11, 9, 12, tzinfo=dt.UTC), max_age_days=7)
    assert found.age_days == 8.5 and found.per_source == {}
    assert found.warning is not None and "more than 7" in found.warning
    assert found.sources[0][:3] == ("kev", str(KEV), 2)
    assert status(path, now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)).warning is None


def test_the_same_advisory_twice_in_one_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "BATCH", 1)  # every record its own round
    path = tmp_path / "db.sqlite"
    nvd = DATA / "nvd-2.0-daemons.json"
    import_files(path, [nvd, nvd, DATA / "osv-dsa-5724-1.json", DATA / "osv-dsa-5724-1.json"])
    once = tmp_path / "once.sqlite"
    import_files(once, [nvd, DATA / "osv-dsa-5724-1.json"])
    assert status(path).counts == status(once).counts
    import_files(path, [nvd])  # and again in a later import
    assert status(path).counts == status(once).counts
    assert {m.cves[0] for m in lookup(path, "openssh", "5.5")} == {
        "CVE-2023-38408",
        "CVE-2016-0777",
    }


@given(st.lists(st.text(max_size=20), max_size=5))
def test_json_list_is_json(items: list[str]) -> None:
    assert json.loads(rows_module.json_list(items)) == items


def test_match_cache_is_bounded_and_keeps_what_is_read() -> None:
    cache: db_module._Cache[str, str] = db_module._Cache(4)  # two generations of two
    cache.put("a", "A")
    cache.put("b", "B")  # the young generation is full: it becomes the old one
    assert cache.get("a") == "A"  # read from the old generation: young again
    cache.put("c", "C")  # full again: ("a", "c") old, ("b") dropped
    assert (cache.get("b"), cache.get("c"), len(cache)) == (None, "C", 2)
    for n in range(100):
        cache.put(str(n), str(n))
        assert len(cache) <= 4


def test_osv_matches_survive_eviction(daemons: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with VulnDb(daemons) as fresh:
        expected = fresh.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
    monkeypatch.setattr(VulnDb, "MATCHES_CACHED", 2)
    with VulnDb(daemons) as db:
        for _ in range(3):
            found = db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
            assert found == expected and len(db._osv) <= 2


# --- KEV fields of NVD records -------------------------------------------------------------------


def _nvd_with_kev(tmp_path: Path, due: str = "2021-11-17") -> Path:
    """nvd-sample.json with NVD's copy of the KEV entry on CVE-2021-41773 (in the catalog too)
    and on CVE-2024-6387 (in no catalog file here)."""
    document = json.loads(NVD.read_text())
    for item in document["vulnerabilities"]:
        cve = item["cve"]
        if cve["id"] in ("CVE-2021-41773", "CVE-2024-6387"):
            cve["cisaExploitAdd"] = "2021-11-03"
            cve["cisaActionDue"] = due
            cve["cisaRequiredAction"] = "Apply updates per vendor instructions."
            cve["cisaVulnerabilityName"] = f"NVD's name for {cve['id']}"
    path = tmp_path / f"nvd-kev-{due}.json"
    path.write_text(json.dumps(document))
    return path


def _kev_rows(path: Path) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT cve, date_added, due_date, ransomware, vendor, product, name, source FROM kev"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


CATALOG_APACHE = (
    "2021-11-03",
    "2021-11-17",
    0,
    "Apache",
    "HTTP Server",
    "Apache HTTP Server Path Traversal Vulnerability",
    "catalog",
)
NVD_REGRESSHION = (
    "2021-11-03",
    "2021-11-17",
    None,
    None,
    None,
    "NVD's name for CVE-2024-6387",
    "nvd",
)


@pytest.mark.parametrize(
    "order",
    [
        "nvd file, then catalog file",
        "catalog file, then nvd file",
        "both in one import, nvd first",
        "both in one import, catalog first",
    ],
)
def test_nvd_kev_fields_never_overwrite_the_catalog(tmp_path: Path, order: str) -> None:
    path = tmp_path / "db.sqlite"
    nvd = _nvd_with_kev(tmp_path)
    imports = {
        "nvd file, then catalog file": [[nvd], [KEV]],
        "catalog file, then nvd file": [[KEV], [nvd]],
        "both in one import, nvd first": [[nvd, KEV]],
        "both in one import, catalog first": [[KEV, nvd]],
    }[order]
    for files in imports:
        import_files(path, files)
    rows = _kev_rows(path)
    assert rows["CVE-2021-41773"] == CATALOG_APACHE  # the catalog's, ransomware flag and all
    assert rows["CVE-2024-6387"] == NVD_REGRESSHION  # NVD's copy fills the catalog's gap
    assert rows["CVE-2011-2523"][-1] == "catalog"
    with VulnDb(path) as db:
        [regresshion] = db.lookup("openssh", "9.7p1", cpe_names=OPENSSH)
        assert regresshion.kev is True and regresshion.kev_ransomware is None  # unknown


def test_a_newer_nvd_copy_updates_only_nvd_rows(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    import_files(path, [KEV, _nvd_with_kev(tmp_path)])
    import_files(path, [_nvd_with_kev(tmp_path, due="2022-01-01")])
    rows = _kev_rows(path)
    assert rows["CVE-2024-6387"][1] == "2022-01-01"  # NVD's own entry follows NVD
    assert rows["CVE-2021-41773"] == CATALOG_APACHE  # the catalog's does not
    import_files(path, [KEV])  # a later catalog import leaves NVD's gap-filler alone
    assert _kev_rows(path)["CVE-2024-6387"][1] == "2022-01-01"


# --- schema 2 files, lookups against a reference --------------------------------------------------

V2_SCHEMA = (
    V1_SCHEMA.replace(
        "events TEXT NOT NULL, versions TEXT NOT NULL);",
        "events TEXT NOT NULL, versions TEXT NOT NULL, release TEXT NOT NULL DEFAULT '');",
    )
    .replace("end_excluding TEXT);", "end_excluding TEXT, vulnerable INTEGER NOT NULL DEFAULT 1);")
    .replace("('schema_version', '1')", "('schema_version', '2')")
    .replace("'9.8');", "'9.8', 1);")
    .replace(
        """'[{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}]', '[]');""",
        """'[{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u3"}]', '[]', '12');""",
    )
)
"""Schema 2 as posture wrote it: v1 plus the distro release and NVD's vulnerable flag."""


def test_a_schema_2_database_is_a_clear_error_until_the_next_import(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(V2_SCHEMA)
    old.close()
    expected = "schema 2, built by an older posture: this posture reads schema 3;"
    with pytest.raises(VulnDbError, match=expected):
        VulnDb(path)
    with pytest.raises(VulnDbError, match=expected):
        status(path)
    with pytest.raises(VulnDbError, match=r"`posture vulndb import FILE` migrates it"):
        lookup(path, "openssh", "9.7p1")
    import_files(path, [KEV])
    with VulnDb(path) as db:
        assert [m.cves for m in db.lookup("openssh", "9.7p1")] == [("CVE-2024-6387",)]
        assert db.lookup("openssh", "9.8p1") == []
        debian = db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
        assert [m.fixed_version for m in debian] == ["1:9.2p1-2+deb12u3"]
    assert status(path).counts["kev"] == 2


def test_a_newer_schema_is_refused(built: Path) -> None:
    with sqlite3.connect(built) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(VulnDbError, match="schema 99, built by a newer posture"):
        VulnDb(built)


GENERATED_VERSIONS = ["1.0", "1.1", "1.2rc1", "1.2", "1.2p1", "1.3", "2.0", "2.0.1", "2.1", "3"]


def _generated_nvd(rng: random.Random, count: int) -> dict[str, Any]:
    items = []
    for number in range(count):
        matches = []
        for extra in range(rng.randint(1, 3)):
            bounds = {}
            for key in (
                "versionStartIncluding",
                "versionStartExcluding",
                "versionEndIncluding",
                "versionEndExcluding",
            ):
                if rng.random() < 0.35:
                    bounds[key] = rng.choice(GENERATED_VERSIONS)
            exact = rng.choice(GENERATED_VERSIONS) if rng.random() < 0.3 else "*"
            matches.append(
                {
                    "vulnerable": rng.random() < 0.9,
                    "criteria": f"cpe:2.3:a:acme:widget:{exact}:*:*:*:*:*:*:*",
                    "matchCriteriaId": f"M{number}-{extra}",
                    **bounds,
                }
            )
        score = rng.choice([None, 3.1, 5.0, 7.5, 9.8])
        metrics = {}
        if score is not None:
            metrics = {
                "cvssMetricV31": [
                    {"type": "Primary", "cvssData": {"baseScore": score, "vectorString": "V"}}
                ]
            }
        items.append(
            {
                "cve": {
                    "id": f"CVE-2026-{1000 + number}",
                    "descriptions": [{"lang": "en", "value": f"advisory {number}"}],
                    "metrics": metrics,
                    "configurations": [{"nodes": [{"cpeMatch": matches}]}],
                }
            }
        )
    return {"format": "NVD_CVE", "version": "2.0", "vulnerabilities": items}


def _reference(document: dict[str, Any], version: str) -> dict[str, str | None]:
    """Advisory id -> fixed version, by NVD's bounds read with sort keys, criterion by criterion
    in file order (the first covering criterion names the fix): what lookups did before."""
    from scanner.vulndb.versions import sort_key

    def key(text: str) -> Any:
        return sort_key(Ecosystem.UPSTREAM, text)

    target = key(version)
    found: dict[str, str | None] = {}
    for item in document["vulnerabilities"]:
        cve = item["cve"]
        for match in cve["configurations"][0]["nodes"][0]["cpeMatch"]:
            exact = match["criteria"].split(":")[5]
            bounds = [match.get(k) for k in ("versionStartIncluding", "versionStartExcluding")]
            bounds += [match.get(k) for k in ("versionEndIncluding", "versionEndExcluding")]
            if not match["vulnerable"] or (exact == "*" and not any(bounds)):
                continue
            if exact != "*":
                covered = key(exact) == target
            else:
                s_in, s_ex, e_in, e_ex = (None if b is None else key(b) for b in bounds)
                covered = not (
                    (s_in is not None and target < s_in)
                    or (s_ex is not None and target <= s_ex)
                    or (e_in is not None and target > e_in)
                    or (e_ex is not None and target >= e_ex)
                )
            if covered and cve["id"] not in found:
                found[cve["id"]] = bounds[3] if exact == "*" else None
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lookups_agree_with_nvd_bounds_and_come_most_urgent_first(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    document = _generated_nvd(rng, 80)
    nvd = tmp_path / "nvd.json"
    nvd.write_text(json.dumps(document))
    ids = [item["cve"]["id"] for item in document["vulnerabilities"]]
    epss = tmp_path / "epss.csv"
    lines = [f"{i},{rng.choice([0.01, 0.05, 0.1, 0.3, 0.9])},0.5" for i in rng.sample(ids, 40)]
    epss.write_text("cve,epss,percentile\n" + "\n".join(lines) + "\n")
    kev = tmp_path / "kev.json"
    listed = [{"cveID": i, "knownRansomwareCampaignUse": "Known"} for i in rng.sample(ids, 10)]
    kev.write_text(json.dumps({"catalogVersion": "1", "vulnerabilities": listed}))
    path = tmp_path / "db.sqlite"
    import_files(path, [nvd, epss, kev])
    hits = 0
    with VulnDb(path) as db:
        for version in [*GENERATED_VERSIONS, "0.9", "1.2.0", "1.2p2", "2.0.0.1", "9"]:
            found = db.lookup("widget", version, cpe="acme:widget")
            assert {m.advisory_id: m.fixed_version for m in found} == _reference(document, version)
            assert found == sorted(found, key=lambda m: (m.priority, m.advisory_id))
            hits += len(found)
    assert hits > 100  # the generated criteria cover something


def test_repeated_lookups_come_from_a_bounded_cache(built: Path) -> None:
    with VulnDb(built) as db:
        first = db.lookup("openssh", "9.3p1")
        asked = ("openssh", "9.3p1", Ecosystem.UPSTREAM, None, None, ())
        assert first and db._results.get(asked) is None  # asked once: not kept
        first.clear()  # the caller's list is its own
        assert db.lookup("openssh", "9.3p1") and db._results.get(asked)  # asked twice: kept
        again = db.lookup("openssh", "9.3p1")
        assert again and again == db.lookup("openssh", "9.3p1")
        for n in range(db.RESULTS_CACHED * 2):
            db.lookup("openssh", f"1.{n}")
            db.lookup("openssh", f"1.{n}")
        assert len(db._results) <= db.RESULTS_CACHED
        # A distro release is part of what was asked.
        assert db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="11") != (
            db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
        )


def test_a_scan_migrates_an_older_database_instead_of_failing(tmp_path: Path) -> None:
    """An advisory database an earlier posture built is brought to this schema, its advisories
    kept, the first time a scan (ensure_database) opens it; a current one is left alone."""
    from scanner.vulndb.bundled import ensure_database

    path = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(path)) as old:
        old.executescript(V1_SCHEMA)
    assert ensure_database(path) is not None
    with VulnDb(path) as db:
        assert [m.cves for m in db.lookup("openssh", "9.7p1")] == [("CVE-2024-6387",)]
    assert ensure_database(path) is None
    fresh = tmp_path / "new.sqlite"
    built = ensure_database(fresh)
    assert built is not None and built.advisories > 100  # the bundle
