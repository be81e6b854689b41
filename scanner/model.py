"""Frozen values that cross module boundaries: facts from probes, findings from rules.

Probes build `Host`/`Service` facts, the rule engine turns them into `Finding`s, the store keeps
them and hands back `StoredFinding`s to reports and the CLI. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner.probes.inventory import Inventory
from scanner.probes.tls.model import TlsEndpoint


class Severity(enum.Enum):
    """Finding severity; `rank` orders them (critical is highest)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Confidence(enum.Enum):
    """Quality of detection, after Greenbone's QoD: how sure the evidence makes us."""

    CERTAIN = "certain"  # confirmed by talking to the service (e.g. Redis answered INFO)
    FIRM = "firm"  # a service fingerprint or banner that identifies the software
    TENTATIVE = "tentative"  # a guess from the port number, or a distro build with backports

    @property
    def rank(self) -> int:
        return {Confidence.CERTAIN: 2, Confidence.FIRM: 1, Confidence.TENTATIVE: 0}[self]


class FindingStatus(enum.Enum):
    OPEN = "open"
    FIXED = "fixed"
    REOPENED = "reopened"
    RISK_ACCEPTED = "risk_accepted"
    FALSE_POSITIVE = "false_positive"

    @property
    def is_active(self) -> bool:
        """Open or reopened: something someone still has to fix."""
        return self in (FindingStatus.OPEN, FindingStatus.REOPENED)


class HostState(enum.Enum):
    UP = "up"
    DOWN = "down"
    TIMEOUT = "timeout"  # nmap gave up on it (--host-timeout): not covered, never dropped
    ERROR = "error"  # the probe failed for this host (nmap crashed, unparsable output)


@dataclass(frozen=True)
class Service:
    """One port of one host as a probe saw it."""

    port: int
    proto: str  # "tcp" | "udp"
    state: str  # nmap's state: open, filtered, open|filtered, closed
    name: str | None = None  # nmap service name (e.g. "ftp", "redis")
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    tunnel: str | None = None  # "ssl" when nmap found TLS in front of the service
    method: str | None = None  # nmap: "probed" (fingerprinted) or "table" (port number only)
    conf: int | None = None  # nmap's confidence 0-10
    cpe: tuple[str, ...] = ()
    banner: str | None = None  # raw banner text (hostile: clip and escape before showing)
    # Results of active service checks, keyed by check name (e.g. "redis", "ftp"); each value
    # is a flat mapping of fact name to value, exposed to rules as "<check>.<fact>".
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # The full TLS assessment of this port when one ran (its flat facts are checks["tls"]).
    tls: TlsEndpoint | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class Vulnerability:
    """One advisory that affects software a host runs, as the advisory database matched it.

    The software is either what a service announced (`port`/`proto` set, source "banner" or
    "nmap") or an installed package an authenticated inventory listed (no port, "package")."""

    advisory_id: str  # the CVE where the records have one, else the advisory's own id
    key: str  # "<product>:<id>": stable across database refreshes, tells findings apart
    product: str  # posture's product key ("openssh") or the distro source package
    version: str  # as found: upstream version or full package version
    source: str  # "banner" | "nmap" | "package"
    confidence: Confidence
    cves: tuple[str, ...] = ()
    port: int | None = None
    proto: str | None = None
    ecosystem: str = "upstream"  # the version ordering the match used
    release: str | None = None  # distro release of the advisory ("12", "22.04")
    fixed_version: str | None = None
    cvss_score: float | None = None
    cvss_vector: str | None = None
    kev: bool = False
    kev_ransomware: bool | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    summary: str | None = None
    match: str = "nvd-cpe"  # or "osv-range"
    reason: str | None = None  # why the confidence is what it is

    @property
    def cvss_severity(self) -> Severity | None:
        """The CVSS v3 qualitative rating of the score (FIRST's bands), None when unscored."""
        if self.cvss_score is None:
            return None
        for floor, severity in _CVSS_BANDS:
            if self.cvss_score >= floor:
                return severity
        return Severity.INFO

    @property
    def severity(self) -> Severity:
        """CVSS severity, raised one level and to at least high when CISA KEV lists it:
        exploitation in the wild outranks the base score. Unscored advisories count as medium
        (the middle: neither buried nor alarming) unless KEV lists them."""
        base = self.cvss_severity or Severity.MEDIUM
        if not self.kev:
            return base
        raised = min(base.rank + 1, Severity.CRITICAL.rank)
        return _SEVERITY_OF_RANK[max(raised, Severity.HIGH.rank)]

    @property
    def priority(self) -> str:
        return vulnerability_priority(self.kev, self.epss)

    @property
    def priority_key(self) -> tuple[int, float, float, str]:
        """Most urgent first: KEV, then likely exploitation by EPSS, then CVSS."""
        return (*priority_order(self.priority, self.epss, self.cvss_score), self.key)


# FIRST's CVSS v3 qualitative severity rating scale.
_CVSS_BANDS = (
    (9.0, Severity.CRITICAL),
    (7.0, Severity.HIGH),
    (4.0, Severity.MEDIUM),
    (0.1, Severity.LOW),
)
_SEVERITY_OF_RANK = {severity.rank: severity for severity in Severity}
EPSS_NOTABLE = 0.1
"""EPSS probability from which a vulnerability ranks right after KEV ones: a one-in-ten chance
of exploitation within 30 days, which FIRST's own guidance treats as high."""


def vulnerability_priority(kev: bool, epss: float | None) -> str:
    """Why a vulnerability ranks where it does: "kev" (exploited in the wild), "epss" (EPSS at
    least EPSS_NOTABLE), else "cvss"."""
    if kev:
        return "kev"
    if epss is not None and epss >= EPSS_NOTABLE:
        return "epss"
    return "cvss"


def priority_order(
    priority: str, epss: float | None, cvss: float | None
) -> tuple[int, float, float]:
    """Sort key, most urgent first: KEV, then EPSS-notable by EPSS, then by CVSS."""
    order = {"kev": 0, "epss": 1}.get(priority, 2)
    return (order, -(epss or 0.0) if order < 2 else 0.0, -(cvss or 0.0))


@dataclass(frozen=True)
class VulnAssessment:
    """What matching a host's software against the advisory database found, and where it could
    not look: `unassessed` lists (proto, port) of open ports whose software is unknown, and
    ("", 0) when the host's packages were not (no inventory, or no advisories for its distro).
    Vulnerability rules are undetermined there, so earlier findings are not marked fixed."""

    found: tuple[Vulnerability, ...] = ()
    unassessed: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()  # why something was not assessed, for the scan's log


@dataclass(frozen=True)
class Host:
    """One scanned address with what was found on it."""

    address: str
    state: HostState
    hostname: str | None = None
    services: tuple[Service, ...] = ()
    reason: str | None = None  # why it is down / timed out / errored
    # What an authenticated inventory read (posture scan --local / --ssh), when one ran.
    inventory: Inventory | None = field(default=None, hash=False, compare=False)
    # Advisory matches of its software; None when no advisory database was used.
    vulnerabilities: VulnAssessment | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class Finding:
    """A rule matched facts of an asset. Produced by the rule engine, kept by the store."""

    rule_id: str
    severity: Severity
    confidence: Confidence
    title: str
    host: str  # the asset: an IP address
    port: int | None = None  # None for host-level findings
    proto: str | None = None
    discriminator: str = ""  # what tells two findings of one rule on one port apart
    hostname: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    cves: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule_id, self.host, self.proto, self.port, self.discriminator)


def fingerprint(
    rule_id: str, asset: str, proto: str | None, port: int | None, discriminator: str = ""
) -> str:
    """sha256(rule_id | asset | proto/port | discriminator), hex.

    Title, severity, evidence and time stay out, so rewording a rule never forks a finding.
    """
    where = f"{proto}/{port}" if port is not None else ""
    raw = "|".join((rule_id, asset, where, discriminator))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredFinding:
    """A finding as the store keeps it, with its lifecycle."""

    fingerprint: str
    rule_id: str
    severity: Severity
    confidence: Confidence
    title: str
    host: str
    port: int | None
    proto: str | None
    status: FindingStatus
    first_seen: str  # ISO 8601 UTC
    last_seen: str
    last_scan_id: int
    hostname: str | None = None
    discriminator: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    cves: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    status_note: str | None = None
    accept_expires: str | None = None  # ISO date
    fixed_at: str | None = None


def host_sort_key(host: str) -> tuple[int, int, str]:
    """IPv4 addresses in numeric order (127.0.0.2 before 127.0.0.10), then IPv6, then names."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (2, 0, host)
    return (0 if address.version == 4 else 1, int(address), host)


def finding_sort_key(finding: Finding | StoredFinding) -> tuple[Any, ...]:
    """The one order of findings, for the store, the CLI and every report.

    Highest severity first, then host (`host_sort_key`), port (host-level findings, port None,
    first), protocol, rule id; the fingerprint last so that equal keys never tie.
    """
    port = (0, 0) if finding.port is None else (1, finding.port)
    return (
        -finding.severity.rank,
        host_sort_key(finding.host),
        port,
        finding.proto or "",
        finding.rule_id,
        finding.fingerprint,
    )


class ScanStatus(enum.Enum):
    RUNNING = "running"  # started, or killed midway (resumable)
    COMPLETED = "completed"  # every target scanned: may mark absent findings fixed
    FAILED = "failed"  # the scan itself failed (exit 3); never closes findings
    INTERRUPTED = "interrupted"  # stopped by the user (Ctrl-C); resumable


# Keys of ScanRecord.options that record what a --resume needs (expanded targets and scope,
# name labels, rule ids): bookkeeping, not settings a person chose, so reports leave them out.
RESUME_OPTION_KEYS = frozenset({"expanded_targets", "hostnames", "expanded_scope", "rule_ids"})


@dataclass(frozen=True)
class ScanRecord:
    """One `posture scan` run as the store keeps it."""

    id: int
    started: str  # ISO 8601 UTC
    status: ScanStatus
    targets: tuple[str, ...]  # the target specs as given
    scope: tuple[str, ...]
    excludes: tuple[str, ...]
    packs: tuple[str, ...]  # "name@version"
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)  # ports, timeout, ...
    finished: str | None = None
    hosts_total: int = 0
    hosts_done: int = 0
    error: str | None = None
