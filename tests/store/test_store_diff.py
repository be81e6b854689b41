"""`posture diff`: what changed between two scans, told apart from what a scan did not see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from storefacts import Facts, FakeClock

from scanner.cli import cli
from scanner.errors import ConfigError
from scanner.model import ScanStatus, Severity
from scanner.store import Store
from scanner.store.diff import default_pair, diff_scans

TCP = {"tcp": "1-1024"}


def _history(store: Store, facts: Facts, clock: FakeClock) -> tuple[list[int], dict[str, str]]:
    """Four scans of 127.0.0.1 and .2: FTP comes and goes, telnet appears, SMB's host drops out.

    scan 1: ftp, smb (on .2)          scan 2: telnet, smb    (ftp fixed)
    scan 3: ftp, telnet, .2 down      (ftp reopened; smb not seen: its host was not covered)
    scan 4: of other targets (a different scope), sees nothing relevant.
    """
    ftp = facts.finding(severity=Severity.HIGH)
    telnet = facts.finding(rule="baseline.telnet-exposed", port=23, severity=Severity.CRITICAL)
    smb = facts.finding(rule="baseline.smb-exposed", host="127.0.0.2", port=445)
    rules = ("ftp.anonymous", "baseline.telnet-exposed", "baseline.smb-exposed")
    targets = ("127.0.0.1", "127.0.0.2")
    plan = [
        ([ftp, smb], {"127.0.0.1": (21,), "127.0.0.2": (445,)}),
        ([telnet, smb], {"127.0.0.1": (23,), "127.0.0.2": (445,)}),
        ([ftp, telnet], {"127.0.0.1": (21, 23)}),
    ]
    ids = []
    for found, up in plan:
        clock.advance(days=1)
        scan = facts.scan(rules=rules, hosts_total=2, targets=targets)
        hosts = [facts.host(a, ports=p) for a, p in up.items()]
        if "127.0.0.2" not in up:
            from scanner.model import HostState

            hosts.append(facts.host("127.0.0.2", state=HostState.TIMEOUT, reason="timed out"))
        store.record_chunk(scan, hosts, found, TCP)
        store.finish_scan(scan, ScanStatus.COMPLETED)
        ids.append(scan)
    clock.advance(days=1)
    other = facts.scan(rules=rules, targets=("127.0.0.9",))
    store.record_chunk(other, [facts.host("127.0.0.9", ports=())], [], TCP)
    store.finish_scan(other, ScanStatus.COMPLETED)
    ids.append(other)
    return ids, {"ftp": ftp.fingerprint, "telnet": telnet.fingerprint, "smb": smb.fingerprint}


def _fps(findings: tuple) -> set[str]:  # type: ignore[type-arg]
    return {f.fingerprint for f in findings}


def test_new_fixed_reopened_unchanged_and_not_seen(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    (one, two, three, _), fp = _history(store, facts, clock)
    first = diff_scans(store, one, two)
    assert _fps(first.new) == {fp["telnet"]}
    assert _fps(first.fixed) == {fp["ftp"]}
    assert _fps(first.unchanged) == {fp["smb"]}
    assert first.reopened == () and first.not_seen == ()
    second = diff_scans(store, two, three)
    assert _fps(second.reopened) == {fp["ftp"]}  # fixed by scan 2, back in scan 3
    assert _fps(second.not_seen) == {fp["smb"]}  # its host timed out: not fixed
    assert _fps(second.unchanged) == {fp["telnet"]}
    assert second.new == () and second.fixed == ()
    across = diff_scans(store, one, three)  # scan 2 in between
    assert _fps(across.new) == {fp["telnet"]} and _fps(across.unchanged) == {fp["ftp"]}
    assert _fps(across.not_seen) == {fp["smb"]}
    assert across.counts() == {"new": 1, "reopened": 0, "fixed": 0, "unchanged": 1, "not_seen": 1}
    with pytest.raises(ConfigError, match="is not earlier than scan"):
        diff_scans(store, three, one)


def test_default_pair_is_the_last_two_scans_of_one_scope(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    (one, two, three, four), _ = _history(store, facts, clock)
    assert default_pair(store) == (two, three)  # scan 4 has other targets: no pair for it
    assert default_pair(store, one) == (one, three)
    with pytest.raises(ConfigError, match="no completed scan of scan"):
        default_pair(store, four)


def test_posture_diff_cli(store: Store, facts: Facts, clock: FakeClock, db_path: Path) -> None:
    (one, two, three, _), fp = _history(store, facts, clock)
    store.close()
    runner = CliRunner()
    done = runner.invoke(cli, ["diff", "--db", str(db_path), "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert (doc["before"], doc["after"]) == (two, three)
    assert [f["fingerprint"] for f in doc["reopened"]] == [fp["ftp"]]
    assert doc["counts"]["not_seen"] == 1
    text = runner.invoke(cli, ["diff", str(one), str(two), "--db", str(db_path)])
    assert text.exit_code == 0, text.output
    assert f"scan {one} -> scan {two}: 1 new, 0 reopened, 1 fixed, 1 unchanged" in text.output
    gate = runner.invoke(
        cli, ["diff", str(one), str(two), "--db", str(db_path), "--fail-on", "critical"]
    )
    assert gate.exit_code == 1  # telnet, critical, is new
    quiet = runner.invoke(
        cli, ["diff", str(two), str(three), "--db", str(db_path), "--fail-on", "critical"]
    )
    assert quiet.exit_code == 0  # only FTP (high) came back


def test_findings_as_they_stood_on_a_past_day(
    store: Store, facts: Facts, clock: FakeClock, db_path: Path
) -> None:
    """Scans ran on 2026-01-11, -12 and -13: FTP found, fixed, back; telnet from the 12th."""
    _, fp = _history(store, facts, clock)
    store.close()
    runner = CliRunner()

    def as_of(day: str, *extra: str) -> dict[str, str]:
        done = runner.invoke(
            cli, ["findings", "--db", str(db_path), "--as-of", day, "--json", *extra]
        )
        assert done.exit_code == 0, done.output
        return {f["fingerprint"]: f["status"] for f in json.loads(done.output)}

    assert as_of("2026-01-11") == {fp["ftp"]: "open", fp["smb"]: "open"}
    assert as_of("2026-01-12", "--status", "all") == {
        fp["ftp"]: "fixed",
        fp["telnet"]: "open",
        fp["smb"]: "open",
    }
    assert as_of("2026-01-13", "--status", "reopened") == {fp["ftp"]: "reopened"}
    assert as_of("2026-01-09", "--status", "all") == {}  # before the first scan
