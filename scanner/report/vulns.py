"""The vulnerabilities among stored findings, as rows ordered by urgency: what `posture scan`
prints after its findings, `--json` carries as "vulnerabilities", and the reports show.

A vulnerability finding is one whose evidence holds `vuln.id` (rules/vulns.yaml, or a site's own
`for: vulnerability` rule). Urgency: CISA KEV first, then EPSS at least 0.1 by EPSS, then CVSS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.model import StoredFinding, priority_order, vulnerability_priority


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class VulnRow:
    finding: StoredFinding
    advisory_id: str
    cves: tuple[str, ...]
    product: str | None
    version: str | None
    fixed_version: str | None
    cvss: float | None
    kev: bool
    kev_ransomware: bool | None
    epss: float | None
    priority: str  # "kev" | "epss" | "cvss"
    source: str | None
    reason: str | None

    @property
    def where(self) -> str:
        f = self.finding
        return f"{f.host}:{f.port}/{f.proto}" if f.port is not None else f"{f.host} (package)"

    @property
    def sort_key(self) -> tuple[Any, ...]:
        order = priority_order(self.priority, self.epss, self.cvss)
        return (*order, self.finding.host, self.advisory_id)

    def as_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "id": self.advisory_id,
            "cves": list(self.cves),
            "host": f.host,
            "hostname": f.hostname,
            "port": f.port,
            "proto": f.proto,
            "product": self.product,
            "version": self.version,
            "fixed_version": self.fixed_version,
            "cvss": self.cvss,
            "severity": f.severity.value,
            "kev": self.kev,
            "kev_ransomware": self.kev_ransomware,
            "epss": self.epss,
            "priority": self.priority,
            "confidence": f.confidence.value,
            "source": self.source,
            "reason": self.reason,
            "status": f.status.value,
            "fingerprint": f.fingerprint,
        }


def vulnerability_row(finding: StoredFinding) -> VulnRow | None:
    """The row of a vulnerability finding; None for any other finding."""
    evidence: Mapping[str, Any] = finding.evidence
    advisory = _text(evidence.get("vuln.id"))
    if advisory is None:
        return None
    epss = _number(evidence.get("vuln.epss"))
    kev = evidence.get("vuln.kev") is True
    priority = _text(evidence.get("vuln.priority"))
    if priority not in ("kev", "epss", "cvss"):
        priority = vulnerability_priority(kev, epss)
    cves = evidence.get("vuln.cves")
    ransomware = evidence.get("vuln.kev_ransomware")
    return VulnRow(
        finding=finding,
        advisory_id=advisory,
        cves=tuple(c for c in cves if isinstance(c, str))
        if isinstance(cves, list)
        else finding.cves,
        product=_text(evidence.get("vuln.product")),
        version=_text(evidence.get("vuln.version")),
        fixed_version=_text(evidence.get("vuln.fixed_version")),
        cvss=_number(evidence.get("vuln.cvss")),
        kev=kev,
        kev_ransomware=ransomware if isinstance(ransomware, bool) else None,
        epss=epss,
        priority=priority,
        source=_text(evidence.get("vuln.source")),
        reason=_text(evidence.get("vuln.reason")),
    )


def vulnerability_rows(findings: Iterable[StoredFinding]) -> list[VulnRow]:
    """The vulnerability findings among `findings`, most urgent first."""
    rows = [row for f in findings if (row := vulnerability_row(f)) is not None]
    return sorted(rows, key=lambda row: row.sort_key)


__all__ = ["VulnRow", "vulnerability_row", "vulnerability_rows"]
