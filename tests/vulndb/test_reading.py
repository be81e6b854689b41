"""Big feed files are read by a helper process: the database is the same as when they are read
in process, and its errors (a broken record, a helper that dies) are the same clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scanner.vulndb import reading
from scanner.vulndb.db import VulnDb, VulnDbError, import_files
from scanner.vulndb.versions import Ecosystem

DATA = Path(__file__).parent / "data"
FILES = [
    DATA / "nvd-2.0-daemons.json",
    DATA / "nvd-sample.json",
    DATA / "osv-dsa-5724-1.json",
    DATA / "osv-ghsa-terrapin.json",
    DATA / "kev-daemons.json",
    DATA / "epss-daemons.csv",
]
TABLES = ("advisories", "aliases", "affected", "osv_spans", "cpe_matches", "cpe_facts", "kev")


def _contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608
            for table in (*TABLES, "epss")
        }


def test_the_helper_builds_the_same_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process = tmp_path / "in-process.sqlite"
    import_files(in_process, FILES)
    helped = tmp_path / "helped.sqlite"
    monkeypatch.setattr(reading, "HELPER_FROM_BYTES", 0)  # every file through the helper
    report = import_files(helped, FILES)
    assert [kind for _, kind, _ in report.files] == ["nvd", "nvd", "osv", "osv", "kev", "epss"]
    assert _contents(helped) == _contents(in_process)
    with VulnDb(helped) as db:
        assert {m.cves[0] for m in db.lookup("openssh", "7.0")} == {
            "CVE-2016-0777",
            "CVE-2023-38408",
        }
        bookworm = db.lookup("openssh", "1:9.2p1-2", ecosystem=Ecosystem.DEBIAN, release="12")
        assert [m.fixed_version for m in bookworm] == ["1:9.2p1-2+deb12u3"]


def test_a_broken_record_read_by_the_helper_is_the_same_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (DATA / "nvd-2.0-daemons.json").read_text()
    cut = tmp_path / "nvdcve-2.0-2023.json"
    cut.write_text(text[: text.index('"CVE-2021-23017"') + 40])
    with pytest.raises(VulnDbError) as in_process:
        import_files(tmp_path / "a.sqlite", [cut])
    monkeypatch.setattr(reading, "HELPER_FROM_BYTES", 0)
    with pytest.raises(VulnDbError) as helped:
        import_files(tmp_path / "b.sqlite", [cut])
    assert str(helped.value) == str(in_process.value) == f"{cut}: truncated in record 2"
    assert not (tmp_path / "b.sqlite").exists()


def test_a_helper_that_dies_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "HELPER_FROM_BYTES", 0)
    monkeypatch.setattr(reading.sys, "executable", "/bin/false")  # exits at once, says nothing
    with pytest.raises(VulnDbError, match=r"the process reading it stopped \(exit code 1\)"):
        import_files(tmp_path / "db.sqlite", [DATA / "nvd-sample.json"])


def test_small_files_and_folders_are_read_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_helper(*_: object, **__: object) -> None:
        raise AssertionError("a helper process was started")

    monkeypatch.setattr(reading.subprocess, "Popen", no_helper)
    kind, batches = reading.read_batches(DATA / "nvd-sample.json", 2)
    assert kind == "nvd" and [len(b.ids) for b in batches] == [2, 1]
    folder = tmp_path / "osv"
    folder.mkdir()
    (folder / "a.json").write_text((DATA / "osv-dsa-5724-1.json").read_text())
    monkeypatch.setattr(reading, "HELPER_FROM_BYTES", 0)  # a folder is never a big file
    kind, batches = reading.read_batches(folder, 10)
    assert kind == "osv-folder" and [b.ids for b in batches] == [["DSA-5724-1"]]
