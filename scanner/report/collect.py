"""Gather one report's content (`ReportData`) from the findings store and the rule packs."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Protocol

from scanner import __version__
from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanRecord, StoredFinding
from scanner.owners import Owners
from scanner.report.interface import ReportData, RuleInfo
from scanner.store.db import Store
from scanner.store.timestamps import iso_utc


class RuleSource(Protocol):
    """Where rule metadata comes from: a loaded rule set, or a plain dict."""

    def get(self, rule_id: str, /) -> RuleInfo | None: ...


def collect_report(
    store: Store,
    *,
    scan_id: int | None = None,
    statuses: Collection[FindingStatus] | None = None,
    rules: RuleSource | None = None,
    owners: Owners | None = None,
) -> ReportData:
    """The findings observed in one scan (default: the latest), with their rules' metadata and
    owners (a person's assignment, else `owners` from posture.toml, else unassigned).

    Raises ConfigError when the store has no scans yet or no scan `scan_id`.
    """
    scan = store.get_scan(scan_id) if scan_id is not None else store.latest_scan()
    if scan is None:
        raise ConfigError(f"{store.path} has no scans yet; run `posture scan TARGETS` first")
    findings = tuple(store.findings(scan_id=scan.id, statuses=statuses))
    used: dict[str, RuleInfo] = {}
    if rules is not None:
        for rule_id in {f.rule_id for f in findings}:
            rule = rules.get(rule_id)
            if rule is not None:
                used[rule_id] = rule
    return ReportData(
        generated_at=iso_utc(datetime.now(UTC)),
        tool_version=__version__,
        scan=scan,
        scans=(scan,),
        findings=findings,
        rules=used,
        new_fingerprints=first_observed_in(scan, findings),
        scan_hosts=tuple(store.scan_hosts(scan.id)),
        tls_endpoints=tuple(store.tls_endpoints(scan.id)),
        owners=(owners or Owners()).names(findings, store.owner_assignments()),
    )


def first_observed_in(scan: ScanRecord, findings: Iterable[StoredFinding]) -> frozenset[str] | None:
    """Fingerprints first seen during `scan` (for SARIF's baselineState "new").

    A finding's first sighting is stamped while the scan that saw it runs, so it is new in this
    scan when it was first seen at or after the scan started. None when a time is unreadable.
    """
    try:
        started = _parse(scan.started)
        return frozenset(f.fingerprint for f in findings if _parse(f.first_seen) >= started)
    except ValueError:
        return None


def _parse(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
