"""Finding lifecycle rules: what a scan's sighting or absence does to a finding's status.

Pure decisions, no I/O: the Store applies them inside its transactions. People's statuses
(risk_accepted, false_positive) are never changed by a scan, except that an acceptance whose
expiry date has come opens the finding again when it is next seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from scanner.model import FindingStatus, HostState, ScanStatus
from scanner.store.portset import PortSet

PEOPLE_STATUSES = frozenset(
    {FindingStatus.RISK_ACCEPTED, FindingStatus.FALSE_POSITIVE, FindingStatus.OPEN}
)
"""What `set-status` may set; fixed and reopened are for scans to decide."""


@dataclass(frozen=True)
class Sighting:
    """What seeing a finding in a scan does to it."""

    status: FindingStatus
    outcome: str  # "new" | "reopened" | "expired" | "seen"
    note: str | None  # for the event; None when the status does not change


@dataclass(frozen=True)
class ScanCoverage:
    """Where a scan looked: the rules it evaluated and the ports it scanned per protocol."""

    rules: frozenset[str] = frozenset()
    ports: Mapping[str, PortSet] = field(default_factory=dict, hash=False)

    def covers(
        self, *, host_state: HostState | None, rule_id: str, port: int | None, proto: str | None
    ) -> bool:
        """Did the scan look where this finding was? Only then may its absence mean fixed.

        The host must have been up in this scan (an outage is not a fix), the rule evaluated,
        and a port-level finding's port among the ports scanned for its protocol.
        """
        if host_state is not HostState.UP or rule_id not in self.rules:
            return False
        if port is None:
            return True
        scanned = self.ports.get((proto or "").lower())
        return scanned is not None and port in scanned


@dataclass(frozen=True)
class ChunkSummary:
    """What one stored chunk did to the findings."""

    hosts: int
    new: int = 0  # first sighting: open
    reopened: int = 0  # fixed and seen again
    expired: int = 0  # risk acceptance past its date, seen again: open
    seen: int = 0  # seen again, status unchanged


@dataclass(frozen=True)
class LifecycleSummary:
    """What closing a scan did to the findings."""

    scan_id: int
    status: ScanStatus  # what the scan was closed with
    fixed: int = 0  # active, absent, and covered by this complete scan
    active: int = 0  # open/reopened and observed in this scan
    not_covered: int = 0  # active, absent, left alone: the scan did not look (or did not finish)


def acceptance_expired(expires: date | None, today: date) -> bool:
    """An acceptance holds until the day before its expiry date."""
    return expires is not None and today >= expires


def on_sighting(
    current: FindingStatus | None, accept_expires: date | None, today: date, scan_id: int
) -> Sighting:
    """The status of a finding a scan has just seen (`current` None: never seen before)."""
    if current is None:
        return Sighting(FindingStatus.OPEN, "new", f"first seen in scan {scan_id}")
    if current is FindingStatus.FIXED:
        return Sighting(FindingStatus.REOPENED, "reopened", f"seen again in scan {scan_id}")
    if current is FindingStatus.RISK_ACCEPTED and acceptance_expired(accept_expires, today):
        return Sighting(
            FindingStatus.OPEN,
            "expired",
            f"risk acceptance expired on {accept_expires}; seen in scan {scan_id}",
        )
    return Sighting(current, "seen", None)
