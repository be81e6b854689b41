"""`posture findings`, `posture findings show|set-status` and `posture scans` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from scanner.cli import cli
from scanner.model import (
    Confidence,
    Finding,
    FindingStatus,
    Host,
    HostState,
    ScanStatus,
    Service,
    Severity,
)
from scanner.store import Store

REPO = Path(__file__).resolve().parents[2]
HOSTILE_TITLE = "[red]owned[/red] :skull: \x1b[2J"
HOSTILE_HOSTNAME = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
HOSTILE_BANNER = "220 [bold]hi[/bold] \x1b]8;;http://evil.example\x07x\x1b]8;;\x07"

FINDING_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": [
            "fingerprint",
            "rule_id",
            "severity",
            "host",
            "port",
            "proto",
            "title",
            "status",
            "confidence",
            "evidence",
            "first_seen",
            "last_seen",
            "hostname",
            "last_scan_id",
            "cves",
            "controls",
            "status_note",
            "accept_expires",
            "fixed_at",
        ],
        "properties": {
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "rule_id": {"type": "string"},
            "severity": {"enum": ["critical", "high", "medium", "low", "info"]},
            "host": {"type": "string"},
            "port": {"type": ["integer", "null"]},
            "proto": {"type": ["string", "null"]},
            "title": {"type": "string"},
            "status": {"enum": ["open", "fixed", "reopened", "risk_accepted", "false_positive"]},
            "confidence": {"enum": ["certain", "firm", "tentative"]},
            "evidence": {"type": "object"},
            "first_seen": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
            "last_seen": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
            "last_scan_id": {"type": "integer"},
            "cves": {"type": "array", "items": {"type": "string"}},
            "controls": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _finding(
    rule: str, host: str, port: int | None, severity: Severity, **extra: object
) -> Finding:
    return Finding(
        rule_id=rule,
        severity=severity,
        confidence=Confidence.FIRM,
        title=str(extra.pop("title", f"{rule} on {host}")),
        host=host,
        port=port,
        proto="tcp" if port is not None else None,
        **extra,  # type: ignore[arg-type]
    )


FTP = _finding(
    "ftp.anonymous",
    "127.0.0.5",
    21,
    Severity.HIGH,
    title=HOSTILE_TITLE,
    hostname=HOSTILE_HOSTNAME,
    evidence={"banner": HOSTILE_BANNER},
    cves=("CVE-2011-2523",),
    controls=("CIS-8:4.8",),
)
REDIS = _finding("redis.noauth", "127.0.0.6", 6379, Severity.CRITICAL)
TELNET = _finding("telnet.open", "127.0.0.6", 23, Severity.MEDIUM)
OLD = _finding("http.old", "127.0.0.5", 80, Severity.LOW)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Scan 1 finds four findings; scan 2 (complete) no longer sees http.old: fixed."""
    path = tmp_path / "posture.db"
    with Store(path, clock=lambda: datetime(2026, 1, 10, 12, 0, tzinfo=UTC)) as store:
        rules = ["ftp.anonymous", "redis.noauth", "telnet.open", "http.old"]
        hosts = [
            Host("127.0.0.5", HostState.UP, services=(Service(21, "tcp", "open"),)),
            Host("127.0.0.6", HostState.UP),
        ]
        for found in ([FTP, REDIS, TELNET, OLD], [FTP, REDIS, TELNET]):
            scan = store.create_scan(
                targets=["127.0.0.5", "127.0.0.6"],
                scope=["127.0.0.0/8"],
                excludes=[],
                packs=["baseline@1"],
                rules=rules,
                options={},
                hosts_total=2,
            )
            store.record_chunk(scan, hosts, found, {"tcp": "1-1024,6379"})
            store.finish_scan(scan, ScanStatus.COMPLETED)
    return path


def run(args: Sequence[str]) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


def listed(db: Path, *args: str) -> list[str]:
    result = run(["findings", "--db", str(db), "--json", *args])
    assert result.exit_code == 0, result.output
    return [f["rule_id"] for f in json.loads(result.stdout)]


def test_table_shows_active_findings_with_hostile_text_escaped(db: Path) -> None:
    result = run(["findings", "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "[red]owned[/red] :skull: \\x1b[2J" in out
    assert "\\x1b]8;;http://evil.example\\x07click" in out
    assert "\x1b" not in out and "\x07" not in out
    assert FTP.fingerprint[:12] in out and FTP.fingerprint[:13] not in out
    assert "redis.noauth" in out and "http.old" not in out  # fixed is not active
    assert out.index("redis.noauth") < out.index("ftp.anonymous") < out.index("telnet.open")


def test_show_prints_evidence_and_history_escaped(db: Path) -> None:
    result = run(["findings", "show", FTP.fingerprint[:10], "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "220 [bold]hi[/bold] \\x1b]8;;http://evil.example\\x07x" in out
    assert "\x1b" not in out and "\x07" not in out
    assert FTP.fingerprint in out and "CVE-2011-2523" in out
    assert "first seen in scan 1" in out


def test_json_is_a_list_of_findings_and_nothing_else(db: Path) -> None:
    result = run(["findings", "--db", str(db), "--json", "--status", "all"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, FINDING_SCHEMA)
    by_rule = {f["rule_id"]: f for f in data}
    assert set(by_rule) == {"ftp.anonymous", "redis.noauth", "telnet.open", "http.old"}
    ftp = by_rule["ftp.anonymous"]
    assert (ftp["title"], ftp["hostname"]) == (HOSTILE_TITLE, HOSTILE_HOSTNAME)
    assert ftp["evidence"] == {"banner": HOSTILE_BANNER}
    assert (ftp["port"], ftp["proto"], ftp["last_scan_id"]) == (21, "tcp", 2)
    assert by_rule["http.old"]["status"] == "fixed"
    assert "\x1b" not in result.stdout  # JSON escapes control characters


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["redis.noauth", "ftp.anonymous", "telnet.open"]),
        (["--status", "fixed"], ["http.old"]),
        (
            ["--status", "fixed", "--status", "open"],
            ["redis.noauth", "ftp.anonymous", "telnet.open", "http.old"],
        ),
        (["--status", "all", "--host", "127.0.0.5"], ["ftp.anonymous", "http.old"]),
        (["--severity", "high"], ["redis.noauth", "ftp.anonymous"]),
        (["--severity", "CRITICAL"], ["redis.noauth"]),
        (["--port", "23"], ["telnet.open"]),
        (["--rule", "redis.noauth"], ["redis.noauth"]),
        (
            ["--scan", "1", "--status", "all", "--severity", "low", "--host", "127.0.0.5"],
            ["ftp.anonymous", "http.old"],
        ),
        (["--scan", "2", "--status", "all", "--rule", "http.old"], []),
    ],
)
def test_filters(db: Path, args: list[str], expected: list[str]) -> None:
    assert listed(db, *args) == expected


def test_set_status_accepts_a_risk_until_a_date(db: Path) -> None:
    expires = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    result = run(
        [
            "findings",
            "set-status",
            REDIS.fingerprint[:8],
            "--status",
            "risk_accepted",
            "--reason",
            "isolated VLAN",
            "--expires",
            expires,
            "--db",
            str(db),
        ]
    )
    assert result.exit_code == 0, result.output
    assert f"is now risk_accepted until {expires}" in result.stdout
    assert "redis.noauth" not in listed(db)
    with Store(db) as store:
        stored = store.get_finding(REDIS.fingerprint)
        assert (stored.status, stored.status_note) == (FindingStatus.RISK_ACCEPTED, "isolated VLAN")
        assert stored.accept_expires == expires
    shown = json.loads(
        run(["findings", "show", REDIS.fingerprint, "--json", "--db", str(db)]).stdout
    )
    assert shown["events"][-1]["to_status"] == "risk_accepted"
    assert shown["events"][-1]["note"] == f"isolated VLAN (until {expires})"


def test_set_status_false_positive_then_open_again(db: Path) -> None:
    base = ["findings", "set-status", TELNET.fingerprint, "--db", str(db), "--reason"]
    assert run([*base, "lab honeypot", "--status", "false_positive"]).exit_code == 0
    assert "telnet.open" not in listed(db)
    assert run([*base, "honeypot retired", "--status", "open"]).exit_code == 0
    assert "telnet.open" in listed(db)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--status", "false_positive", "--expires", "2099-01-01"],
            "only applies to risk_accepted",
        ),
        (["--status", "risk_accepted", "--expires", "2020-01-01"], "not in the future"),
    ],
)
def test_set_status_refusals_are_config_errors(db: Path, extra: list[str], message: str) -> None:
    result = run(
        ["findings", "set-status", FTP.fingerprint, "--reason", "x", "--db", str(db), *extra]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_set_status_usage_errors_exit_2(db: Path) -> None:
    fp = FTP.fingerprint
    no_reason = run(["findings", "set-status", fp, "--status", "open", "--db", str(db)])
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    by_scan = run(["findings", "set-status", fp, "--status", "fixed", "--reason", "x"])
    assert by_scan.exit_code == 2 and "'fixed' is not one of" in by_scan.output
    mixed = run(["findings", "--severity", "high", "show", fp, "--db", str(db)])
    assert mixed.exit_code == 2 and "--severity" in mixed.output


def test_unknown_fingerprint_and_missing_database_are_config_errors(
    db: Path, tmp_path: Path
) -> None:
    unknown = run(["findings", "show", "deadbeefdeadbeef", "--db", str(db)])
    assert unknown.exit_code == 2
    assert "no finding deadbeefdeadbeef" in unknown.output
    missing = tmp_path / "nowhere.db"
    for args in (["findings"], ["findings", "show", FTP.fingerprint], ["scans"]):
        result = run([*args, "--db", str(missing)])
        assert result.exit_code == 2
        assert "run `posture scan` first" in result.output
    assert not missing.exists()


def test_entry_point_turns_config_errors_into_exit_2(db: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def posture(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scanner", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    missing = posture("findings", "--db", "nowhere.db")
    assert missing.returncode == 2
    assert "posture: error: no database at nowhere.db" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists()
    unknown = posture(
        "findings", "set-status", "0" * 12, "--status", "open", "--reason", "x", "--db", str(db)
    )
    assert unknown.returncode == 2 and "no finding 000000000000" in unknown.stderr


def test_db_comes_from_posture_toml(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "conf" / "posture.toml"
    config.parent.mkdir()
    config.write_text(f'db = "{os.path.relpath(db, config.parent)}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "findings", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_scans_table_and_json(db: Path) -> None:
    table = run(["scans", "--db", str(db)])
    assert table.exit_code == 0, table.output
    assert "completed" in table.stdout and "2/2" in table.stdout
    data = json.loads(run(["scans", "--db", str(db), "--json"]).stdout)
    assert [(s["id"], s["status"], s["hosts_done"]) for s in data] == [
        (1, "completed", 2),
        (2, "completed", 2),
    ]
    assert data[0]["targets"] == ["127.0.0.5", "127.0.0.6"]
    assert data[0]["started"] == "2026-01-10T12:00:00Z"


def test_an_expired_acceptance_is_listed_again_without_a_new_scan(db: Path) -> None:
    # Accepted in the past (the store's clock) until a day that has passed since (real clock).
    with Store(db, clock=lambda: datetime(2026, 1, 10, 12, 0, tzinfo=UTC)) as store:
        store.set_status(
            REDIS.fingerprint, FindingStatus.RISK_ACCEPTED, "window", expires=date(2026, 1, 20)
        )
        assert store.get_finding(REDIS.fingerprint).status is FindingStatus.RISK_ACCEPTED
    assert listed(db) == ["redis.noauth", "ftp.anonymous", "telnet.open"]
    shown = json.loads(
        run(["findings", "show", REDIS.fingerprint, "--json", "--db", str(db)]).stdout
    )
    assert (shown["status"], shown["accept_expires"]) == ("open", None)
    assert shown["events"][-1]["note"] == "risk acceptance expired on 2026-01-20"
