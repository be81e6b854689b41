"""Compliance views: each control pass, fail or not tested, with its findings and scans."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from storefacts import Facts, FakeClock

from scanner.cli import cli
from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanStatus, Severity
from scanner.report.compliance import compliance_view
from scanner.store import Store

TCP = {"tcp": "1-1024"}


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    controls: tuple[str, ...]


RULES = (
    Rule("t.telnet", ("PCI-DSS-4.0:2.2.4", "PCI-DSS-4.0:8.3.2", "CIS-8:4.8")),
    Rule("t.ftp", ("PCI-DSS-4.0:2.2.4", "PCI-DSS-4.0:8.2.2")),
    Rule("t.smb", ("PCI-DSS-4.0:1.3.1",)),
    Rule("t.x11", ("PCI-DSS-4.0:2.2.10",)),
)


def _history(store: Store, facts: Facts, clock: FakeClock) -> tuple[list[int], dict[str, str]]:
    """Scan 1 evaluates telnet, ftp and smb rules: telnet open, ftp found; scan 2 (of the same
    rules) no longer sees ftp (fixed). smb is accepted as a risk. x11's rule was never run."""
    telnet = facts.finding(rule="t.telnet", port=23, severity=Severity.HIGH)
    ftp = facts.finding(rule="t.ftp")
    smb = facts.finding(rule="t.smb", port=445)
    rules = ("t.telnet", "t.ftp", "t.smb")
    ids = []
    for found, ports in (([telnet, ftp, smb], (21, 23, 445)), ([telnet, smb], (23, 445))):
        scan = facts.scan(rules=rules)
        store.record_chunk(scan, [facts.host(ports=ports)], found, TCP)
        store.finish_scan(scan, ScanStatus.COMPLETED)
        ids.append(scan)
        clock.advance(days=90)
    store.set_status(smb.fingerprint, FindingStatus.RISK_ACCEPTED, reason="isolated", actor="ana")
    return ids, {"telnet": telnet.fingerprint, "ftp": ftp.fingerprint, "smb": smb.fingerprint}


def test_controls_pass_fail_and_not_tested(store: Store, facts: Facts, clock: FakeClock) -> None:
    (one, two), fp = _history(store, facts, clock)
    scans = store.list_scans()
    view = compliance_view(
        "pci-dss-4.0",
        RULES,
        store.findings(statuses=list(FindingStatus)),
        scans,
        {s.id: store.scan_rules(s.id) for s in scans},
    )
    by = {c.control: c for c in view.controls}
    assert list(by) == ["1.3.1", "2.2.4", "2.2.10", "8.2.2", "8.3.2"]  # numeric order
    assert by["2.2.4"].status == "fail"  # telnet still open (ftp's fix does not help)
    assert [f.fingerprint for f in by["2.2.4"].failing] == [fp["telnet"]]
    assert by["8.2.2"].status == "pass" and by["8.2.2"].tested_by == (one, two)  # ftp fixed
    assert by["1.3.1"].status == "pass"  # only an accepted risk: an exception, listed
    assert [f.fingerprint for f in by["1.3.1"].exceptions] == [fp["smb"]]
    assert by["2.2.10"].status == "not tested" and by["2.2.10"].tested_by == ()
    assert view.counts() == {"pass": 2, "fail": 2, "not tested": 1}
    cis = compliance_view("cis-8", RULES, [], scans, {s.id: store.scan_rules(s.id) for s in scans})
    assert [(c.control, c.status) for c in cis.controls] == [("4.8", "pass")]
    with pytest.raises(ConfigError, match="unknown framework 'sox'"):
        compliance_view("sox", RULES, [], [], {})


def test_posture_compliance_cli(
    store: Store, facts: Facts, clock: FakeClock, db_path: Path
) -> None:
    """The built-in packs: telnet maps to PCI DSS 2.2.4, among others."""
    telnet = facts.finding(rule="baseline.telnet-exposed", port=23, severity=Severity.HIGH)
    scan = facts.scan(rules=("baseline.telnet-exposed", "baseline.ftp-anonymous"))
    store.record_chunk(scan, [facts.host(ports=(23,))], [telnet], TCP)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    store.close()
    runner = CliRunner()
    args = ["compliance", "--db", str(db_path), "--since", "2026-01-01"]
    done = runner.invoke(cli, [*args, "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    by = {c["control"]: c for c in doc["controls"]}
    assert by["2.2.4"]["status"] == "fail" and by["2.2.4"]["failing"] == [telnet.fingerprint]
    assert by["8.2.2"]["status"] == "pass"  # anonymous FTP evaluated, not found
    assert by["4.2.1"]["status"] == "not tested"  # TLS rules did not run in this scan
    assert [s["id"] for s in doc["scans"]] == [scan] and doc["since"] == "2026-01-01"
    assert runner.invoke(cli, [*args, "--fail-on-fail"]).exit_code == 1
    later = runner.invoke(cli, ["compliance", "--db", str(db_path), "--since", "2026-06-01"])
    assert later.exit_code == 0 and "0 scans" in later.output  # no evidence in the window


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_compliance_report_profile(
    store: Store, facts: Facts, clock: FakeClock, db_path: Path, tmp_path: Path, fmt: str
) -> None:
    hostile = "<script>alert(1)</script> | \x1b[31m"
    telnet = facts.finding(
        rule="baseline.telnet-exposed", port=23, severity=Severity.HIGH, title=hostile
    )
    scan = facts.scan(rules=("baseline.telnet-exposed", "baseline.ftp-anonymous"))
    store.record_chunk(scan, [facts.host(ports=(23,))], [telnet], TCP)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    store.close()
    out = tmp_path / f"compliance.{fmt}"
    done = CliRunner().invoke(
        cli,
        [
            "report",
            "--profile",
            "compliance",
            "--framework",
            "pci-dss-4.0",
            "--since",
            "2026-01-01",
            "--db",
            str(db_path),
            "--format",
            fmt,
            "-o",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "\x1b" not in text and "<script>" not in text
    if fmt == "json":
        doc = json.loads(text)
        by = {c["control"]: c["status"] for c in doc["controls"]}
        assert (by["2.2.4"], by["8.2.2"], by["4.2.1"]) == ("fail", "pass", "not tested")
        assert doc["since"] == "2026-01-01" and [s["id"] for s in doc["scans"]] == [scan]
        return
    assert "PCI DSS 4.0: control status" in text and "2.2.4" in text
    assert "not tested" in text and "Scan history (evidence)" in text
    if fmt == "html":
        assert "&lt;script&gt;" in text and "default-src 'none'" in text
