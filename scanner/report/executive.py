"""The figures of an executive report, aggregated from the store: active findings by severity and
their change since the previous scan, a trend over the scans (new, fixed, open by severity), an
aging matrix, SLA figures, the riskiest hosts, exceptions about to expire, and scan coverage.

Status history is replayed once, in event order, so the trend over N scans costs one pass over
the events, not N queries.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from scanner.model import FindingStatus, ScanRecord, ScanStatus, Severity
from scanner.owners import Owners
from scanner.store.db import Store
from scanner.store.sla import SlaPolicy, SlaReport, day_of, sla_report
from scanner.store.timestamps import utc_date

SEVERITIES = tuple(sorted(Severity, key=lambda s: -s.rank))  # critical first
AGE_BUCKETS = ((0, 7, "< 7 days"), (7, 30, "7-30 days"), (30, 90, "30-90 days"))
OLDEST_BUCKET = "> 90 days"
# Weights of active findings when ranking hosts: one critical outweighs two highs.
HOST_WEIGHTS = {Severity.CRITICAL: 10, Severity.HIGH: 5, Severity.MEDIUM: 2, Severity.LOW: 1}
EXPIRING_WITHIN_DAYS = 30
TOP_HOSTS = 10
_ACTIVE = (FindingStatus.OPEN, FindingStatus.REOPENED)


@dataclass(frozen=True)
class TrendPoint:
    scan_id: int
    day: date
    new: int  # findings first observed by this scan
    fixed: int  # findings this scan marked fixed
    open_by_severity: dict[Severity, int]  # active right after this scan finished


@dataclass(frozen=True)
class ExecutiveSummary:
    today: date
    scan: ScanRecord | None  # the latest completed scan
    previous: ScanRecord | None  # the completed scan before it
    active: dict[Severity, int]
    change: dict[Severity, int] | None  # active now minus right after `previous` (None: none)
    trend: tuple[TrendPoint, ...]
    aging: dict[Severity, dict[str, int]]
    sla: SlaReport
    top_hosts: tuple[tuple[str, int, dict[Severity, int]], ...]  # host, weight, counts
    expiring: tuple[tuple[str, str, str, date], ...]  # fingerprint, title, host, expiry
    coverage: tuple[int, int] | None  # (hosts scanned, hosts in the latest scan's targets)
    scope: ScopeCoverage | None = None  # the latest scan against its scope
    owners: Mapping[str, str] = field(default_factory=dict)  # fingerprint -> owner, overdue ones


@dataclass(frozen=True)
class ScopeCoverage:
    """What an auditor asks of coverage: how much of the allowed scope the latest scan
    targeted, scanned to the end, and found up."""

    addresses_in_scope: int | None  # None: the scan recorded no scope (or it no longer parses)
    targets: int  # addresses the scan set out to scan
    scanned: int  # of them, scanned to the end (up, down or timed out)
    up: int
    names_in_scope: int = 0  # host names listed in the scope, each one asset

    @property
    def in_scope(self) -> int | None:
        """Assets in scope: its addresses, and each host name it lists once."""
        if self.addresses_in_scope is None:
            return None
        return self.addresses_in_scope + self.names_in_scope

    @property
    def scanned_share(self) -> float | None:
        return self.scanned / self.targets if self.targets else None

    @property
    def scope_share(self) -> float | None:
        """Targets as a share of the scope (at most 1: a scan never leaves its scope)."""
        if not self.in_scope:
            return None
        return min(1.0, self.targets / self.in_scope)


def _bucket(age: int) -> str:
    return next((label for low, high, label in AGE_BUCKETS if low <= age < high), OLDEST_BUCKET)


def executive_summary(
    store: Store,
    policy: SlaPolicy,
    *,
    since: date | None = None,
    today: date | None = None,
    owners: Owners | None = None,
) -> ExecutiveSummary:
    today = today or utc_date(store._now())
    findings = {f.fingerprint: f for f in store.findings(statuses=list(FindingStatus))}
    completed = [s for s in store.list_scans() if s.status is ScanStatus.COMPLETED and s.finished]
    window = [s for s in completed if since is None or day_of(s.started) >= since]
    # Replay the history once: status of every finding, snapshot after each scan of the window.
    events = store.db.execute(
        "SELECT fingerprint, at, to_status, scan_id, from_status, id FROM finding_events"
        " ORDER BY id"
    ).fetchall()

    # Events are written in time order: their timestamps never decrease with their ids.
    times = [e[1] for e in events]
    last_of_scan: dict[int, int] = {}
    for e in events:
        if e[3] is not None:
            last_of_scan[e[3]] = max(last_of_scan.get(e[3], 0), e[5])
    scan_ids = sorted(last_of_scan)
    running, highest = [], 0
    for scan_id in scan_ids:
        highest = max(highest, last_of_scan[scan_id])
        running.append(highest)

    def boundary(scan: ScanRecord) -> int:
        """The last event the state right after `scan` includes: its own and earlier scans'
        events, and people's made before it finished (timestamps have whole seconds, so a
        verdict given the second a scan ends is told apart by event order)."""
        assert scan.finished is not None
        at = bisect_left(times, scan.finished)
        before = events[at - 1][5] if at else 0
        upto = bisect_right(scan_ids, scan.id)
        return max(before, running[upto - 1] if upto else 0)

    # Active findings per severity kept up to date event by event, so a snapshot after each
    # scan costs nothing: one pass over the events, not one pass over the findings per scan.
    status: dict[str, FindingStatus] = {}
    running_active: Counter[Severity] = Counter()
    snapshots: dict[int, dict[Severity, int]] = {}
    new_in: Counter[int] = Counter()
    fixed_in: Counter[int] = Counter()
    position = 0
    for done in sorted(window, key=lambda s: s.finished or ""):
        assert done.finished is not None
        last = boundary(done)
        while position < len(events) and events[position][5] <= last:
            fingerprint, _at, to_status, scan_id, from_status, _id = events[position]
            new_status = FindingStatus(to_status)
            finding = findings.get(fingerprint)
            if finding is not None:
                was_active = status.get(fingerprint) in _ACTIVE
                if was_active != (new_status in _ACTIVE):
                    running_active[finding.severity] += -1 if was_active else 1
            status[fingerprint] = new_status
            if scan_id is not None and from_status is None:
                new_in[scan_id] += 1
            if scan_id is not None and to_status == FindingStatus.FIXED.value:
                fixed_in[scan_id] += 1
            position += 1
        snapshots[done.id] = {s: running_active[s] for s in SEVERITIES}
    trend = tuple(
        TrendPoint(s.id, day_of(s.started), new_in[s.id], fixed_in[s.id], snapshots[s.id])
        for s in window
    )
    active_findings = [f for f in findings.values() if f.status in _ACTIVE]
    active_counts = Counter(f.severity for f in active_findings)
    active = {s: active_counts[s] for s in SEVERITIES}
    scan = completed[-1] if completed else None
    previous = completed[-2] if len(completed) > 1 else None
    before = snapshots.get(previous.id) if previous else None
    if previous is not None and before is None:  # outside the window: rebuild it
        assert previous.finished is not None
        then = store.statuses_as_of(previous.finished)
        counted = Counter(
            findings[fp].severity for fp, st in then.items() if st in _ACTIVE and fp in findings
        )
        before = {s: counted[s] for s in SEVERITIES}
    change = None if before is None else {s: active[s] - before[s] for s in SEVERITIES}
    sla = sla_report(store, policy, today)
    opened = {item.finding.fingerprint: item.opened for item in sla.items}
    aging = {s: {label: 0 for *_, label in AGE_BUCKETS} | {OLDEST_BUCKET: 0} for s in SEVERITIES}
    for finding in active_findings:
        start = opened.get(finding.fingerprint) or day_of(finding.first_seen)
        aging[finding.severity][_bucket((today - start).days)] += 1
    per_host: dict[str, Counter[Severity]] = {}
    for finding in active_findings:
        per_host.setdefault(finding.host, Counter())[finding.severity] += 1
    ranked = sorted(
        (
            (host, sum(HOST_WEIGHTS.get(s, 0) * n for s, n in counts.items()), dict(counts))
            for host, counts in per_host.items()
        ),
        key=lambda row: (-row[1], row[0]),
    )
    horizon = today + timedelta(days=EXPIRING_WITHIN_DAYS)
    expiring = tuple(
        sorted(
            (
                (f.fingerprint, f.title, f.host, date.fromisoformat(f.accept_expires))
                for f in findings.values()
                if f.status is FindingStatus.RISK_ACCEPTED
                and f.accept_expires
                and date.fromisoformat(f.accept_expires) <= horizon
            ),
            key=lambda row: (row[3], row[0]),
        )
    )
    coverage = (scan.hosts_done, scan.hosts_total) if scan else None
    scope = _scope_coverage(store, scan) if scan else None
    return ExecutiveSummary(
        today=today,
        scan=scan,
        previous=previous,
        active=active,
        change=change,
        trend=trend,
        aging=aging,
        sla=sla,
        top_hosts=tuple(ranked[:TOP_HOSTS]),
        expiring=expiring,
        coverage=coverage,
        scope=scope,
        # a person's assignment (`posture findings assign`) first, then [[owners]]
        owners=(owners or Owners()).names(
            (i.finding for i in sla.breached), store.owner_assignments()
        ),
    )


def _scope_coverage(store: Store, scan: ScanRecord) -> ScopeCoverage:
    """Counted, never enumerated: a /8 in scope costs no more than one address."""
    from scanner.errors import ConfigError
    from scanner.model import HostState
    from scanner.targets import count_specs

    addresses: int | None = None
    names = 0
    # The scope as expanded when the scan started (scanner.scan keeps it): @files named by the
    # scope may have changed or gone since.
    expanded = scan.options.get("expanded_scope")
    specs = expanded if isinstance(expanded, list) and expanded else list(scan.scope)
    if specs:
        try:
            addresses, names = count_specs(str(spec) for spec in specs)
        except ConfigError:  # a scope file gone since, or a spec an older posture accepted
            addresses, names = None, 0
    (up,) = store.db.execute(
        "SELECT count(*) FROM scan_hosts WHERE scan_id = ? AND state = ?",
        (scan.id, HostState.UP.value),
    ).fetchone()
    return ScopeCoverage(addresses, scan.hosts_total, scan.hosts_done, int(up), names)


__all__ = ["AGE_BUCKETS", "ExecutiveSummary", "ScopeCoverage", "TrendPoint", "executive_summary"]
