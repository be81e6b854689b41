"""Reports are written atomically: a reader sees the old file or the whole new one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scanner.errors import ConfigError
from scanner.report.output import write_atomically


def test_replaces_the_file_whole_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old report\n", encoding="utf-8")
    inode = target.stat().st_ino
    write_atomically(target, "a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"  # no newline translation
    assert target.stat().st_ino != inode  # renamed over, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # findings are for the owner


def test_a_relative_name_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomically(Path("report.md"), "# report\n")
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "# report\n"


def test_a_directory_in_the_way_is_an_error_and_no_temp_file_stays(tmp_path: Path) -> None:
    (tmp_path / "report.html").mkdir()
    with pytest.raises(ConfigError, match=r"report\.html: cannot write the report"):
        write_atomically(tmp_path / "report.html", "<p>x</p>")
    assert sorted(os.listdir(tmp_path)) == ["report.html"]
