"""Remediation SLAs from the status history: due dates, breaches, exceptions, time to fix."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from storefacts import Facts, FakeClock

from scanner.cli import cli
from scanner.config import load_config
from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanStatus, Severity
from scanner.store import Store
from scanner.store.sla import SlaPolicy, sla_report

TCP = {"tcp": "1-1024"}


def _history(store: Store, facts: Facts, clock: FakeClock) -> dict[str, str]:
    """Day 0 (2026-01-10): critical A, high B, low C found. Day 5: B is gone (fixed). Day 12:
    B is back (reopened); C was accepted as a risk on day 6."""
    a = facts.finding(rule="baseline.telnet-exposed", port=23, severity=Severity.CRITICAL)
    b = facts.finding(severity=Severity.HIGH)
    c = facts.finding(rule="baseline.x11-exposed", port=6000, severity=Severity.LOW)
    rules = ("baseline.telnet-exposed", "ftp.anonymous", "baseline.x11-exposed")

    def scan(found: list, ports: tuple[int, ...]) -> None:  # type: ignore[type-arg]
        scan_id = facts.scan(rules=rules)
        store.record_chunk(scan_id, [facts.host(ports=ports)], found, TCP)
        store.finish_scan(scan_id, ScanStatus.COMPLETED)

    scan([a, b, c], (21, 23, 6000))
    clock.advance(days=5)
    scan([a, c], (23, 6000))
    clock.advance(days=1)
    store.set_status(c.fingerprint, FindingStatus.RISK_ACCEPTED, reason="lab only", actor="ana")
    clock.advance(days=6)
    scan([a, b, c], (21, 23, 6000))
    return {"a": a.fingerprint, "b": b.fingerprint, "c": c.fingerprint}


def test_due_dates_breaches_and_time_to_fix(store: Store, facts: Facts, clock: FakeClock) -> None:
    fp = _history(store, facts, clock)
    report = sla_report(store, SlaPolicy())
    assert report.today == date(2026, 1, 22)
    by = {item.finding.fingerprint: item for item in report.items}
    assert set(by) == {fp["a"], fp["b"]}  # the accepted risk has no deadline
    a, b = by[fp["a"]], by[fp["b"]]
    assert (a.opened, a.due, a.days_left, a.breached, a.days_overdue) == (
        date(2026, 1, 10),
        date(2026, 1, 17),
        -5,
        True,
        5,
    )
    # Reopened on day 12: its clock starts again then.
    assert (b.opened, b.due, b.days_left, b.breached) == (
        date(2026, 1, 22),
        date(2026, 2, 21),
        30,
        False,
    )
    assert [i.finding.fingerprint for i in report.breached] == [fp["a"]]
    stats = {s.severity: s for s in report.stats}
    critical, high = stats[Severity.CRITICAL], stats[Severity.HIGH]
    assert (critical.sla_days, critical.active, critical.breached, critical.fixed) == (7, 1, 1, 0)
    assert (high.active, high.breached, high.fixed, high.fixed_in_time) == (1, 0, 1, 1)
    assert high.mean_days_to_fix == 5.0  # found day 0, fixed day 5
    assert stats[Severity.LOW].active == 0 and stats[Severity.INFO].sla_days is None


def test_a_configured_sla_moves_the_deadline(
    store: Store, facts: Facts, clock: FakeClock, tmp_path: Path
) -> None:
    fp = _history(store, facts, clock)
    config = tmp_path / "posture.toml"
    config.write_text("[sla]\ncritical = 14\nhigh = 3\n")
    policy = load_config(config).sla
    assert policy is not None and policy.days[Severity.MEDIUM] == 90  # the others keep defaults
    report = sla_report(store, policy)
    a = next(i for i in report.items if i.finding.fingerprint == fp["a"])
    assert (a.due, a.days_left, a.breached) == (date(2026, 1, 24), 2, False)
    stats = {s.severity: s for s in report.stats}
    assert stats[Severity.CRITICAL].due_soon == 1
    assert stats[Severity.HIGH].fixed_in_time == 0  # 5 days to fix against 3 allowed


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("critical = 0", "critical must be a whole number of days above 0"),
        ("high = 1.5", "high must be a whole number of days above 0"),
        ("urgent = 3", "unknown severity 'urgent'"),
    ],
)
def test_bad_sla_settings_name_the_file(tmp_path: Path, table: str, expected: str) -> None:
    config = tmp_path / "posture.toml"
    config.write_text(f"[sla]\n{table}\n")
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(config)
    assert str(config) in str(caught.value)


def test_posture_sla_cli(store: Store, facts: Facts, clock: FakeClock, db_path: Path) -> None:
    fp = _history(store, facts, clock)
    store.close()
    runner = CliRunner()
    done = runner.invoke(cli, ["sla", "--db", str(db_path), "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    # The command judges by today's date (the fake clock only drove the scans): both are late,
    # the longest overdue first.
    today = datetime.now(UTC).date()
    assert doc["today"] == today.isoformat()
    assert [b["fingerprint"] for b in doc["breached"]] == [fp["a"], fp["b"]]
    assert doc["breached"][0]["days_overdue"] == (today - date(2026, 1, 17)).days
    assert runner.invoke(cli, ["sla", "--db", str(db_path), "--fail-on-breach"]).exit_code == 1
