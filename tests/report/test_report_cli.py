"""`posture report` over a real findings database built through the Store API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_checks import assert_self_contained_html, assert_valid_sarif
from report_data import HOSTILE, HUGE

from scanner.cli import cli
from scanner.model import Confidence, Finding, Host, HostState, ScanStatus, Service, Severity
from scanner.store.db import Store

CHECKOUT = Path(__file__).resolve().parents[2]
PACK = """\
pack: reporttest
version: "1.0.0"
rules:
  - id: reporttest.redis-open
    title: Redis answers without authentication
    severity: high
    when:
      redis.unauthenticated: true
    remediation: Set requirepass and bind Redis to a private interface.
    references:
      - https://redis.io/docs/latest/operate/oss_and_stack/management/security/
    controls:
      - CIS-8:4.8
"""

REDIS = Finding(
    rule_id="reporttest.redis-open",
    severity=Severity.HIGH,
    confidence=Confidence.CERTAIN,
    title="Redis answers without authentication",
    host="127.0.31.2",
    port=6379,
    proto="tcp",
    evidence={"redis.version": "7.0.15"},
)
FTP = Finding(
    rule_id="gone.ftp-anonymous",
    severity=Severity.MEDIUM,
    confidence=Confidence.FIRM,
    title="FTP allows anonymous login",
    host="127.0.31.3",
    port=21,
    proto="tcp",
)
BANNER = Finding(
    rule_id="gone.banner",
    severity=Severity.LOW,
    confidence=Confidence.TENTATIVE,
    title="Service banner discloses its version",
    host="127.0.31.4",
    port=8080,
    proto="tcp",
    hostname=HOSTILE,
    evidence={"banner": HOSTILE + HUGE},
)


class Clock:
    """Store time that moves a minute per reading, so scan 2 starts after scan 1's findings."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _scan(store: Store, hosts: list[Host], findings: list[Finding]) -> int:
    scan_id = store.create_scan(
        targets=["127.0.31.0/29"],
        scope=["127.0.31.0/24"],
        excludes=[],
        packs=["reporttest@1.0.0"],
        rules=[REDIS.rule_id, FTP.rule_id, BANNER.rule_id],
        options={"ports": "21,6379,8080"},
        hosts_total=len(hosts),
    )
    store.record_chunk(scan_id, hosts, findings, {"tcp": "21,6379,8080"})
    store.finish_scan(scan_id, ScanStatus.COMPLETED)
    return scan_id


def _up(address: str, port: int) -> Host:
    return Host(address, HostState.UP, services=(Service(port=port, proto="tcp", state="open"),))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no posture.toml of the checkout's
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    return tmp_path


@pytest.fixture
def db(workdir: Path) -> Iterator[Path]:
    """Scan 1 sees Redis and FTP; scan 2 sees Redis again, FTP gone (fixed), a new hostile
    banner, and a host that timed out."""
    path = workdir / "posture.db"
    with Store(path, clock=Clock()) as store:
        _scan(store, [_up("127.0.31.2", 6379), _up("127.0.31.3", 21)], [REDIS, FTP])
        _scan(
            store,
            [
                _up("127.0.31.2", 6379),
                Host("127.0.31.3", HostState.UP),
                _up("127.0.31.4", 8080),
                Host("127.0.31.5", HostState.TIMEOUT, reason="host timeout 30s"),
            ],
            [REDIS, BANNER],
        )
    yield path


def run(*args: str) -> Result:
    return CliRunner().invoke(
        cli, ["report", "--rules", "pack.yaml", *args], catch_exceptions=False
    )


def test_json_of_the_latest_scan(db: Path) -> None:
    result = run("--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["scan"]["id"] == 2
    findings = {f["rule_id"]: f for f in document["findings"]}
    assert set(findings) == {"reporttest.redis-open", "gone.banner"}  # FTP was not in scan 2
    assert findings["reporttest.redis-open"]["new"] is False
    assert findings["gone.banner"]["new"] is True
    redis_rule = document["rules"]["reporttest.redis-open"]
    assert redis_rule["remediation"] == "Set requirepass and bind Redis to a private interface."
    assert document["rules"]["gone.banner"]["known"] is False
    assert document["hosts"]["not_covered"] == [
        {
            "address": "127.0.31.5",
            "hostname": None,
            "state": "timeout",
            "reason": "host timeout 30s",
        }
    ]


def test_an_earlier_scan(db: Path) -> None:
    result = run("--format", "json", "--scan", "1")
    document = json.loads(result.stdout)
    assert document["scan"]["id"] == 1
    findings = {f["rule_id"]: f for f in document["findings"]}
    assert set(findings) == {"reporttest.redis-open", "gone.ftp-anonymous"}
    assert all(f["new"] for f in findings.values())
    # the FTP finding was fixed by scan 2: its current status is reported
    assert findings["gone.ftp-anonymous"]["status"] == "fixed"


def test_status_filter(db: Path) -> None:
    result = run("--format", "json", "--scan", "1", "--status", "open")
    assert [f["rule_id"] for f in json.loads(result.stdout)["findings"]] == [
        "reporttest.redis-open"
    ]


def test_sarif_file_written_atomically(db: Path, workdir: Path) -> None:
    (workdir / "out").mkdir()
    result = run("-o", "out/report.sarif")
    assert result.exit_code == 0, result.output
    assert "wrote the sarif report of scan 2 (2 findings) to out/report.sarif" in result.stderr
    assert result.stdout == ""
    assert [p.name for p in (workdir / "out").iterdir()] == ["report.sarif"]  # no temp file left
    document = assert_valid_sarif((workdir / "out/report.sarif").read_text(encoding="utf-8"))
    states = {r["ruleId"]: r["baselineState"] for r in document["runs"][0]["results"]}
    assert states == {"reporttest.redis-open": "unchanged", "gone.banner": "new"}


def test_html_on_stdout_is_safe(db: Path) -> None:
    result = run()
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "&lt;script&gt;" in result.stdout
    assert_self_contained_html(result.stdout)


def test_every_format_from_the_store(db: Path) -> None:
    for name in ("html", "md", "json", "sarif", "csv"):
        result = run("--format", name)
        assert result.exit_code == 0, (name, result.output)
        assert "127.0.31.2" in result.stdout


def posture(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point, for exit codes and the one-line error."""
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},  # this checkout's scanner package
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_database_is_a_usage_error(workdir: Path) -> None:
    done = posture("report", "--db", "nothing.db", cwd=workdir)
    assert done.returncode == 2
    assert "no database at nothing.db; run `posture scan` first" in done.stderr
    assert not (workdir / "nothing.db").exists()


def test_database_without_scans(workdir: Path) -> None:
    Store(workdir / "empty.db").close()
    done = posture("report", "--db", "empty.db", cwd=workdir)
    assert done.returncode == 2
    assert "empty.db has no scans yet; run `posture scan TARGETS` first" in done.stderr


def test_unknown_scan_id(db: Path, workdir: Path) -> None:
    done = posture("report", "--scan", "99", cwd=workdir)
    assert done.returncode == 2
    assert "no scan 99 in posture.db" in done.stderr


def test_unwritable_output(db: Path, workdir: Path) -> None:
    done = posture("report", "-o", "missing-dir/report.html", cwd=workdir)
    assert done.returncode == 2
    assert "missing-dir/report.html: cannot write the report there" in done.stderr
