"""Report data built by hand: findings, scans and rules, ordinary and hostile."""

from __future__ import annotations

import dataclasses
from typing import Any

from scanner.model import (
    Confidence,
    FindingStatus,
    ScanRecord,
    ScanStatus,
    Severity,
    StoredFinding,
    fingerprint,
)
from scanner.report.interface import ReportData

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
CSI = "\x1b[31m"
OSC = "\x1b]8;;http://evil\x07"
MARKDOWN = "a|b `code` [link](http://evil) ![img](http://evil/x.png) *em* _u_ \\"
FORMULA = "=cmd|' /C calc'!A0"
HUGE = "A" * 100_000
HOSTILE = f"{SCRIPT}{IMG}{CSI}red{OSC}link\x1b]8;;\x07{MARKDOWN}\r\n{FORMULA}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule as the rule engine gives it (attributes of scanner.report.interface.RuleInfo)."""

    id: str
    title: str
    severity: Severity
    description: str | None
    remediation: str
    references: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    pack: str = "baseline"


def make_scan(**changes: Any) -> ScanRecord:
    scan = ScanRecord(
        id=7,
        started="2026-11-24T01:00:00Z",
        finished="2026-11-24T01:05:00Z",
        status=ScanStatus.COMPLETED,
        targets=("127.0.31.0/29",),
        scope=("127.0.31.0/24",),
        excludes=(),
        packs=("baseline@1.0.0",),
        options={"ports": "21,6379", "timeout": "30s"},
        hosts_total=8,
        hosts_done=7,
    )
    return dataclasses.replace(scan, **changes)


def make_finding(**changes: Any) -> StoredFinding:
    values: dict[str, Any] = {
        "rule_id": "redis-no-auth",
        "severity": Severity.HIGH,
        "confidence": Confidence.CERTAIN,
        "title": "Redis answers without authentication",
        "host": "127.0.31.2",
        "port": 6379,
        "proto": "tcp",
        "status": FindingStatus.OPEN,
        "first_seen": "2026-11-24T01:01:00Z",
        "last_seen": "2026-11-24T01:01:00Z",
        "last_scan_id": 7,
        "hostname": "cache.lab",
        "evidence": {"banner": "redis_version:7.0.15", "checks": {"auth_required": False}},
        "controls": ("CIS-8:4.8",),
    }
    values.update(changes)
    values.setdefault(
        "fingerprint",
        fingerprint(values["rule_id"], values["host"], values["proto"], values["port"]),
    )
    return StoredFinding(**values)


REDIS_RULE = Rule(
    id="redis-no-auth",
    title="Redis answers without authentication",
    severity=Severity.HIGH,
    description="Anyone who reaches the port can read and write the data set.",
    remediation="Set `requirepass` or ACLs and bind Redis to a private interface.",
    references=("https://redis.io/docs/latest/operate/oss_and_stack/management/security/",),
    controls=("CIS-8:4.8", "NIST-800-53:AC-3"),
)
FTP_RULE = Rule(
    id="ftp-anonymous",
    title="FTP allows anonymous login",
    severity=Severity.MEDIUM,
    description=None,
    remediation="Disable anonymous FTP.",
    controls=("PCI-DSS-4.0:2.2.4",),
)


def make_data(findings: tuple[StoredFinding, ...], **changes: Any) -> ReportData:
    scan = changes.pop("scan", make_scan())
    values: dict[str, Any] = {
        "generated_at": "2026-11-24T02:00:00Z",
        "tool_version": "0.1.0",
        "scan": scan,
        "scans": (scan,),
        "findings": findings,
        "rules": {REDIS_RULE.id: REDIS_RULE, FTP_RULE.id: FTP_RULE},
        "new_fingerprints": frozenset(),
    }
    values.update(changes)
    return ReportData(**values)


def hostile_rule(rule_id: str) -> Rule:
    return Rule(
        id=rule_id,
        title=f"title {HOSTILE}",
        severity=Severity.CRITICAL,
        description=f"description {HOSTILE}{HUGE}",
        remediation=f"remediation {HOSTILE}{HUGE}",
        references=(f"javascript:alert(1)//{HOSTILE}", f"https://example.org/{IMG}", HUGE),
        controls=(HOSTILE, HUGE),
    )
