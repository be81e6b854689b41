"""Finding lifecycle rules: what a scan's sighting or absence does to a finding's status.

Pure decisions, no I/O: the Store applies them inside its transactions. People's statuses
(risk_accepted, false_positive) are never changed by a scan, except that an acceptance whose
expiry date has come opens the finding again: when a scan sees it, or when the store next reads
findings or closes a scan (`Store.expire_acceptances`).
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
    """What one stored chunk did to the findings.

    `reopened` and `expired` are both findings active again: a runner reporting "reopened" to
    people adds the two (`back_to_active`).
    """

    hosts: int
    new: int = 0  # first sighting: open
    reopened: int = 0  # fixed and seen again: reopened
    expired: int = 0  # risk acceptance past its date, seen again: open
    seen: int = 0  # seen again, status unchanged

    @property
    def back_to_active(self) -> int:
        """Findings this chunk made active again: reopened ones and expired acceptances."""
        return self.reopened + self.expired


@dataclass(frozen=True)
class LifecycleSummary:
    """What closing a scan did to the findings."""

    scan_id: int
    status: ScanStatus  # what the scan was closed with
    fixed: int = 0  # active, absent, and covered by this complete scan
    # Active, absent, left alone: the scan did not look, did not finish, or could not decide.
    not_covered: int = 0
    # Of not_covered: the scan looked but its active check got no answer (record_chunk's
    # `undetermined`), so absence proves nothing.
    undetermined: int = 0
    # Risk acceptances found past their date at close and opened again (not seen by a scan).
    expired: int = 0


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
