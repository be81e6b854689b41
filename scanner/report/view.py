"""The report as formats see it: every string from the store or a rule pack cleaned exactly once.

Formats render these views, never raw `StoredFinding`s (JSON passes the store's export dicts
through `clean_json`), so no format can forget to escape control characters or bound a field;
each format adds only its own escaping on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scanner.model import (
    RESUME_OPTION_KEYS,
    Confidence,
    FindingStatus,
    Host,
    HostState,
    ScanRecord,
    Severity,
    StoredFinding,
    finding_sort_key,
)
from scanner.probes.tls.model import TlsEndpoint
from scanner.rating.summary import tls_summary
from scanner.report.escape import (
    MAX_LIST,
    clean,
    clean_json,
    clean_list,
    clean_optional,
    evidence_lines,
)
from scanner.report.interface import SEVERITY_ORDER, ReportData, RuleInfo
from scanner.report.vulns import VulnRow, vulnerability_rows

RULE_TEXT_LIMIT = 4000  # rule descriptions and remediations are longer than target fields


@dataclass(frozen=True)
class RuleView:
    id: str
    title: str
    severity: Severity
    description: str | None
    remediation: str | None  # None: the rule is not in the loaded packs
    references: tuple[str, ...]
    controls: tuple[str, ...]
    pack: str | None
    known: bool  # found in the loaded rule packs


@dataclass(frozen=True)
class FindingView:
    fingerprint: str
    rule: RuleView
    title: str
    severity: Severity
    confidence: Confidence
    status: FindingStatus
    host: str
    hostname: str | None
    port: int | None
    proto: str | None
    discriminator: str
    evidence: Mapping[str, Any]  # clean JSON-like values
    evidence_lines: tuple[str, ...]
    cves: tuple[str, ...]
    controls: tuple[str, ...]
    first_seen: str
    last_seen: str
    last_scan_id: int
    status_note: str | None
    accept_expires: str | None
    fixed_at: str | None
    new: bool | None  # first observed in the reported scan; None: unknown
    owner: str = "unassigned"  # a person's assignment, else [[owners]] in posture.toml

    @property
    def location(self) -> str:
        """host:port/proto, or the host alone for host-level findings."""
        if self.port is None:
            return self.host
        return f"{self.host}:{self.port}/{self.proto or 'tcp'}"


@dataclass(frozen=True)
class ScanView:
    id: int
    started: str
    finished: str | None
    status: str
    targets: tuple[str, ...]
    scope: tuple[str, ...]
    excludes: tuple[str, ...]
    packs: tuple[str, ...]
    options: Mapping[str, Any]  # clean JSON-like values
    hosts_total: int
    hosts_done: int
    error: str | None

    @property
    def option_lines(self) -> tuple[str, ...]:
        return evidence_lines(self.options)


@dataclass(frozen=True)
class HostView:
    """A host the scan stored but did not cover (timed out or failed), and why."""

    address: str
    hostname: str | None
    state: HostState
    reason: str | None

    @property
    def description(self) -> str:
        """Address (hostname): state, reason."""
        text = f"{self.address} ({self.hostname})" if self.hostname else self.address
        text += f": {self.state.value}"
        return f"{text}, {self.reason}" if self.reason else text


@dataclass(frozen=True)
class TlsView:
    """One TLS endpoint of the scan: where, grade, versions, certificate, and what capped it."""

    endpoint: str
    grade: str
    versions: str
    certificate: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class VulnView:
    """One vulnerability finding, as the vulnerabilities table shows it (most urgent first)."""

    priority: str  # "KEV", "KEV, ransomware", "epss", "cvss"
    severity: Severity
    where: str
    software: str
    advisory: str
    cvss: str
    epss: str
    fixed_version: str
    confidence: str
    reason: str | None
    status: str


@dataclass(frozen=True)
class SeverityGroup:
    severity: Severity
    findings: tuple[FindingView, ...]


@dataclass(frozen=True)
class ReportView:
    generated_at: str
    tool_version: str
    scan: ScanView | None
    scans: tuple[ScanView, ...]
    findings: tuple[FindingView, ...]  # highest severity first, then host, port, rule
    rules: tuple[RuleView, ...]  # the rules of `findings`, in order of first use
    severity_counts: dict[Severity, int]
    status_counts: dict[FindingStatus, int]
    host_states: dict[HostState, int]  # hosts of `scan` per state; empty when not known
    uncovered_hosts: tuple[HostView, ...]  # timed out or failed, at most MAX_LIST of them
    tls: tuple[TlsView, ...] = ()  # the scan's TLS endpoints, at most MAX_LIST of them
    vulnerabilities: tuple[VulnView, ...] = ()  # most urgent first, at most MAX_LIST of them

    @property
    def groups(self) -> tuple[SeverityGroup, ...]:
        """Findings grouped by severity, highest first, empty groups left out."""
        return tuple(
            SeverityGroup(s, group)
            for s in SEVERITY_ORDER
            if (group := tuple(f for f in self.findings if f.severity is s))
        )


def build_view(data: ReportData) -> ReportView:
    rules: dict[str, RuleView] = {}
    findings = []
    for finding in ordered(data.findings):
        rule = rules.get(finding.rule_id)
        if rule is None:
            rule = rules[finding.rule_id] = _rule_view(finding, data.rules.get(finding.rule_id))
        findings.append(_finding_view(finding, rule, data.is_new(finding), data.owner_of(finding)))
    return ReportView(
        generated_at=clean(data.generated_at),
        tool_version=clean(data.tool_version),
        scan=_scan_view(data.scan) if data.scan else None,
        scans=tuple(_scan_view(s) for s in data.scans),
        findings=tuple(findings),
        rules=tuple(rules.values()),
        severity_counts=data.severity_counts,
        status_counts=data.status_counts,
        host_states=_host_states(data.scan_hosts),
        uncovered_hosts=tuple(_host_view(h) for h in data.scan_hosts if h.state in _UNCOVERED)[
            :MAX_LIST
        ],
        tls=tuple(_tls_view(e) for e in data.tls_endpoints[:MAX_LIST]),
        vulnerabilities=tuple(
            _vuln_view(row)
            for row in vulnerability_rows(f for f in data.findings if f.status.is_active)[:MAX_LIST]
        ),
    )


def _vuln_view(row: VulnRow) -> VulnView:
    priority = row.priority
    if row.kev:
        priority = "KEV, ransomware" if row.kev_ransomware else "KEV"
    return VulnView(
        priority=priority,
        severity=row.finding.severity,
        where=clean(row.where),
        software=clean(" ".join(p for p in (row.product, row.version) if p)),
        advisory=clean(row.advisory_id),
        cvss=f"{row.cvss:.1f}" if row.cvss is not None else "-",
        epss=f"{row.epss:.2f}" if row.epss is not None else "-",
        fixed_version=clean(row.fixed_version or "-"),
        confidence=row.finding.confidence.value,
        reason=clean_optional(row.reason),
        status=row.finding.status.value,
    )


def _tls_view(endpoint: TlsEndpoint) -> TlsView:
    summary = tls_summary(endpoint)
    where = f"{endpoint.host}:{endpoint.port}"
    if endpoint.starttls is not None:
        where += f" (STARTTLS {endpoint.starttls.value})"
    if endpoint.sni:
        where += f" SNI {endpoint.sni}"
    days = summary["certificate_days_left"]
    certificate = "-"
    if days is not None:
        certificate = f"{days} days left" + ("" if summary["trusted"] else ", not trusted")
    notes = [endpoint.error] if endpoint.error else summary["caps"]
    return TlsView(
        endpoint=clean(where),
        grade=summary["grade"] or "-",
        versions=", ".join(summary["versions"]) or "-",
        certificate=certificate,
        notes=tuple(clean(n) for n in notes[:10]),
    )


def display_time(iso: str | None) -> str:
    """An ISO 8601 timestamp as "YYYY-MM-DD HH:MM UTC" for people; unparsable text shown clean."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return clean(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def ordered(findings: Iterable[StoredFinding]) -> list[StoredFinding]:
    """In `finding_sort_key` order, the store's: severity, host, port, protocol, rule."""
    return sorted(findings, key=finding_sort_key)


def _rule_view(finding: StoredFinding, rule: RuleInfo | None) -> RuleView:
    if rule is None:
        return RuleView(
            id=clean(finding.rule_id),
            title=clean(finding.title),
            severity=finding.severity,
            description=None,
            remediation=None,
            references=(),
            controls=clean_list(finding.controls),
            pack=None,
            known=False,
        )
    return RuleView(
        id=clean(rule.id),
        title=clean(rule.title),
        severity=rule.severity,
        description=clean_optional(rule.description, RULE_TEXT_LIMIT),
        remediation=clean(rule.remediation, RULE_TEXT_LIMIT),
        references=clean_list(rule.references),
        controls=clean_list(rule.controls),
        pack=clean(rule.pack),
        known=True,
    )


def _finding_view(
    finding: StoredFinding, rule: RuleView, new: bool | None, owner: str = "unassigned"
) -> FindingView:
    evidence = clean_json(dict(finding.evidence))
    return FindingView(
        fingerprint=clean(finding.fingerprint),
        rule=rule,
        title=clean(finding.title),
        severity=finding.severity,
        confidence=finding.confidence,
        status=finding.status,
        host=clean(finding.host),
        hostname=clean_optional(finding.hostname),
        port=finding.port,
        proto=clean_optional(finding.proto, 16),
        discriminator=clean(finding.discriminator),
        evidence=evidence,
        evidence_lines=evidence_lines(evidence),
        cves=clean_list(finding.cves),
        # a finding carries the controls its rule had when it matched; fall back to the rule's
        controls=clean_list(finding.controls) or rule.controls,
        first_seen=clean(finding.first_seen),
        last_seen=clean(finding.last_seen),
        last_scan_id=finding.last_scan_id,
        status_note=clean_optional(finding.status_note),
        accept_expires=clean_optional(finding.accept_expires),
        fixed_at=clean_optional(finding.fixed_at),
        new=new,
        owner=clean(owner),
    )


_UNCOVERED = (HostState.TIMEOUT, HostState.ERROR)


def _host_states(hosts: tuple[Host, ...]) -> dict[HostState, int]:
    if not hosts:
        return {}
    return {state: sum(1 for h in hosts if h.state is state) for state in HostState}


def _host_view(host: Host) -> HostView:
    return HostView(
        address=clean(host.address),
        hostname=clean_optional(host.hostname),
        state=host.state,
        reason=clean_optional(host.reason),
    )


def _scan_view(scan: ScanRecord) -> ScanView:
    return ScanView(
        id=scan.id,
        started=clean(scan.started),
        finished=clean_optional(scan.finished),
        status=scan.status.value,
        targets=clean_list(scan.targets),
        scope=clean_list(scan.scope),
        excludes=clean_list(scan.excludes),
        packs=clean_list(scan.packs),
        options=clean_json({k: v for k, v in scan.options.items() if k not in RESUME_OPTION_KEYS}),
        hosts_total=scan.hosts_total,
        hosts_done=scan.hosts_done,
        error=clean_optional(scan.error, 2000),
    )
