"""The feed readers: what each real format turns into, and a clear VulnDbError naming the file
and the record (or line) for every kind of hostile or broken input."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from scanner.vulndb import importers
from scanner.vulndb.importers import (
    Advisory,
    AffectedRange,
    CpeCriterion,
    EpssScore,
    KevEntry,
    VulnDbError,
    cpe_criterion,
    cvss3_base_score,
    detect_format,
    nvd_advisory,
    read,
)

DATA = Path(__file__).parent / "data"
NVD = DATA / "nvd-2.0-daemons.json"
TERRAPIN = DATA / "osv-ghsa-terrapin.json"
UBUNTU = DATA / "osv-ubuntu-cve-2024-6387.json"
DEBIAN = DATA / "osv-debian-cve-2023-38408.json"
KEV, EPSS = DATA / "kev-daemons.json", DATA / "epss-daemons.csv"


def records(path: Path) -> list[importers.Record]:
    return list(read(path)[1])


def advisories(path: Path) -> dict[str, Advisory]:
    found = {}
    for record in records(path):
        assert isinstance(record, Advisory)
        found[record.id] = record
    return found


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("nvd-2.0-daemons.json", "nvd"),
        ("nvd-sample.json", "nvd"),
        ("osv-ghsa-terrapin.json", "osv"),
        ("osv-dsa-5724-1.json", "osv"),
        ("kev-daemons.json", "kev"),
        ("epss-daemons.csv", "epss"),
    ],
)
def test_format_is_told_from_content_also_gzipped(name: str, kind: str, tmp_path: Path) -> None:
    assert detect_format(DATA / name) == kind
    packed = tmp_path / (name + ".gz")
    packed.write_bytes(gzip.compress((DATA / name).read_bytes()))
    assert detect_format(packed) == kind
    assert records(packed) == records(DATA / name)


def test_ghsa_record_with_several_ecosystems() -> None:
    [ghsa] = advisories(TERRAPIN).values()
    assert ghsa.id == "GHSA-45x7-px36-x8w8" and ghsa.aliases == ("CVE-2023-48795",)
    assert ghsa.source == "osv" and ghsa.severity == "MODERATE"
    assert ghsa.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N"
    assert ghsa.cvss_score == 5.9  # computed from the vector: OSV carries no number
    assert ghsa.summary is not None and ghsa.summary.startswith("Prefix Truncation")
    assert "https://terrapin-attack.com" in ghsa.references
    assert [(r.ecosystem, r.package, r.events) for r in ghsa.affected] == [
        ("SEMVER", "golang.org/x/crypto", (("introduced", "0"), ("fixed", "0.17.0"))),
        ("PyPI", "paramiko", (("introduced", "0"), ("fixed", "3.4.0"))),
        ("PyPI", "asyncssh", (("introduced", "0"), ("fixed", "2.14.2"))),
        ("SEMVER", "russh", (("introduced", "0"), ("fixed", "0.40.2"))),
    ]
    assert all(r.release == "" for r in ghsa.affected)


def test_distro_records_keep_release_upstream_cve_and_listed_versions() -> None:
    [ubuntu] = advisories(UBUNTU).values()
    assert ubuntu.aliases == ("CVE-2024-6387",)  # from "upstream", as "aliases" is empty
    assert ubuntu.cvss_score == 8.1 and ubuntu.severity == "HIGH"
    ranges, listed = ubuntu.affected
    assert ranges == AffectedRange(
        "Ubuntu", "24.04", "openssh", (("introduced", "0"), ("fixed", "1:9.6p1-3ubuntu13.3")), ()
    )
    assert listed.events == () and "1:9.6p1-3ubuntu13.2" in listed.versions
    [debian] = advisories(DEBIAN).values()
    assert [(r.ecosystem, r.release) for r in debian.affected] == [
        ("Debian", "11"),
        ("Debian", "12"),
    ]
    assert debian.cvss_score is None and debian.summary is not None


@pytest.mark.parametrize(
    ("ecosystem", "release"),
    [
        ("Debian:12", "12"),
        ("Ubuntu:22.04:LTS", "22.04"),
        ("Ubuntu:Pro:18.04:LTS", "pro:18.04"),
        ("Alpine:v3.20", "3.20"),
        ("Red Hat:rhel_aus:8.4::appstream", "red hat:rhel_aus:8.4:appstream"),
        ("Red Hat:enterprise_linux:9::baseos", "red hat:enterprise_linux:9:baseos"),
        ("Rocky Linux:9", "rocky linux:9"),
        ("AlmaLinux:8", "almalinux:8"),
        ("npm", ""),
        ("OSS-Fuzz", ""),
        ("Maven:central", ""),
    ],
)
def test_release_of_an_osv_ecosystem(ecosystem: str, release: str) -> None:
    assert importers._release(ecosystem) == release


def test_nvd_records_cvss_and_cpe_criteria() -> None:
    found = advisories(NVD)
    ssh = found["CVE-2023-38408"]
    assert ssh.source == "nvd" and ssh.cvss_score == 9.8 and ssh.severity == "CRITICAL"
    assert ssh.summary is not None and ssh.summary.startswith("The PKCS#11 feature")
    assert ssh.published == "2023-07-20T03:15:10.170"
    upto, exact, patched, _again, platform = ssh.cpes
    assert upto == CpeCriterion(
        "openbsd", "openssh", None, None, None, None, "9.3", True, any_update=True
    )
    assert (exact.version, patched.version) == ("9.3", "9.3p1")  # NVD's update folded in
    assert platform.vendor == "debian" and platform.vulnerable is False
    nginx = found["CVE-2021-23017"]
    assert nginx.cvss_score == 7.7  # NVD's Primary score, not the CNA's 9.4
    assert len(nginx.cpes) == 1  # the negated node is not a criterion
    assert nginx.cpes[0].start_including == "0.6.18" and nginx.cpes[0].end_excluding == "1.20.1"
    old = found["CVE-2016-0777"]
    assert (old.cvss_score, old.severity) == (4.3, "MEDIUM")  # CVSS v2 when it is all there is
    assert old.cpes[0].end_including == "7.1"
    assert found["CVE-2013-2028"].cpes[0].start_excluding == "1.3.8"


def test_nvd_records_carry_their_kev_fields(tmp_path: Path) -> None:
    document = json.loads(NVD.read_text())
    cve = document["vulnerabilities"][0]["cve"]
    cve["cisaExploitAdd"] = "2023-08-01"
    cve["cisaActionDue"] = "2023-08-22"
    cve["cisaRequiredAction"] = "Apply updates per vendor instructions."
    cve["cisaVulnerabilityName"] = "OpenSSH ssh-agent Remote Code Execution"
    document["vulnerabilities"][1]["cve"]["cisaExploitAdd"] = ""  # present, but empty
    path = tmp_path / "nvd-kev.json"
    path.write_text(json.dumps(document))
    found = advisories(path)
    assert found["CVE-2023-38408"].kev == KevEntry(
        "CVE-2023-38408",
        "2023-08-01",
        "2023-08-22",
        None,  # NVD does not copy the ransomware flag: unknown
        None,
        None,
        "OpenSSH ssh-agent Remote Code Execution",
    )
    assert found["CVE-2016-0777"].kev is None
    assert all(a.kev is None for a in advisories(NVD).values())


def test_kev_and_epss_entries() -> None:
    iis, nginx = records(KEV)
    assert iis == KevEntry(
        "CVE-2010-3972",
        "2026-01-15",
        "2026-02-05",
        True,
        "Microsoft",
        "Internet Information Services (IIS)",
        "Microsoft IIS FTP Service Heap-Based Buffer Overflow (test fixture entry)",
    )
    assert isinstance(nginx, KevEntry) and nginx.ransomware is False
    scores = records(EPSS)
    assert scores[0] == EpssScore("CVE-2023-38408", 0.62, 0.983, "2026-11-20")
    assert len(scores) == 6


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:L/I:L/A:H", 8.1),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:L/A:H", 7.7),
        ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", None),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", None),  # CVSS v2
        ("CVSS:3.1/AV:N", None),
    ],
)
def test_cvss3_base_score(vector: str, score: float | None) -> None:
    assert cvss3_base_score(vector) == score


def test_cpe_criteria_with_escapes_and_bad_names() -> None:
    cisco = cpe_criterion({"criteria": r"cpe:2.3:o:cisco:ios:15.1\(4\)m:*:*:*:*:*:*:*"})
    assert (cisco.vendor, cisco.product, cisco.version) == ("cisco", "ios", "15.1(4)m")
    assert cisco.vulnerable is False  # absent means not said
    colon = cpe_criterion({"criteria": r"cpe:2.3:a:vendor:pro\:duct:1.0:*:*:*:*:*:*:*"})
    assert colon.product == "pro:duct"
    with pytest.raises(VulnDbError, match="bad CPE"):
        cpe_criterion({"criteria": "cpe:/a:openbsd:openssh:7.4"})
    with pytest.raises(VulnDbError, match="versionEndExcluding is not a string"):
        cpe_criterion({"criteria": "cpe:2.3:a:a:b:*:*:*:*:*:*:*:*", "versionEndExcluding": 9})


def test_osv_zip_and_folder(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("GHSA-45x7-px36-x8w8.json", TERRAPIN.read_text())
        out.writestr("UBUNTU-CVE-2024-6387.json", UBUNTU.read_text())
        out.writestr("README.txt", "not a record")
    assert detect_format(archive) == "osv-zip"
    assert list(advisories(archive)) == ["GHSA-45x7-px36-x8w8", "UBUNTU-CVE-2024-6387"]
    folder = tmp_path / "osv"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.json").write_text(DEBIAN.read_text())
    (folder / "a.json").write_text(UBUNTU.read_text())
    (folder / "link.json").symlink_to(TERRAPIN)
    assert detect_format(folder) == "osv-folder"
    assert list(advisories(folder)) == ["UBUNTU-CVE-2024-6387", "DEBIAN-CVE-2023-38408"]


def test_zip_bomb_guards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("big.json", b" " * (importers.MAX_RECORD + 1))
    assert big.stat().st_size < 100_000  # a small file that expands past the record limit
    with pytest.raises(VulnDbError, match=r"big\.zip:big\.json: a record of 10485761 bytes"):
        records(big)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as out:
        for number in range(5):
            out.writestr(f"{number}.json", "{}")
    monkeypatch.setattr(importers, "MAX_ENTRIES", 4)
    with pytest.raises(VulnDbError, match="5 entries, more than 4"):
        records(many)
    monkeypatch.setattr(importers, "MAX_ENTRIES", 100)
    monkeypatch.setattr(importers, "MAX_UNCOMPRESSED", 9)
    with pytest.raises(VulnDbError, match="expands to more than 9 bytes"):
        records(many)


def test_gzip_bomb_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_UNCOMPRESSED", 3 << 20)
    bomb = tmp_path / "nvd.json.gz"
    head = b'{"format": "NVD_CVE", "vulnerabilities": [' + b" " * (8 << 20)
    bomb.write_bytes(gzip.compress(head))
    with pytest.raises(VulnDbError, match=f"more than {3 << 20} bytes"):
        records(bomb)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


NVD_HEAD = '{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": ['


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nvd.json", NVD_HEAD + '{"cve": {"id": "CVE-1"}}, {"cve": {"id": "CVE-2"', "record 1"),
        ("nvd.json", NVD_HEAD + '{"cve": {"id": "CVE-1"}}, {"cve": 7}]}', "record 1: not an NVD"),
        ("nvd.json", NVD_HEAD + '{"cve": {"id": "CVE-1\\u001b[2J"}}]}', "is not an advisory id"),
        (
            "nvd.json",
            NVD_HEAD + '{"cve": {"id": "CVE-9", "configurations": [{"nodes": [{"cpeMatch":'
            ' [{"criteria": "cpe:2.3:a"}]}]}]}}]}',
            r"record 0: CVE-9: bad CPE 'cpe:2\.3:a'",
        ),
        ("nvd.json", NVD_HEAD + "[" * 100_000, "record 0"),
        ("nvd.json", '{"format": "NVD_CVE", "vulnerabilities": {"cve": 1}}', "is not an array"),
        ("osv.json", '{"id": "GHSA-x", "affected": [{"package": 7}]}', r"affected\[0\] has no"),
        (
            "osv.json",
            '{"id": "GHSA-x", "affected": [{"package": {"name": "p", "ecosystem": "PyPI"},'
            ' "ranges": [{"type": "ECOSYSTEM", "events": [{"broken": "1"}]}]}]}',
            r"GHSA-x affected\[0\]: unknown OSV range event 'broken'",
        ),
        (
            "osv.json",
            '{"id": "GHSA-y", "affected": [{"package": {"name": "p", "ecosystem": "npm"},'
            ' "ranges": [{"type": "SEMVER", "events": [{"fixed": "1\\u001b[31m"}]}]}]}',
            r"GHSA-y affected\[0\]: OSV range event fixed",
        ),
        ("osv.json", '[{"id": "A-1"}, {"summary": "no id"}]', "record 1: not an OSV record"),
        ("osv.json", '{"id": "A-1", ', "not JSON"),
        ("osv.json", b'{"id": "\xff\xfe"}', "not JSON"),
        ("kev.json", '{"catalogVersion": "1", "vulnerabilities": [{"cveID": 5}]}', "record 0"),
        ("epss.csv", "cve,epss,percentile\nCVE-2024-1,0.5\n", "line 2: not cve,epss"),
        ("epss.csv", "cve,epss,percentile\nCVE-2024-1,1.5,0.2\n", "line 2: a probability"),
        ("epss.csv", "#model_version:v1\ncve,epss\n", "line 2: expected the header"),
        ("epss.csv", "cve,epss,percentile\nGHSA-1,0.5,0.5\n", "line 2: 'GHSA-1' is not a CVE"),
        ("epss.csv", "cve,epss,percentile\n" + "CVE-1," + "9" * 10_000, "line 2: longer than"),
    ],
)
def test_hostile_input_names_file_and_record(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(VulnDbError, match=message) as caught:
        records(path)
    assert str(caught.value).startswith(str(path))


def test_broken_compression_is_a_clear_error(tmp_path: Path) -> None:
    whole = gzip.compress(NVD.read_bytes())
    cut = _write(tmp_path, "nvd.json.gz", whole[: len(whole) // 2])
    with pytest.raises(VulnDbError, match=r"nvd\.json\.gz: the compressed file is truncated"):
        records(cut)
    junk = _write(tmp_path, "epss.csv.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    with pytest.raises(VulnDbError, match=r"epss\.csv\.gz"):
        records(junk)
    with pytest.raises(VulnDbError, match="not an OSV, NVD"):
        detect_format(_write(tmp_path, "notes.txt", "hello"))


def test_oversized_osv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_OSV_FILE", 1000)
    path = _write(tmp_path, "big.json", json.dumps({"id": "A-1", "details": "x" * 2000}))
    with pytest.raises(VulnDbError, match=r"big\.json: larger than 1000 bytes"):
        records(path)


def test_overlong_fields_are_clipped() -> None:
    advisory = importers.osv_advisory(
        {"id": "A-1", "summary": "s" * 50_000, "aliases": ["CVE-1"] * 20_000 + ["C" * 300]}
    )
    assert advisory.summary is not None and len(advisory.summary) < importers.SUMMARY_CHARS + 30
    assert advisory.aliases == ("CVE-1",)  # repeated once, overlong dropped
    with pytest.raises(VulnDbError, match="is not an advisory id"):
        importers.osv_advisory({"id": "A" * 500})


def _openssh_record(*matches: dict[str, object]) -> dict[str, object]:
    return {
        "cve": {
            "id": "CVE-2000-0001",
            "descriptions": [{"lang": "en", "value": "x"}],
            "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": list(matches)}]}],
        }
    }


def _ends(record: dict[str, object]) -> list[str | None]:
    return [c.end_including for c in nvd_advisory(record).cpes]


def test_openssh_inclusive_ends_cover_portable_updates_unless_the_record_lists_them() -> None:
    """NVD files OpenSSH's portable suffix in the CPE update field: "up to 7.7" (any update)
    covers 7.7p1 (CVE-2018-15473 was fixed in 7.8); "up to 7.1" next to an exact 7.1p1 does
    not cover 7.1p2 (CVE-2016-0777's fix); "up to 7.2" with update p2 ends at 7.2p2."""
    any_update = "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"
    assert _ends(_openssh_record({"criteria": any_update, "versionEndIncluding": "7.7"})) == [
        "7.7p99"
    ]
    listed = _openssh_record(
        {"criteria": any_update, "versionEndIncluding": "7.1"},
        {"criteria": "cpe:2.3:a:openbsd:openssh:7.1:p1:*:*:*:*:*:*"},
    )
    assert _ends(listed) == ["7.1", None]
    p2 = "cpe:2.3:a:openbsd:openssh:*:p2:*:*:*:*:*:*"
    assert _ends(_openssh_record({"criteria": p2, "versionEndIncluding": "7.2"})) == ["7.2p2"]
    openbsd_only = "cpe:2.3:a:openbsd:openssh:*:-:*:*:*:*:*:*"
    assert _ends(_openssh_record({"criteria": openbsd_only, "versionEndIncluding": "7.7"})) == [
        "7.7"
    ]
    other = "cpe:2.3:a:nginx:nginx:*:*:*:*:*:*:*:*"
    assert _ends(_openssh_record({"criteria": other, "versionEndIncluding": "1.20"})) == ["1.20"]


def test_nvd_own_metric_wins_over_a_cna_one_when_none_is_primary() -> None:
    """NVD files its score as Secondary when a CNA scored first (CVE-2020-1472: Microsoft's
    local 5.5 beside NVD's 10.0): NVD's own is the one kept."""

    def metric(source: str, kind: str, vector: str, score: float) -> dict[str, object]:
        return {
            "source": source,
            "type": kind,
            "cvssData": {"version": "3.1", "vectorString": vector, "baseScore": score},
        }

    cna = metric(
        "secure@microsoft.com", "Secondary", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5
    )
    nvd = metric("nvd@nist.gov", "Secondary", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0)
    assert importers._cvss({"cvssMetricV31": [cna, nvd]})[0] == 10.0
    primary = metric(
        "cna@example.org", "Primary", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1
    )
    assert importers._cvss({"cvssMetricV31": [cna, nvd, primary]})[0] == 8.1
    assert importers._cvss({"cvssMetricV31": [cna]})[0] == 5.5
