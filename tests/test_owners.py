# ruff: noqa: E501 - hand-built records kept on one line each
"""Owners from posture.toml (the first matching entry wins) and owners people give single
findings (`posture findings assign`, which outrank the config); shown in `posture findings`,
`posture sla`, the executive report and the technical report's JSON and CSV."""

from __future__ import annotations

import csv
import getpass
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def _three_findings(tmp_path: Path) -> dict[str, str]:
    """Overdue findings on 10.20.5.9:5432 (team-db by the config), 10.99.0.1:80 (platform) and
    172.16.0.1:23 (no entry matches: unassigned); their fingerprints by title."""
    (tmp_path / "posture.toml").write_text(CONFIG)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    records = [("10.20.5.9", 5432, "db.open", "PostgreSQL reachable"),
               ("10.99.0.1", 80, "x.open", "Admin panel open"),
               ("172.16.0.1", 23, "telnet.open", "Telnet")]  # fmt: skip
    with Store(tmp_path / "posture.db", clock=_Clock(long_ago)) as store:
        scan = store.create_scan(targets=[r[0] for r in records], scope=["10.0.0.0/8"],
                                 excludes=[], packs=["t@1"], rules=[r[2] for r in records],
                                 options={}, hosts_total=3)  # fmt: skip
        hosts = [Host(a, HostState.UP, services=(Service(port=p, proto="tcp", state="open"),))
                 for a, p, *_ in records]  # fmt: skip
        findings = [Finding(rule_id=rule, severity=Severity.HIGH, host=a, port=p, proto="tcp",
                            title=title, evidence={}, confidence=Confidence.FIRM)
                    for a, p, rule, title in records]  # fmt: skip
        store.record_chunk(scan, hosts, findings, {"tcp": "23,80,5432"})
        store.finish_scan(scan, ScanStatus.COMPLETED)
        return {f.title: f.fingerprint for f in findings}


def _json(args: list[str]) -> Any:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_assign_an_owner_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fps = _three_findings(tmp_path)
    admin = fps["Admin panel open"]
    runner = CliRunner()
    listed = {f["title"]: f["owner"] for f in _json(["findings", "--json"])}
    assert listed == {"PostgreSQL reachable": "team-db", "Admin panel open": "platform",
                      "Telnet": "unassigned"}  # fmt: skip
    assert [f["title"] for f in _json(["findings", "--owner", "TEAM-DB", "--json"])] == [
        "PostgreSQL reachable"
    ]
    assert [f["title"] for f in _json(["findings", "--owner", "unassigned", "--json"])] == [
        "Telnet"
    ]
    table = runner.invoke(cli, ["findings"], env={"COLUMNS": "200"}).stdout
    assert "Owner" in table and "team-db" in table and "unassigned" in table
    none = runner.invoke(cli, ["findings", "--owner", "nobody"])
    assert (
        none.exit_code == 0 and "No findings match (open, reopened, owner nobody)." in none.stdout
    )

    # A person's owner outranks the config (platform) everywhere.
    given = runner.invoke(cli, ["findings", "assign", admin[:12], "--owner", "team-app",
                                "--contact", "app@example.org", "--note", "moved to app team"])  # fmt: skip
    assert given.exit_code == 0, given.output
    assert given.stdout.startswith(f"{admin[:12]} is now owned by team-app: x.open on 10.99.0.1")
    listed = {f["title"]: f["owner"] for f in _json(["findings", "--json"])}
    assert listed["Admin panel open"] == "team-app"
    shown = _json(["findings", "show", admin, "--json"])
    assert shown["owner"] == "team-app"
    detail = shown["owner_detail"]
    assert (detail["source"], detail["contact"], detail["note"]) == (
        "assigned", "app@example.org", "moved to app team"
    )  # fmt: skip
    assert detail["assigned_by"] == getpass.getuser() and detail["assigned_at"].endswith("Z")
    text = runner.invoke(cli, ["findings", "show", admin], env={"COLUMNS": "200"}).stdout
    assert f"team-app <app@example.org> (assigned by {getpass.getuser()} at" in text
    assert "Owner history" in text
    config_owned = runner.invoke(cli, ["findings", "show", fps["PostgreSQL reachable"]],
                                 env={"COLUMNS": "200"}).stdout  # fmt: skip
    assert "team-db <db@example.org> ([[owners]] entry 1 of posture.toml)" in config_owned
    sla = _json(["sla", "--json", "--owner", "team-app"])
    assert [i["title"] for i in sla["breached"]] == ["Admin panel open"]
    executive = _json(["report", "--profile", "executive", "--format", "json"])
    assert {i["title"]: i["owner"] for i in executive["sla_breaches"]} == {
        "PostgreSQL reachable": "team-db", "Admin panel open": "team-app", "Telnet": "unassigned"
    }  # fmt: skip
    technical = _json(["report", "--profile", "technical", "--format", "json"])
    assert technical["profile"] == "technical"
    assert {f["title"]: f["owner"] for f in technical["findings"]} == {
        "PostgreSQL reachable": "team-db", "Admin panel open": "team-app", "Telnet": "unassigned"
    }  # fmt: skip
    csv_text = runner.invoke(cli, ["report", "--format", "csv"], catch_exceptions=False).stdout
    rows = list(csv.DictReader(io.StringIO(csv_text, newline="")))
    assert {r["title"]: r["owner"] for r in rows} == {
        "PostgreSQL reachable": "team-db", "Admin panel open": "team-app", "Telnet": "unassigned"
    }  # fmt: skip

    # Cleared: the config decides again; both changes stay in the history.
    cleared = runner.invoke(cli, ["findings", "assign", admin, "--clear"])
    assert cleared.exit_code == 0, cleared.output
    assert "has no assigned owner; by posture.toml it is platform" in cleared.stdout
    assert {f["title"]: f["owner"] for f in _json(["findings", "--json"])}["Admin panel open"] == (
        "platform"
    )
    shown = _json(["findings", "show", admin, "--json"])
    assert shown["owner_detail"]["source"] == "config" and shown["owner_detail"]["entry"] == 3
    assert [a["owner"] for a in shown["owner_history"]] == ["team-app", None]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["findings", "assign", "{fp}"], "give --owner NAME, or --clear"),
        (
            ["findings", "assign", "{fp}", "--owner", "x", "--clear"],
            "give --owner NAME, or --clear",
        ),
        (["findings", "--owner", "x", "assign", "{fp}", "--clear"], "--owner: listing options"),
        (["findings", "assign", "{fp}", "--owner", "unassigned"], "is what no owner is shown as"),
    ],
)
def test_assign_refuses_what_it_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], why: str
) -> None:
    monkeypatch.chdir(tmp_path)
    fp = _three_findings(tmp_path)["Telnet"]
    result = CliRunner().invoke(cli, [a.format(fp=fp) for a in args])
    assert result.exit_code == 2 and why in result.output
    assert _json(["findings", "show", fp, "--json"])["owner_history"] == []
