"""Fixtures: report data built by hand (report_data.py), ordinary and hostile."""

from __future__ import annotations

import pytest
from report_data import (
    CSI,
    FORMULA,
    HOSTILE,
    HUGE,
    SCRIPT,
    hostile_rule,
    make_data,
    make_finding,
    make_scan,
)

from scanner.model import Confidence, FindingStatus, Host, HostState, Severity
from scanner.report.interface import ReportData


@pytest.fixture
def ordinary() -> ReportData:
    """Three findings: two of known rules (one new in the scan), one whose rule is not loaded."""
    redis = make_finding()
    ftp = make_finding(
        rule_id="ftp-anonymous",
        severity=Severity.MEDIUM,
        confidence=Confidence.FIRM,
        title="FTP allows anonymous login",
        host="127.0.31.3",
        hostname=None,
        port=21,
        evidence={"banner": "220 pyftpdlib ready"},
        controls=(),
        first_seen="2026-11-20T09:00:00Z",
        status=FindingStatus.REOPENED,
    )
    unknown = make_finding(
        rule_id="retired-rule",
        severity=Severity.LOW,
        title="A rule no pack defines any more",
        host="127.0.31.4",
        port=None,
        proto=None,
        evidence={},
        controls=(),
    )
    hosts = (
        Host("127.0.31.2", HostState.UP),
        Host("127.0.31.3", HostState.UP),
        Host("127.0.31.4", HostState.UP),
        Host("127.0.31.1", HostState.DOWN, reason="no-response"),
        Host("127.0.31.9", HostState.TIMEOUT, hostname="slow.lab", reason="host timeout 30s"),
    )
    return make_data(
        (ftp, unknown, redis), new_fingerprints=frozenset({redis.fingerprint}), scan_hosts=hosts
    )


@pytest.fixture
def hostile() -> ReportData:
    """Target and rule text that tries HTML/Markdown injection, terminal escapes, CSV formulas,
    and sheer size, in every field a target or a rule pack can fill."""
    rule_id = f"rule-{SCRIPT}{CSI}"
    findings = (
        make_finding(
            rule_id=rule_id,
            severity=Severity.CRITICAL,
            title=f"{HOSTILE}{HUGE}",
            host=f"host{HOSTILE}",
            hostname=f"{HOSTILE}{HUGE}",
            discriminator=HOSTILE,
            evidence={
                "banner": f"{HOSTILE}{HUGE}",
                f"key{HOSTILE}": [HOSTILE, {"deep": {"deeper": {"deepest": HUGE}}}],
                "many": list(range(1000)),
            },
            cves=(HOSTILE,),
            controls=(FORMULA, HOSTILE),
            status_note=f"{FORMULA}{HOSTILE}",
        ),
        make_finding(title=FORMULA, hostname="-1+2", evidence={"banner": "@SUM(A1)"}),
        make_finding(rule_id="not-loaded", title=f"{HOSTILE}", host="127.0.31.5", port=None),
    )
    scan = make_scan(targets=(HOSTILE, HUGE), error=f"{HOSTILE}{HUGE}", options={"x": HOSTILE})
    hosts = (Host(f"h{SCRIPT}", HostState.ERROR, hostname=HOSTILE, reason=f"{HOSTILE}{HUGE}"),)
    return make_data(findings, scan=scan, rules={rule_id: hostile_rule(rule_id)}, scan_hosts=hosts)
