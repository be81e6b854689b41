# ruff: noqa: E501 - hand-built records kept on one line each
"""Owners from posture.toml: the first matching entry wins; shown with SLA breaches in the
executive report and `posture sla`, which can filter by owner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from scanner.cli import cli
from scanner.config import load_config
from scanner.errors import ConfigError
from scanner.model import Confidence, Finding, Host, HostState, ScanStatus, Service, Severity
from scanner.owners import Owners
from scanner.store import Store

CONFIG = """db = "posture.db"
[[owners]]
owner = "team-db"
contact = "db@example.org"
match = ["10.20.5.0/24"]
ports = [5432]

[[owners]]
owner = "team-web"
match = ["web-*.corp.example", "10.20.0.0/16"]
rules = ["tls.*", "baseline.*"]

[[owners]]
owner = "platform"
match = ["10.0.0.0/8", "192.0.2.1-192.0.2.20"]
"""


def test_first_match_wins_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "posture.toml"
    path.write_text(CONFIG)
    owners = load_config(path).owners
    assert owners.name_of("10.20.5.9", 5432, "vulns.known-vulnerability") == "team-db"
    assert owners.name_of("10.20.5.9", 22, "baseline.telnet-exposed") == "team-web"  # not 5432
    assert owners.name_of("10.20.5.9", 22, "ssh.weak-kex") == "platform"  # rule not team-web's
    assert owners.name_of("10.99.0.1", 443, "tls.weak") == "platform"
    assert (
        owners.name_of("172.16.0.1", 443, "tls.weak", hostname="WEB-1.corp.example") == "team-web"
    )
    assert (
        owners.name_of("192.0.2.20") == "platform" and owners.name_of("192.0.2.21") == "unassigned"
    )
    found = owners.owner_of("10.20.5.9", 5432, "x")
    assert found is not None and found.contact == "db@example.org"


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ("[[owners]]\nmatch = ['10.0.0.0/8']", "'owner' must be a name"),
        ("[[owners]]\nowner = 'x'", "'match' names no address"),
        ("[[owners]]\nowner = 'x'\nmatch = ['a b']", "is not an address, network, range or name"),
        ("[[owners]]\nowner = 'x'\nmatch = ['h']\nports = [70000]", "'ports' must be a list"),
        ("[[owners]]\nowner = 'x'\nmatch = ['h']\nteam = 'y'", "unknown key(s): team"),
        ("owners = 'x'", "owners are [[owners]] tables"),
    ],
)
def test_bad_owners_name_the_file(tmp_path: Path, table: str, why: str) -> None:
    path = tmp_path / "posture.toml"
    path.write_text(table + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and why in str(caught.value)


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_overdue_findings_carry_their_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "posture.toml").write_text(CONFIG)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with Store(tmp_path / "posture.db", clock=_Clock(long_ago)) as store:
        scan = store.create_scan(targets=["10.20.5.9", "10.99.0.1"], scope=["10.0.0.0/8"],
                                 excludes=[], packs=["t@1"], rules=["db.open", "x.open"],
                                 options={"ports": "5432,80"}, hosts_total=2)  # fmt: skip
        hosts = [
            Host(
                "10.20.5.9", HostState.UP, services=(Service(port=5432, proto="tcp", state="open"),)
            ),
            Host(
                "10.99.0.1", HostState.UP, services=(Service(port=80, proto="tcp", state="open"),)
            ),
        ]
        findings = [
            Finding(rule_id="db.open", severity=Severity.HIGH, host="10.20.5.9", port=5432,
                    proto="tcp", title="PostgreSQL reachable", evidence={}, confidence=Confidence.FIRM),
            Finding(rule_id="x.open", severity=Severity.CRITICAL, host="10.99.0.1", port=80,
                    proto="tcp", title="Admin panel open", evidence={}, confidence=Confidence.FIRM),
        ]  # fmt: skip
        store.record_chunk(scan, hosts, findings, {"tcp": "5432,80"})
        store.finish_scan(scan, ScanStatus.COMPLETED)
    runner = CliRunner()
    result = runner.invoke(cli, ["sla", "--json"], catch_exceptions=False)
    overdue = {i["title"]: i["owner"] for i in json.loads(result.stdout)["breached"]}
    assert overdue == {"PostgreSQL reachable": "team-db", "Admin panel open": "platform"}
    mine = runner.invoke(cli, ["sla", "--json", "--owner", "team-db"], catch_exceptions=False)
    assert [i["title"] for i in json.loads(mine.stdout)["breached"]] == ["PostgreSQL reachable"]
    table = runner.invoke(cli, ["sla"], catch_exceptions=False)
    assert "team-db" in table.stdout and "platform" in table.stdout
    executive = runner.invoke(cli, ["report", "--profile", "executive", "--format", "json"],
                              catch_exceptions=False)  # fmt: skip
    data = json.loads(executive.stdout)
    assert {i["owner"] for i in data["sla_breaches"]} == {"team-db", "platform"}
    html = runner.invoke(cli, ["report", "--profile", "executive"], catch_exceptions=False).stdout
    assert "<th>Owner</th>" in html and "team-db" in html
    md = runner.invoke(cli, ["report", "--profile", "executive", "--format", "md"]).stdout
    assert "| Severity | Overdue | Owner | Host | Finding |" in md


def test_no_owners_means_unassigned() -> None:
    assert Owners().name_of("10.0.0.1") == "unassigned"
