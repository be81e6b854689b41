"""The bundled advisories of group 2 (Postfix, Redis, MySQL, MariaDB, PostgreSQL, IIS, Samba,
Elasticsearch): each NVD file imports on its own, and real lookups give the CVEs, fixed
versions, CVSS scores and KEV flags that the transcribed NVD and CISA records say."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from scanner.vulndb.bundled import BUNDLE_DIR
from scanner.vulndb.db import Match, VulnDb, import_files

NVD_DIR = BUNDLE_DIR / "nvd"
KEV_FILE = BUNDLE_DIR / "kev" / "group2.json"
PRODUCTS = ("postfix", "redis", "mysql", "mariadb", "postgresql", "iis", "samba", "elasticsearch")


def _database(tmp_path: Path, product: str) -> Path:
    path = tmp_path / f"{product}.sqlite"
    report = import_files(path, [NVD_DIR / f"{product}.json", KEV_FILE])
    assert [kind for _, kind, _ in report.files] == ["nvd", "kev"]
    return path


def _lookup(path: Path, product: str, version: str, cpe: str | None = None) -> dict[str, Match]:
    with VulnDb(path) as db:
        return {m.advisory_id: m for m in db.lookup(product, version, cpe=cpe)}


@pytest.mark.parametrize("product", PRODUCTS)
def test_each_file_is_an_nvd_response_whose_records_all_import(
    tmp_path: Path, product: str
) -> None:
    document = json.loads((NVD_DIR / f"{product}.json").read_text(encoding="utf-8"))
    assert document["format"] == "NVD_CVE" and document["version"] == "2.0"
    records = document["vulnerabilities"]
    assert document["totalResults"] == document["resultsPerPage"] == len(records)
    report = import_files(tmp_path / "one.sqlite", [NVD_DIR / f"{product}.json"])
    assert report.files[0][2] == len(records) == report.advisories
    for item in records:
        assert len(item["cve"]["references"]) <= 5
        assert all(d["lang"] == "en" for d in item["cve"]["descriptions"])


# (product, version, CVE ids the version must match, (id, fixed version, CVSS) to check).
VULNERABLE = [
    ("postfix", "3.4.13", {"CVE-2023-51764"}, ("CVE-2023-51764", "3.5.23", 5.3)),
    ("postfix", "3.8.3", {"CVE-2023-51764"}, ("CVE-2023-51764", "3.8.4", 5.3)),
    (
        "postfix",
        "2.5.5",
        {"CVE-2023-51764", "CVE-2011-1720", "CVE-2011-0411"},
        ("CVE-2011-1720", None, 6.8),
    ),
    (
        "postfix",
        "2.3.3",
        {"CVE-2008-2936", "CVE-2011-1720", "CVE-2023-51764"},
        ("CVE-2008-2936", None, 6.2),
    ),
    (
        "redis",
        "5.0.7",
        # CVE-2021-32761 is filed under redislabs:redis, an alias every Redis lookup asks.
        {"CVE-2022-24834", "CVE-2025-49844", "CVE-2021-32675", "CVE-2021-41099", "CVE-2021-32761"},
        ("CVE-2021-41099", "5.0.14", 7.5),
    ),
    ("redis", "7.0.11", {"CVE-2022-24834", "CVE-2025-49844"}, ("CVE-2022-24834", "7.0.12", 8.8)),
    ("redis", "8.2.1", {"CVE-2025-49844"}, ("CVE-2025-49844", "8.2.2", 8.8)),
    (
        "mysql",
        "5.5.20",
        {"CVE-2012-2122", "CVE-2016-6662", "CVE-2016-6664", "CVE-2023-21980"},
        ("CVE-2016-6662", None, 9.8),
    ),
    (
        "mysql",
        "5.7.11",
        {
            "CVE-2016-0639",
            "CVE-2016-6662",
            "CVE-2016-6664",
            "CVE-2017-3599",
            "CVE-2023-21980",
        },
        ("CVE-2016-0639", None, 9.8),
    ),
    ("mysql", "8.0.21", {"CVE-2020-14878", "CVE-2023-21980"}, ("CVE-2020-14878", None, 8.0)),
    ("mysql", "5.1.52sp1", {"CVE-2012-2122", "CVE-2023-21980"}, ("CVE-2012-2122", None, 5.1)),
    (
        "mariadb",
        "10.3.27",
        {"CVE-2021-27928", "CVE-2022-27376", "CVE-2023-5157"},
        ("CVE-2021-27928", "10.3.28", 7.2),
    ),
    (
        "mariadb",
        "10.1.16",
        {"CVE-2016-6662", "CVE-2016-6664", "CVE-2023-5157"},
        ("CVE-2016-6662", "10.1.17", 9.8),
    ),
    (
        "mariadb",
        "5.5.22",
        {"CVE-2012-2122", "CVE-2016-6662", "CVE-2016-6664", "CVE-2023-5157"},
        ("CVE-2012-2122", None, 5.1),
    ),
    ("mariadb", "10.6.8", {"CVE-2023-5157"}, ("CVE-2023-5157", "10.6.9", 7.5)),
    (
        "postgresql",
        "9.6.5",
        {"CVE-2018-1058", "CVE-2020-25695", "CVE-2021-32027"},
        ("CVE-2018-1058", "9.6.8", 8.8),
    ),
    (
        "postgresql",
        "9.5.10",
        {"CVE-2018-1058", "CVE-2020-25695"},
        # NVD's first CVE-2020-25695 range has no lower bound: everything before 9.5.24.
        ("CVE-2020-25695", "9.5.24", 8.8),
    ),
    (
        "postgresql",
        "11.3",
        {
            "CVE-2019-10164",
            "CVE-2020-25695",
            "CVE-2021-32027",
            "CVE-2022-1552",
            "CVE-2023-2454",
            "CVE-2023-39417",
            "CVE-2023-5869",
        },
        ("CVE-2019-10164", "11.4", 8.8),
    ),
    (
        "postgresql",
        "12.4",
        {
            "CVE-2020-25695",
            "CVE-2021-32027",
            "CVE-2022-1552",
            "CVE-2023-2454",
            "CVE-2023-39417",
            "CVE-2023-5869",
        },
        ("CVE-2020-25695", "12.5", 8.8),
    ),
    (
        "postgresql",
        "13.2",
        {"CVE-2021-32027", "CVE-2022-1552", "CVE-2023-2454", "CVE-2023-39417", "CVE-2023-5869"},
        ("CVE-2021-32027", "13.3", 8.8),
    ),
    (
        "postgresql",
        "14.2",
        {"CVE-2022-1552", "CVE-2023-2454", "CVE-2023-39417", "CVE-2023-5869"},
        ("CVE-2022-1552", "14.3", 8.8),
    ),
    (
        "postgresql",
        "15.2",
        {"CVE-2023-2454", "CVE-2023-39417", "CVE-2023-5869"},
        ("CVE-2023-2454", "15.3", 7.2),
    ),
    ("postgresql", "16.0", {"CVE-2023-5869"}, ("CVE-2023-5869", None, 8.8)),
    ("postgresql", "15.3", {"CVE-2023-39417", "CVE-2023-5869"}, ("CVE-2023-39417", "15.4", 8.8)),
    ("iis", "6.0", {"CVE-2017-7269", "CVE-2009-1535"}, ("CVE-2017-7269", None, 9.8)),
    ("iis", "5.1", {"CVE-2009-1535"}, ("CVE-2009-1535", None, 7.5)),
    ("iis", "7.5", {"CVE-2010-3972", "CVE-2010-2730"}, ("CVE-2010-2730", None, 9.3)),
    (
        "samba",
        "3.6.25",
        {
            "CVE-2016-2118",
            "CVE-2017-7494",
            "CVE-2020-1472",
            "CVE-2021-20254",
            "CVE-2021-44142",
            "CVE-2022-38023",
            "CVE-2023-3961",
        },
        ("CVE-2021-20254", "4.12.15", 6.8),
    ),
    (
        "samba",
        "4.3.6",
        {
            "CVE-2016-2118",
            "CVE-2017-7494",
            "CVE-2020-1472",
            "CVE-2020-25719",
            "CVE-2021-20254",
            "CVE-2021-44142",
            "CVE-2022-38023",
            "CVE-2023-3961",
        },
        # NVD's range ends at 4.3.7 (the description says "4.3.x before 4.3.8").
        ("CVE-2016-2118", "4.3.7", 7.5),
    ),
    (
        "samba",
        "4.5.9",
        {
            "CVE-2017-7494",
            "CVE-2020-1472",
            "CVE-2020-25719",
            "CVE-2021-20254",
            "CVE-2021-44142",
            "CVE-2022-38023",
            "CVE-2023-3961",
        },
        ("CVE-2017-7494", "4.5.10", 9.8),
    ),
    (
        "samba",
        "4.12.6",
        {
            "CVE-2020-1472",
            "CVE-2020-25719",
            "CVE-2021-20254",
            "CVE-2021-44142",
            "CVE-2022-38023",
            "CVE-2023-3961",
        },
        # The first v3.1 entry of the record (Microsoft's, Secondary): NVD has no Primary one.
        ("CVE-2020-1472", "4.12.7", 10.0),  # NVD's own (Secondary) v3.1, not the CNA's 5.5
    ),
    (
        "samba",
        "4.13.13",
        {"CVE-2020-25719", "CVE-2021-44142", "CVE-2022-38023", "CVE-2023-3961"},
        ("CVE-2020-25719", "4.13.14", 7.2),
    ),
    (
        "samba",
        "4.14.3",
        {
            "CVE-2020-25719",
            "CVE-2021-20254",
            "CVE-2021-44142",
            "CVE-2022-38023",
            "CVE-2023-3961",
        },
        ("CVE-2021-20254", "4.14.4", 6.8),
    ),
    (
        "samba",
        "4.15.4",
        {"CVE-2021-44142", "CVE-2022-38023", "CVE-2023-3961"},
        ("CVE-2021-44142", "4.15.5", 8.8),
    ),
    ("samba", "4.17.3", {"CVE-2022-38023", "CVE-2023-3961"}, ("CVE-2022-38023", "4.17.4", 8.1)),
    ("samba", "4.18.7", {"CVE-2023-3961"}, ("CVE-2023-3961", "4.18.8", 9.8)),
    (
        "elasticsearch",
        "1.1.1",
        {"CVE-2014-3120", "CVE-2015-1427", "CVE-2015-5531"},
        ("CVE-2014-3120", "1.2", 8.1),
    ),
    ("elasticsearch", "1.4.2", {"CVE-2015-1427", "CVE-2015-5531"}, ("CVE-2015-1427", "1.4.3", 9.8)),
    (
        "elasticsearch",
        "7.13.3",
        {"CVE-2021-22145", "CVE-2023-31419"},
        ("CVE-2021-22145", None, 6.5),
    ),
]


@pytest.mark.parametrize(("product", "version", "expected", "checked"), VULNERABLE)
def test_a_vulnerable_version_matches_its_advisories(
    tmp_path: Path,
    product: str,
    version: str,
    expected: set[str],
    checked: tuple[str, str | None, float],
) -> None:
    found = _lookup(_database(tmp_path, product), product, version)
    assert set(found) == expected
    cve, fixed, score = checked
    assert found[cve].fixed_version == fixed
    assert found[cve].cvss_score == score
    assert found[cve].sources == ("nvd",)


# A release past every bundled range: a current install comes out clean.
CLEAN = [
    ("postfix", "3.9.0"),
    ("postfix", "3.5.23"),
    ("redis", "8.2.2"),
    ("redis", "7.4.6"),
    ("mysql", "8.0.36"),
    ("mysql", "5.7.44"),
    ("mariadb", "11.4.2"),
    ("mariadb", "10.11.6"),
    ("postgresql", "16.4"),
    ("postgresql", "15.5"),
    ("iis", "10.0"),
    ("samba", "4.20.1"),
    ("samba", "4.19.1"),
    ("elasticsearch", "8.15.0"),
    ("elasticsearch", "7.17.13"),
]


@pytest.mark.parametrize(("product", "version"), CLEAN)
def test_a_fixed_version_matches_nothing(tmp_path: Path, product: str, version: str) -> None:
    assert _lookup(_database(tmp_path, product), product, version) == {}


def test_cisa_kev_flags_the_catalogued_cves(tmp_path: Path) -> None:
    samba = _lookup(_database(tmp_path, "samba"), "samba", "4.6.3")
    # The catalog marks both as used in ransomware campaigns ("Known").
    assert samba["CVE-2017-7494"].kev and samba["CVE-2017-7494"].kev_ransomware is True
    assert samba["CVE-2020-1472"].kev and samba["CVE-2020-1472"].kev_ransomware is True
    assert {c for c, m in samba.items() if m.kev} == {"CVE-2017-7494", "CVE-2020-1472"}
    iis = _lookup(_database(tmp_path, "iis"), "iis", "6.0")
    assert iis["CVE-2017-7269"].kev and not iis["CVE-2009-1535"].kev
    elastic = _lookup(_database(tmp_path, "elasticsearch"), "elasticsearch", "1.1.1")
    assert {c for c, m in elastic.items() if m.kev} == {"CVE-2014-3120", "CVE-2015-1427"}
    # KEV comes first in the ranking, whatever the CVSS score.
    assert list(elastic)[-1] == "CVE-2015-5531"


def test_the_kev_file_holds_exactly_the_bundled_records_cisa_lists() -> None:
    catalog = json.loads(KEV_FILE.read_text(encoding="utf-8"))
    entries = {e["cveID"]: e for e in catalog["vulnerabilities"]}
    assert catalog["count"] == len(entries)
    listed = {}
    for product in PRODUCTS:
        document = json.loads((NVD_DIR / f"{product}.json").read_text(encoding="utf-8"))
        for item in document["vulnerabilities"]:
            if "cisaExploitAdd" in item["cve"]:
                listed[item["cve"]["id"]] = item["cve"]
    assert (
        set(entries)
        == set(listed)
        == {
            "CVE-2014-3120",
            "CVE-2015-1427",
            "CVE-2017-7269",
            "CVE-2017-7494",
            "CVE-2020-1472",
            "CVE-2022-0543",
        }
    )
    for cve, record in listed.items():
        assert entries[cve]["dateAdded"] == record["cisaExploitAdd"]
        assert entries[cve]["dueDate"] == record["cisaActionDue"]
        assert entries[cve]["vulnerabilityName"] == record["cisaVulnerabilityName"]
    assert entries["CVE-2017-7494"]["dateAdded"] == "2023-03-30"
    assert entries["CVE-2020-1472"]["dueDate"] == "2020-09-21"


# The catalog's own fields (cisagov/kev-data known_exploited_vulnerabilities.csv), per entry:
# vendorProject, product, knownRansomwareCampaignUse, cwes.
CATALOG = {
    "CVE-2014-3120": ("Elastic", "Elasticsearch", "Unknown", ["CWE-284"]),
    "CVE-2015-1427": ("Elastic", "Elasticsearch", "Unknown", ["CWE-284"]),
    "CVE-2017-7269": ("Microsoft", "Internet Information Services (IIS)", "Unknown", ["CWE-119"]),
    "CVE-2017-7494": ("Samba", "Samba", "Known", ["CWE-94"]),
    "CVE-2020-1472": ("Microsoft", "Netlogon", "Known", ["CWE-330"]),
    "CVE-2022-0543": ("Redis", "Debian-specific Redis Servers", "Unknown", ["CWE-862"]),
}


def test_the_kev_entries_carry_the_catalog_fields() -> None:
    catalog = json.loads(KEV_FILE.read_text(encoding="utf-8"))
    entries = {e["cveID"]: e for e in catalog["vulnerabilities"]}
    assert set(entries) == set(CATALOG)
    for cve, (vendor, product, ransomware, cwes) in CATALOG.items():
        entry = entries[cve]
        assert (entry["vendorProject"], entry["product"]) == (vendor, product)
        assert entry["knownRansomwareCampaignUse"] == ransomware
        assert entry["cwes"] == cwes
        assert entry["shortDescription"] and entry["notes"].endswith(f"/vuln/detail/{cve}")


def test_debian_redis_lua_escape_is_bundled_but_names_no_version(tmp_path: Path) -> None:
    """NVD files CVE-2022-0543 under cpe:2.3:a:redis:redis:- (a Debian packaging bug, no
    upstream range), so an upstream version must not match it; the KEV entry is still there."""
    path = _database(tmp_path, "redis")
    for version in ("5.0.7", "6.0.16", "7.2.4"):
        assert "CVE-2022-0543" not in _lookup(path, "redis", version)
    with closing(sqlite3.connect(path)) as db:
        kev = db.execute("SELECT date_added, due_date FROM kev WHERE cve = 'CVE-2022-0543'")
        assert kev.fetchall() == [("2022-03-28", "2022-04-18")]


def test_redis_records_filed_under_redislabs_match_that_cpe(tmp_path: Path) -> None:
    """Older Redis records name cpe:2.3:a:redislabs:redis (nmap's CPE for Redis too)."""
    path = _database(tmp_path, "redis")
    old = _lookup(path, "redis", "2.8.19", cpe="cpe:/a:redislabs:redis:2.8.19")
    assert set(old) == {"CVE-2015-4335", "CVE-2021-32761"}
    assert old["CVE-2015-4335"].cvss_score == 10.0
    six = _lookup(path, "redis", "6.0.9", cpe="cpe:/a:redislabs:redis:6.0.9")
    assert set(six) == {"CVE-2021-32625", "CVE-2021-32761"}
    assert six["CVE-2021-32625"].fixed_version == "6.0.14"
    assert _lookup(path, "redis", "6.2.5", cpe="cpe:/a:redislabs:redis:6.2.5") == {}


def test_cves_shared_by_mysql_and_mariadb_survive_importing_both_files(tmp_path: Path) -> None:
    """A re-imported advisory replaces its rows, so the shared records carry both products'
    criteria in both files: either import order keeps both."""
    for order in (("mysql", "mariadb"), ("mariadb", "mysql")):
        path = tmp_path / f"{'-'.join(order)}.sqlite"
        import_files(path, [NVD_DIR / f"{name}.json" for name in order])
        assert {"CVE-2012-2122", "CVE-2016-6662", "CVE-2016-6664"} <= set(
            _lookup(path, "mysql", "5.5.20")
        )
        assert set(_lookup(path, "mariadb", "5.5.22")) == {
            "CVE-2012-2122",
            "CVE-2016-6662",
            "CVE-2016-6664",
            "CVE-2023-5157",
        }
