"""The executive report's coverage against the scope, counted (never enumerated) from the scope a
scan recorded, each figure worked out by hand here."""

from __future__ import annotations

import json
from pathlib import Path

from storefacts import Facts

from scanner.model import HostState, ScanStatus
from scanner.report.executive import executive_summary
from scanner.report.executive_render import render_executive
from scanner.store import Store
from scanner.store.sla import SlaPolicy
from scanner.targets import Scope


def test_scope_of_networks_a_range_and_a_host_name(store: Store, facts: Facts) -> None:
    """10.0.0.0/16 is 65,536 addresses, 192.0.2.1-192.0.2.10 is 10, db.example.org one name:
    65,547 in scope. The scan targets 5 (10.0.1.1-4 and db.example.org at 192.0.2.5), scans all
    5 to the end (one down, one timed out) and finds 3 up: 5 / 65,547 = 0.0076% of the scope."""
    scan = store.create_scan(
        targets=["10.0.1.1-10.0.1.4", "db.example.org"],
        scope=["10.0.0.0/16", "192.0.2.1-192.0.2.10", "db.example.org"],
        excludes=[], packs=["baseline@1"], rules=["r.a"], options={"ports": "22"},
        hosts_total=5,
    )  # fmt: skip
    hosts = [
        facts.host("10.0.1.1", ports=(22,)),
        facts.host("10.0.1.2", ports=(22,)),
        facts.host("10.0.1.3", state=HostState.DOWN, ports=()),
        facts.host("10.0.1.4", state=HostState.TIMEOUT, ports=(), reason="host timeout"),
        facts.host("192.0.2.5", ports=(22,), hostname="db.example.org"),
    ]
    store.record_chunk(scan, hosts, [], {"tcp": "22"})
    store.finish_scan(scan, ScanStatus.COMPLETED)

    summary = executive_summary(store, SlaPolicy())
    scope = summary.scope
    assert scope is not None
    assert (scope.addresses_in_scope, scope.names_in_scope, scope.in_scope) == (65_546, 1, 65_547)
    assert (scope.targets, scope.scanned, scope.up) == (5, 5, 3)
    assert scope.scope_share == 5 / 65_547 and scope.scanned_share == 1.0
    assert summary.coverage == (5, 5)  # the old figure: hosts scanned, hosts targeted

    data = json.loads(render_executive(summary, "json", "test"))
    assert data["profile"] == "executive"
    assert data["coverage"] == {
        "hosts_scanned": 5,
        "hosts_total": 5,
        "hosts_up": 3,
        "addresses_in_scope": 65_546,
        "names_in_scope": 1,
        "in_scope": 65_547,
        "targets": 5,
        "targets_percent_of_scope": 0.0076,
        "scanned_percent_of_targets": 100.0,
    }
    html = render_executive(summary, "html", "test")
    assert "<tr><th>Addresses in scope</th><td>65,546 and 1 host name</td></tr>" in html
    assert "<td>5 (0.0076% of the scope)</td>" in html and "<td>5 (100.0% of the targets)" in html
    md = render_executive(summary, "md", "test")
    assert "| addresses in scope | 65,546 and 1 host name |" in md
    assert "| targeted by the latest scan | 5 (0.0076% of the scope) |" in md
    assert "| up | 3 |" in md
    assert "target hosts.\n\n| | hosts |" in md  # a blank line, or Markdown sees no table


def test_huge_scope_from_a_file_gone_since(store: Store, facts: Facts, tmp_path: Path) -> None:
    """A /8 and an IPv6 /64 are 2**24 + 2**64 = 18,446,744,073,726,328,832 addresses: counted,
    not listed. The scope came from @scope.txt, deleted after the scan started; the scope as
    expanded then (kept with the scan) still counts."""
    listed = tmp_path / "scope.txt"
    listed.write_text("10.0.0.0/8\n2001:db8::/64\n")
    expanded = Scope.parse([f"@{listed}"]).canonical()
    scan = store.create_scan(
        targets=["10.1.2.3"], scope=[f"@{listed}"], excludes=[], packs=["baseline@1"],
        rules=["r.a"], options={"expanded_scope": expanded}, hosts_total=1,
    )  # fmt: skip
    listed.unlink()
    store.record_chunk(scan, [facts.host("10.1.2.3", ports=(22,))], [], {"tcp": "22"})
    store.finish_scan(scan, ScanStatus.COMPLETED)

    scope = executive_summary(store, SlaPolicy()).scope
    assert scope is not None
    assert scope.addresses_in_scope == 2**24 + 2**64 == 18_446_744_073_726_328_832
    assert (scope.targets, scope.scanned, scope.up, scope.names_in_scope) == (1, 1, 1, 0)
    html = render_executive(executive_summary(store, SlaPolicy()), "html", "test")
    # 1 / 18,446,744,073,726,328,832 is 5.4e-18 %: shown with its digits, not as 0.0% or 5.4e-18
    assert "<td>18,446,744,073,726,328,832</td>" in html
    assert "<td>1 (0.0000000000000000054% of the scope)</td>" in html


def test_a_scan_without_scope(store: Store, facts: Facts) -> None:
    scan = store.create_scan(
        targets=["127.0.0.1"], scope=[], excludes=[], packs=["baseline@1"], rules=["r.a"],
        options={}, hosts_total=1,
    )  # fmt: skip
    store.record_chunk(scan, [facts.host(ports=(21,))], [], {"tcp": "21"})
    store.finish_scan(scan, ScanStatus.COMPLETED)
    summary = executive_summary(store, SlaPolicy())
    assert summary.scope is not None and summary.scope.in_scope is None
    assert summary.scope.scope_share is None
    md = render_executive(summary, "md", "test")
    assert "| addresses in scope | no scope recorded |" in md
