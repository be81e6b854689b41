"""The executive figures from a hand-made history, each checked against values worked out here."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner
from storefacts import Facts, FakeClock

from scanner.cli import cli
from scanner.model import FindingStatus, ScanStatus, Severity
from scanner.report.executive import executive_summary
from scanner.store import Store
from scanner.store.sla import SlaPolicy

TCP = {"tcp": "1-1024"}
HOSTILE = "<script>alert(1)</script> | *x* \x1b[31m"
C, H, M, L, N = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO


def test_executive_figures(store: Store, facts: Facts, clock: FakeClock) -> None:
    """Jan 10: critical A and high B on .1, medium M on .2. Jan 15: B gone (fixed). Feb 19: B
    back (reopened); then M is accepted as a risk until Mar 1."""
    a = facts.finding(rule="r.a", port=23, severity=C)
    b = facts.finding(rule="r.b", port=21, severity=H)
    m = facts.finding(rule="r.m", host="127.0.0.2", port=80, severity=M, title=HOSTILE)
    rules = ("r.a", "r.b", "r.m")
    targets = ("127.0.0.1", "127.0.0.2")
    plan = (([a, b, m], (21, 23)), ([a, m], (21, 23)), ([a, b, m], (21, 23)))
    scans = []
    for step, (found, ports) in zip((0, 5, 35), plan, strict=True):
        clock.advance(days=step)
        scan = facts.scan(rules=rules, hosts_total=2, targets=targets)
        hosts = [facts.host("127.0.0.1", ports=ports), facts.host("127.0.0.2", ports=(80,))]
        store.record_chunk(scan, hosts, found, TCP)
        store.finish_scan(scan, ScanStatus.COMPLETED)
        scans.append(scan)
    store.set_status(
        m.fingerprint, FindingStatus.RISK_ACCEPTED, "lab", expires=date(2026, 3, 1), actor="ana"
    )
    summary = executive_summary(store, SlaPolicy(), today=date(2026, 2, 19))

    assert summary.scan is not None and summary.scan.id == scans[2]
    assert summary.previous is not None and summary.previous.id == scans[1]
    assert summary.active == {C: 1, H: 1, M: 0, L: 0, N: 0}
    # After scan 2: A and M active; now A and B (M accepted since).
    assert summary.change == {C: 0, H: 1, M: -1, L: 0, N: 0}
    assert [(p.scan_id, p.day, p.new, p.fixed) for p in summary.trend] == [
        (scans[0], date(2026, 1, 10), 3, 0),
        (scans[1], date(2026, 1, 15), 0, 1),
        (scans[2], date(2026, 2, 19), 0, 0),  # B came back: reopened, not new
    ]
    assert [p.open_by_severity[C] for p in summary.trend] == [1, 1, 1]
    assert [p.open_by_severity[H] for p in summary.trend] == [1, 0, 1]
    assert [p.open_by_severity[M] for p in summary.trend] == [1, 1, 1]  # accepted after
    # A: open since Jan 10 (40 days); B: reopened today.
    assert summary.aging[C] == {"< 7 days": 0, "7-30 days": 0, "30-90 days": 1, "> 90 days": 0}
    assert summary.aging[H] == {"< 7 days": 1, "7-30 days": 0, "30-90 days": 0, "> 90 days": 0}
    assert summary.top_hosts == (("127.0.0.1", 15, {C: 1, H: 1}),)
    assert summary.expiring == ((m.fingerprint, m.title, "127.0.0.2", date(2026, 3, 1)),)
    assert summary.coverage == (2, 2)
    breached = [item.finding.fingerprint for item in summary.sla.breached]
    assert breached == [a.fingerprint]  # critical, 40 days against 7
    # A window from Feb 1 keeps only scan 3 in the trend; the change is still against scan 2.
    late = executive_summary(store, SlaPolicy(), since=date(2026, 2, 1), today=date(2026, 2, 19))
    assert [p.scan_id for p in late.trend] == [scans[2]]
    assert late.change == summary.change

    # The same figures rendered: HTML (self-contained, charts inline), Markdown and JSON.
    from scanner.report.executive_render import render_executive

    html = render_executive(summary, "html", "test")
    assert "<script" not in html and "default-src 'none'" in html
    assert html.count("<svg") == 2 and "Riskiest hosts" in html
    assert "&lt;script&gt;" in html and "\x1b" not in html  # the hostile title, escaped
    assert '<div class="n">1</div>' in html and "+1 since the previous scan" in html
    md = render_executive(summary, "md", "test")
    assert "| critical | 1 | +0 |" in md and "| high | 1 | +1 |" in md
    assert "<script>" not in md and "\x1b" not in md
    doc = json.loads(render_executive(summary, "json", "test"))
    assert doc["active"]["critical"] == 1 and doc["change_since_previous"]["medium"] == -1
    assert [p["new"] for p in doc["trend"]] == [3, 0, 0]
    assert doc["expiring_exceptions"][0]["expires"] == "2026-03-01"
    assert "\x1b" not in doc["expiring_exceptions"][0]["title"]


def test_posture_report_executive_cli(
    store: Store, facts: Facts, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    found = facts.finding(rule="r.a", port=23, severity=C)
    scan = facts.scan(rules=("r.a",))
    store.record_chunk(scan, [facts.host(ports=(23,))], [found], TCP)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    store.close()
    runner = CliRunner()
    out = tmp_path / "exec.html"
    done = runner.invoke(
        cli, ["report", "--profile", "executive", "--db", str(db_path), "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "executive summary" in out.read_text() and "<svg" in out.read_text()
    as_json = runner.invoke(
        cli, ["report", "--profile", "executive", "--format", "json", "--db", str(db_path)]
    )
    first = json.loads(as_json.output)
    assert first["active"]["critical"] == 1
    assert first["change_since_previous"] is None  # one scan: nothing to compare with
    sarif = runner.invoke(
        cli, ["report", "--profile", "executive", "--format", "sarif", "--db", str(db_path)]
    )
    assert sarif.exit_code == 2 and "renders html, md, json or pdf" in sarif.output


def test_coverage_against_the_scope(store: Store, facts: Facts) -> None:
    """Scope 10.0.0.0/16 plus 192.0.2.1-192.0.2.10 is 65,536 + 10 = 65,546 addresses; the scan
    targeted 4 of them, went through all 4 (one down, one timed out) and found 2 up."""
    from scanner.model import HostState

    scan = store.create_scan(
        targets=["10.0.1.1-10.0.1.4"], scope=["10.0.0.0/16", "192.0.2.1-192.0.2.10"],
        excludes=[], packs=["baseline@1"], rules=["r.a"], options={"ports": "22"},
        hosts_total=4,
    )  # fmt: skip
    hosts = [
        facts.host("10.0.1.1", ports=(22,)),
        facts.host("10.0.1.2", ports=(22,)),
        facts.host("10.0.1.3", state=HostState.DOWN, ports=()),
        facts.host("10.0.1.4", state=HostState.TIMEOUT, ports=(), reason="host timeout"),
    ]
    store.record_chunk(scan, hosts, [], {"tcp": "22"})
    store.finish_scan(scan, ScanStatus.COMPLETED)
    summary = executive_summary(store, SlaPolicy())
    assert summary.scope is not None
    assert summary.scope.addresses_in_scope == 65_546
    assert (summary.scope.targets, summary.scope.scanned, summary.scope.up) == (4, 4, 2)
    assert summary.scope.scope_share == 4 / 65_546
    from scanner.report.executive_render import render_executive

    html = render_executive(summary, "html", "test")
    assert "65,546" in html and "Targeted by the latest scan" in html
    data = json.loads(render_executive(summary, "json", "test"))
    assert data["coverage"]["addresses_in_scope"] == 65_546 and data["coverage"]["hosts_up"] == 2
    assert "| addresses in scope | 65,546 |" in render_executive(summary, "md", "test")
