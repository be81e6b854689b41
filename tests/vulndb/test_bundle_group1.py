"""The bundled advisories of group 1 (OpenSSH, OpenSSL, Apache httpd, nginx, vsftpd, ProFTPD,
Exim): each NVD file imports on its own, and real lookups give the CVEs, fixed versions, CVSS
scores and KEV flags that the transcribed NVD and CISA records say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.bundled import BUNDLE_DIR
from scanner.vulndb.db import CPE_ALIASES, Match, VulnDb, import_files

NVD_DIR = BUNDLE_DIR / "nvd"
KEV_FILE = BUNDLE_DIR / "kev" / "group1.json"
PRODUCTS = ("openssh", "openssl", "apache_httpd", "nginx", "vsftpd", "proftpd", "exim")
# In KEV according to NVD's own cisaExploitAdd, but added to the catalog after the newest copy
# of the catalog that could be read: no catalog entry is bundled (see advisories/README.md).
KEV_FROM_NVD_ONLY = {"CVE-2015-3306"}


def _records(product: str) -> list[dict[str, Any]]:
    document = json.loads((NVD_DIR / f"{product}.json").read_text(encoding="utf-8"))
    return [item["cve"] for item in document["vulnerabilities"]]


def _database(tmp_path: Path, product: str) -> Path:
    path = tmp_path / f"{product}.sqlite"
    report = import_files(path, [NVD_DIR / f"{product}.json", KEV_FILE])
    assert [kind for _, kind, _ in report.files] == ["nvd", "kev"]
    return path


def _lookup(path: Path, product: str, version: str) -> dict[str, Match]:
    with VulnDb(path) as db:
        return {m.advisory_id: m for m in db.lookup(product, version)}


@pytest.mark.parametrize("product", PRODUCTS)
def test_each_file_is_an_nvd_response_of_records_that_name_the_product(
    tmp_path: Path, product: str
) -> None:
    document = json.loads((NVD_DIR / f"{product}.json").read_text(encoding="utf-8"))
    assert document["format"] == "NVD_CVE" and document["version"] == "2.0"
    records = document["vulnerabilities"]
    assert document["totalResults"] == document["resultsPerPage"] == len(records)
    report = import_files(tmp_path / "one.sqlite", [NVD_DIR / f"{product}.json"])
    assert report.files[0][2] == len(records) == report.advisories
    names = {f"{vendor}:{name}" for vendor, name in CPE_ALIASES[product]}
    for cve in (item["cve"] for item in records):
        assert len(cve["references"]) <= 5
        assert [d["lang"] for d in cve["descriptions"]] == ["en"]
        criteria = {
            ":".join(match["criteria"].split(":")[3:5])
            for configuration in cve["configurations"]
            for node in configuration["nodes"]
            for match in node["cpeMatch"]
        }
        assert criteria & names, cve["id"]


def test_no_cve_is_in_two_files() -> None:
    """An advisory imported from two files keeps only the last file's criteria."""
    ids = [cve["id"] for product in PRODUCTS for cve in _records(product)]
    assert len(ids) == len(set(ids)) == 57


# (product, version, CVE ids the version must match, (id, fixed version, CVSS) to check). Each
# product's file is imported alone: CVE-2021-3618 (nginx and vsftpd) lives in vsftpd.json.
VULNERABLE = [
    (
        "openssh",
        "7.4p1",  # RHEL/CentOS 7
        {
            "CVE-2023-38408",
            "CVE-2023-51385",
            "CVE-2020-15778",
            "CVE-2021-41617",
            "CVE-2025-26465",
            "CVE-2023-48795",
            "CVE-2018-15473",
        },
        ("CVE-2021-41617", "8.8", 7.0),
    ),
    (
        "openssh",
        "6.6p1",  # Ubuntu 14.04
        {
            "CVE-2023-38408",
            "CVE-2023-51385",
            "CVE-2015-5600",
            "CVE-2020-15778",
            "CVE-2016-6515",
            "CVE-2021-41617",
            "CVE-2016-0777",
            "CVE-2016-6210",
            "CVE-2023-48795",
            "CVE-2018-15473",
        },
        ("CVE-2015-5600", None, 8.5),
    ),
    (
        "openssh",
        "8.2p1",  # Ubuntu 20.04
        {
            "CVE-2023-38408",
            "CVE-2023-51385",
            "CVE-2020-15778",
            "CVE-2021-28041",
            "CVE-2021-41617",
            "CVE-2025-26465",
            "CVE-2023-48795",
        },
        ("CVE-2021-28041", "8.5", 7.1),
    ),
    (
        "openssh",
        "9.2p1",  # Debian 12
        {"CVE-2023-38408", "CVE-2023-51385", "CVE-2024-6387", "CVE-2025-26465", "CVE-2023-48795"},
        ("CVE-2024-6387", "9.8", 8.1),
    ),
    (
        "openssh",
        "9.6p1",  # Ubuntu 24.04
        {"CVE-2024-6387", "CVE-2025-26465", "CVE-2025-26466"},
        ("CVE-2025-26466", None, 5.9),
    ),
    (
        "openssh",
        "4.3p2",  # RHEL/CentOS 5
        {
            "CVE-2023-38408",
            "CVE-2023-51385",
            "CVE-2015-5600",
            "CVE-2024-6387",
            "CVE-2020-15778",
            "CVE-2016-6515",
            "CVE-2016-6210",
            "CVE-2023-48795",
            "CVE-2018-15473",
        },
        ("CVE-2024-6387", "4.4", 8.1),
    ),
    (
        "openssl",
        "1.0.1f",
        {"CVE-2014-0160", "CVE-2014-0224", "CVE-2016-0800", "CVE-2016-2107"},
        ("CVE-2014-0160", "1.0.1g", 7.5),
    ),
    ("openssl", "1.0.2k", {"CVE-2022-0778", "CVE-2023-0286"}, ("CVE-2022-0778", "1.0.2zd", 7.5)),
    (
        "openssl",
        "1.1.1f",
        {"CVE-2021-3711", "CVE-2022-0778", "CVE-2023-0286"},
        ("CVE-2021-3711", "1.1.1l", 9.8),
    ),
    (
        "openssl",
        "3.0.2",
        {"CVE-2022-3602", "CVE-2022-3786", "CVE-2023-0286"},
        ("CVE-2022-3602", "3.0.7", 7.5),
    ),
    ("openssl", "0.9.8k", {"CVE-2014-0224", "CVE-2016-2107"}, ("CVE-2014-0224", "0.9.8za", 7.4)),
    (
        "apache_httpd",
        "2.4.49",
        {
            "CVE-2021-41773",
            "CVE-2021-42013",
            "CVE-2021-44790",
            "CVE-2022-22720",
            "CVE-2023-25690",
            "CVE-2024-27316",
        },
        ("CVE-2021-41773", None, 7.5),
    ),
    (
        "apache_httpd",
        "2.4.6",  # RHEL/CentOS 7
        {
            "CVE-2021-40438",
            "CVE-2021-44790",
            "CVE-2022-22720",
            "CVE-2023-25690",
            "CVE-2017-9798",
        },
        ("CVE-2021-40438", None, 9.0),
    ),
    (
        "apache_httpd",
        "2.4.38",  # Debian 10
        {
            "CVE-2019-0211",
            "CVE-2021-40438",
            "CVE-2021-44790",
            "CVE-2022-22720",
            "CVE-2023-25690",
            "CVE-2024-27316",
        },
        ("CVE-2021-44790", "2.4.52", 9.8),
    ),
    ("apache_httpd", "2.4.58", {"CVE-2024-27316"}, ("CVE-2024-27316", "2.4.59", 7.5)),
    (
        "nginx",
        "1.18.0",  # Ubuntu 20.04
        {"CVE-2021-23017", "CVE-2022-41741", "CVE-2022-41742"},
        ("CVE-2021-23017", "1.20.1", 7.7),
    ),
    (
        "nginx",
        "1.14.0",
        {"CVE-2019-9511", "CVE-2021-23017", "CVE-2022-41741", "CVE-2022-41742"},
        ("CVE-2019-9511", "1.16.1", 7.5),
    ),
    (
        "nginx",
        "1.4.0",
        {
            "CVE-2013-2028",
            "CVE-2016-4450",
            "CVE-2017-7529",
            "CVE-2021-23017",
            "CVE-2022-41741",
            "CVE-2022-41742",
        },
        ("CVE-2013-2028", None, 7.5),
    ),
    (
        "vsftpd",
        "2.3.4",
        {"CVE-2011-2523", "CVE-2015-1419", "CVE-2021-3618"},
        ("CVE-2011-2523", None, 9.8),
    ),
    ("vsftpd", "3.0.3", {"CVE-2021-3618"}, ("CVE-2021-3618", "3.0.4", 7.4)),
    (
        "vsftpd",
        "2.3.2",
        {"CVE-2011-0762", "CVE-2015-1419", "CVE-2021-3618"},
        ("CVE-2011-0762", "2.3.3", 4.0),
    ),
    (
        "proftpd",
        "1.3.5",
        {"CVE-2015-3306", "CVE-2019-12815", "CVE-2021-46854", "CVE-2023-51713"},
        ("CVE-2015-3306", None, 10.0),
    ),
    (
        "proftpd",
        "1.3.3a",
        {"CVE-2010-4221", "CVE-2019-12815", "CVE-2021-46854", "CVE-2023-51713"},
        ("CVE-2010-4221", None, 10.0),
    ),
    (
        "proftpd",
        "1.3.7",
        {"CVE-2020-9273", "CVE-2021-46854", "CVE-2023-51713"},
        ("CVE-2021-46854", "1.3.7c", 7.5),
    ),
    ("proftpd", "1.3.8", {"CVE-2023-51713"}, ("CVE-2023-51713", "1.3.8a", 7.5)),
    (
        "exim",
        "4.89",  # Debian 9
        {
            "CVE-2017-16943",
            "CVE-2018-6789",
            "CVE-2019-10149",
            "CVE-2019-15846",
            "CVE-2020-28017",
        },
        ("CVE-2018-6789", "4.90.1", 9.8),
    ),
    (
        "exim",
        "4.92",  # Debian 10
        {"CVE-2019-15846", "CVE-2019-16928", "CVE-2020-28017"},
        ("CVE-2019-15846", "4.92.2", 9.8),
    ),
    (
        "exim",
        "4.69",
        {
            "CVE-2010-4344",
            "CVE-2010-4345",
            "CVE-2018-6789",
            "CVE-2019-15846",
            "CVE-2020-28017",
        },
        ("CVE-2010-4344", "4.70", 9.8),
    ),
    ("exim", "4.92.2", {"CVE-2019-16928", "CVE-2020-28017"}, ("CVE-2019-16928", None, 9.8)),
    ("exim", "4.93", {"CVE-2020-28017"}, ("CVE-2020-28017", "4.94.1", 9.8)),
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
    ("openssh", "9.9p2"),
    ("openssh", "10.0p2"),
    ("openssl", "1.0.1u"),
    ("openssl", "1.1.1w"),
    ("openssl", "3.0.13"),
    ("openssl", "3.5.0"),
    ("apache_httpd", "2.4.59"),
    ("apache_httpd", "2.4.65"),
    ("nginx", "1.22.1"),
    ("nginx", "1.26.2"),
    ("vsftpd", "3.0.5"),
    ("proftpd", "1.3.8b"),
    ("proftpd", "1.3.9"),
    ("exim", "4.94.2"),
    ("exim", "4.98"),
]


@pytest.mark.parametrize(("product", "version"), CLEAN)
def test_a_fixed_version_matches_nothing(tmp_path: Path, product: str, version: str) -> None:
    assert _lookup(_database(tmp_path, product), product, version) == {}


def test_regresshion_follows_nvd_exact_criteria(tmp_path: Path) -> None:
    """NVD lists 4.4 and 8.5p1 themselves as vulnerable, 4.4p1 to 8.5 as fixed."""
    path = _database(tmp_path, "openssh")
    for version, affected in [("4.4", True), ("4.4p1", False), ("8.5", False), ("8.5p1", True)]:
        assert ("CVE-2024-6387" in _lookup(path, "openssh", version)) is affected, version


def test_cisa_kev_flags_the_catalogued_cves(tmp_path: Path) -> None:
    httpd = _lookup(_database(tmp_path, "apache_httpd"), "apache_httpd", "2.4.49")
    assert {c for c, m in httpd.items() if m.kev} == {"CVE-2021-41773", "CVE-2021-42013"}
    assert httpd["CVE-2021-41773"].kev_ransomware is True
    # KEV comes first in the ranking, whatever the CVSS score (CVE-2021-44790 is 9.8).
    assert list(httpd)[:2] == ["CVE-2021-42013", "CVE-2021-41773"]
    exim = _lookup(_database(tmp_path, "exim"), "exim", "4.89")
    assert {c for c, m in exim.items() if m.kev} == {"CVE-2018-6789", "CVE-2019-10149"}
    assert exim["CVE-2018-6789"].kev_ransomware is True
    assert exim["CVE-2019-10149"].kev_ransomware is False
    heartbleed = _lookup(_database(tmp_path, "openssl"), "openssl", "1.0.1f")["CVE-2014-0160"]
    assert heartbleed.kev and heartbleed.kev_ransomware is False
    # NVD's cisaExploitAdd alone flags it; the catalog's ransomware field is not known.
    mod_copy = _lookup(_database(tmp_path, "proftpd"), "proftpd", "1.3.5")["CVE-2015-3306"]
    assert mod_copy.kev and mod_copy.kev_ransomware is None
    for product, version in [("openssh", "7.4p1"), ("nginx", "1.4.0"), ("vsftpd", "2.3.4")]:
        assert not any(
            m.kev for m in _lookup(_database(tmp_path, product), product, version).values()
        )


def test_the_kev_file_holds_the_bundled_records_cisa_lists() -> None:
    catalog = json.loads(KEV_FILE.read_text(encoding="utf-8"))
    entries = {e["cveID"]: e for e in catalog["vulnerabilities"]}
    assert catalog["count"] == len(entries) == 10
    listed = {
        cve["id"]: cve
        for product in PRODUCTS
        for cve in _records(product)
        if "cisaExploitAdd" in cve
    }
    assert set(entries) == set(listed) - KEV_FROM_NVD_ONLY
    for cve, entry in entries.items():
        assert entry["dateAdded"] == listed[cve]["cisaExploitAdd"]
        assert entry["dueDate"] == listed[cve]["cisaActionDue"]
        assert entry["vulnerabilityName"] == listed[cve]["cisaVulnerabilityName"]
        assert entry["knownRansomwareCampaignUse"] in {"Known", "Unknown"}


def test_alpaca_lives_in_one_file_with_both_products(tmp_path: Path) -> None:
    """CVE-2021-3618 names nginx and vsftpd; vsftpd.json carries both nodes."""
    path = tmp_path / "vsftpd.sqlite"
    import_files(path, [NVD_DIR / "vsftpd.json"])
    assert set(_lookup(path, "nginx", "1.20.0")) == {"CVE-2021-3618"}
    assert _lookup(path, "nginx", "1.21.0") == {}
