"""Remediation SLAs: when each active finding is due, which are overdue and by how long, and how
fast each severity is fixed (mean time to remediate), from the store's status history.

A finding's SLA clock starts when it (last) became active: first seen, or reopened; an exception
(risk accepted, false positive) stops it, and an expired acceptance starts it again from its
expiry. Fixes are measured per exposure: from each opening to the fix that closed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from scanner.errors import ConfigError
from scanner.model import FindingStatus, Severity, StoredFinding, finding_sort_key
from scanner.store.timestamps import utc_date

if TYPE_CHECKING:  # the config reads [sla] without loading the store
    from scanner.store.db import Store

DEFAULT_SLA_DAYS: Mapping[Severity, int] = {
    Severity.CRITICAL: 7,
    Severity.HIGH: 30,
    Severity.MEDIUM: 90,
    Severity.LOW: 180,
}
DUE_SOON_DAYS = 7  # "due soon": at most this many days left
_ACTIVE = (FindingStatus.OPEN.value, FindingStatus.REOPENED.value)


@dataclass(frozen=True)
class SlaPolicy:
    """Days allowed per severity; a severity without an entry (info) has no SLA."""

    days: Mapping[Severity, int] = field(default_factory=lambda: dict(DEFAULT_SLA_DAYS))

    @classmethod
    def parse(cls, raw: object, where: str) -> SlaPolicy:
        """From posture.toml's [sla] table: `critical = 7`, `high = 30`, ... (whole days > 0)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [sla] must be a table of severity = days")
        days = dict(DEFAULT_SLA_DAYS)
        for key, value in raw.items():
            try:
                severity = Severity.parse(str(key))
            except ValueError as exc:
                raise ConfigError(f"{where}: [sla]: {exc}") from None
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}: [sla] {key} must be a whole number of days above 0")
            days[severity] = value
        return cls(days)

    def due(self, severity: Severity, opened: date) -> date | None:
        allowed = self.days.get(severity)
        return None if allowed is None else date.fromordinal(opened.toordinal() + allowed)


@dataclass(frozen=True)
class SlaItem:
    """One active finding against its SLA."""

    finding: StoredFinding
    opened: date  # when its current exposure began
    due: date | None
    days_left: int | None  # negative: overdue by that many days

    @property
    def breached(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def days_overdue(self) -> int:
        return max(0, -(self.days_left or 0))


@dataclass(frozen=True)
class SeverityStats:
    severity: Severity
    sla_days: int | None
    active: int
    breached: int
    due_soon: int  # not breached, at most DUE_SOON_DAYS left
    fixed: int  # exposures fixed (a finding fixed twice counts twice)
    fixed_in_time: int
    mean_days_to_fix: float | None


@dataclass(frozen=True)
class SlaReport:
    today: date
    items: tuple[SlaItem, ...]  # active findings with an SLA, most overdue first
    stats: tuple[SeverityStats, ...]  # critical first

    @property
    def breached(self) -> tuple[SlaItem, ...]:
        return tuple(item for item in self.items if item.breached)


def day_of(iso: str) -> date:
    """The UTC day of a stored ISO 8601 timestamp ("2026-01-10T12:00:00Z")."""
    return utc_date(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def _exposures(store: Store) -> tuple[dict[str, date], dict[str, list[tuple[date, date]]]]:
    """Per fingerprint: when its current exposure began (active findings only), and every
    (opened, fixed) exposure that ended in a fix."""
    current: dict[str, date] = {}
    fixed: dict[str, list[tuple[date, date]]] = {}
    opened_at: dict[str, date] = {}
    rows = store.db.execute(
        "SELECT fingerprint, at, from_status, to_status FROM finding_events ORDER BY id"
    )
    for fingerprint, at, _from, to in rows:
        day = day_of(at)
        if to in _ACTIVE:
            opened_at[fingerprint] = day
        elif to == FindingStatus.FIXED.value and fingerprint in opened_at:
            fixed.setdefault(fingerprint, []).append((opened_at.pop(fingerprint), day))
        else:  # accepted or false positive: the clock stops
            opened_at.pop(fingerprint, None)
    current.update(opened_at)
    return current, fixed


def sla_report(store: Store, policy: SlaPolicy, today: date | None = None) -> SlaReport:
    """Every active finding's due date and the per-severity figures, as of `today` (UTC)."""
    today = today or utc_date(store._now())
    findings = store.findings(statuses=[FindingStatus.OPEN, FindingStatus.REOPENED])
    by_fp = {f.fingerprint: f for f in store.findings(statuses=list(FindingStatus))}
    current, fixed = _exposures(store)
    items = []
    for finding in findings:
        opened = current.get(finding.fingerprint) or day_of(finding.first_seen)
        due = policy.due(finding.severity, opened)
        if due is None:
            continue
        items.append(SlaItem(finding, opened, due, due.toordinal() - today.toordinal()))
    items.sort(key=lambda i: (i.days_left, finding_sort_key(i.finding)))
    stats = []
    for severity in sorted(Severity, key=lambda s: -s.rank):
        allowed = policy.days.get(severity)
        mine = [i for i in items if i.finding.severity is severity]
        cycles = [
            (opened, closed)
            for fp, spans in fixed.items()
            if fp in by_fp and by_fp[fp].severity is severity
            for opened, closed in spans
        ]
        durations = [closed.toordinal() - opened.toordinal() for opened, closed in cycles]
        stats.append(
            SeverityStats(
                severity=severity,
                sla_days=allowed,
                active=sum(1 for f in findings if f.severity is severity),
                breached=sum(1 for i in mine if i.breached),
                due_soon=sum(
                    1 for i in mine if not i.breached and (i.days_left or 0) <= DUE_SOON_DAYS
                ),
                fixed=len(durations),
                fixed_in_time=sum(1 for d in durations if allowed is not None and d <= allowed),
                mean_days_to_fix=sum(durations) / len(durations) if durations else None,
            )
        )
    return SlaReport(today, tuple(items), tuple(stats))


__all__ = [
    "DEFAULT_SLA_DAYS",
    "DUE_SOON_DAYS",
    "SeverityStats",
    "SlaItem",
    "SlaPolicy",
    "SlaReport",
    "day_of",
    "sla_report",
]
