"""What every report format renders (`ReportData`) and the one interface a format implements.

Adding a format is one new module with a `ReportFormat` subclass, listed in scanner.report.FORMATS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from scanner.model import FindingStatus, Host, ScanRecord, Severity, StoredFinding
from scanner.probes.tls.model import TlsEndpoint

SEVERITY_ORDER = tuple(sorted(Severity, key=lambda s: -s.rank))  # critical first


class RuleInfo(Protocol):
    """Rule metadata a report shows; the rule engine's rules have these attributes."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def description(self) -> str | None: ...
    @property
    def remediation(self) -> str: ...
    @property
    def references(self) -> tuple[str, ...]: ...
    @property
    def controls(self) -> tuple[str, ...]: ...
    @property
    def pack(self) -> str: ...


@dataclass(frozen=True)
class ReportData:
    """One report's content, as the store and rule packs hold it (raw, not yet escaped).

    `rules` may lack a finding's rule (a pack was removed or renamed); formats then use the
    finding's own title and show no remediation. `new_fingerprints` are the findings first
    observed in `scan` (None when that cannot be told). `scan_hosts` are the hosts `scan` stored,
    in any state: timed-out and failed ones are what the scan did not cover.
    """

    generated_at: str  # ISO 8601 UTC
    tool_version: str
    scan: ScanRecord | None
    scans: tuple[ScanRecord, ...]
    findings: tuple[StoredFinding, ...]
    rules: Mapping[str, RuleInfo] = field(default_factory=dict)
    new_fingerprints: frozenset[str] | None = None
    scan_hosts: tuple[Host, ...] = ()
    tls_endpoints: tuple[TlsEndpoint, ...] = ()  # the TLS assessments `scan` stored
    owners: Mapping[str, str] = field(default_factory=dict)  # fingerprint -> owner name

    @property
    def severity_counts(self) -> dict[Severity, int]:
        """Findings per severity, every severity present, highest first."""
        counts = Counter(f.severity for f in self.findings)
        return {s: counts[s] for s in SEVERITY_ORDER}

    @property
    def status_counts(self) -> dict[FindingStatus, int]:
        counts = Counter(f.status for f in self.findings)
        return {s: counts[s] for s in FindingStatus}

    def owner_of(self, finding: StoredFinding) -> str:
        """The finding's owner ("unassigned" when nobody owns it)."""
        return self.owners.get(finding.fingerprint, "unassigned")

    def is_new(self, finding: StoredFinding) -> bool | None:
        if self.new_fingerprints is None:
            return None
        return finding.fingerprint in self.new_fingerprints


class ReportFormat(ABC):
    """One output format: a name for `--format`, a file extension, and a renderer."""

    name: ClassVar[str]
    extension: ClassVar[str]

    @abstractmethod
    def render(self, data: ReportData) -> str:
        """The whole report as text; every target-derived string escaped for this format."""
