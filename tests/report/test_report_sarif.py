"""SARIF output validates against the OASIS SARIF 2.1.0 schema and says what consumers read."""

from __future__ import annotations

import pytest
from report_checks import assert_valid_sarif
from report_data import make_data, make_finding, make_scan

from scanner.model import ScanStatus, Severity
from scanner.report import FORMATS
from scanner.report.interface import ReportData
from scanner.report.sarif import FINGERPRINT_KEY


def sarif(data: ReportData) -> dict:
    return assert_valid_sarif(FORMATS["sarif"].render(data))


def test_rules_results_and_fingerprints(ordinary: ReportData) -> None:
    document = sarif(ordinary)
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "posture"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["redis-no-auth", "ftp-anonymous", "retired-rule"]
    redis = rules[0]
    assert redis["name"] == "RedisAnswersWithoutAuthentication"
    assert redis["properties"]["security-severity"] == "8.0"
    assert redis["properties"]["tags"] == ["security", "CIS-8:4.8", "NIST-800-53:AC-3"]
    assert redis["defaultConfiguration"] == {"level": "error"}
    assert redis["help"]["text"].startswith("Set `requirepass`")
    assert "<https://redis.io/docs/" in redis["help"]["markdown"]
    assert rules[1]["properties"]["security-severity"] == "5.5"
    assert "help" not in rules[2]  # not in the loaded packs: no remediation to give

    results = run["results"]
    assert len(results) == len(ordinary.findings)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    by_rule = {r["ruleId"]: r for r in results}
    redis_result = by_rule["redis-no-auth"]
    finding = next(f for f in ordinary.findings if f.rule_id == "redis-no-auth")
    assert redis_result["partialFingerprints"] == {FINGERPRINT_KEY: finding.fingerprint}
    assert redis_result["level"] == "error"
    assert redis_result["baselineState"] == "new"
    assert redis_result["locations"] == [
        {
            "logicalLocations": [{"name": "127.0.31.2:6379/tcp", "kind": "host"}],
            "properties": {"host": "127.0.31.2", "port": 6379, "proto": "tcp"},
        }
    ]
    assert redis_result["properties"]["status"] == "open"
    assert redis_result["properties"]["confidence"] == "certain"
    assert redis_result["properties"]["evidence"] == dict(finding.evidence)
    assert by_rule["ftp-anonymous"]["baselineState"] == "unchanged"
    assert by_rule["ftp-anonymous"]["level"] == "warning"
    host_level = by_rule["retired-rule"]
    assert host_level["level"] == "note"
    assert host_level["locations"][0]["logicalLocations"] == [
        {"name": "127.0.31.4", "kind": "host"}
    ]

    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    assert invocation["startTimeUtc"] == "2026-11-24T01:00:00Z"
    assert invocation["endTimeUtc"] == "2026-11-24T01:05:00Z"
    assert invocation["toolExecutionNotifications"] == [
        {
            "level": "warning",
            "message": {"text": "not covered: 127.0.31.9 (slow.lab): timeout, host timeout 30s"},
        }
    ]


@pytest.mark.parametrize("severity", list(Severity))
def test_security_severity_and_level_per_severity(severity: Severity) -> None:
    expected = {
        Severity.CRITICAL: ("9.5", "error"),
        Severity.HIGH: ("8.0", "error"),
        Severity.MEDIUM: ("5.5", "warning"),
        Severity.LOW: ("3.0", "note"),
        Severity.INFO: ("0.0", "note"),
    }[severity]
    finding = make_finding(rule_id="x.y", severity=severity)
    (run,) = sarif(make_data((finding,), rules={}))["runs"]
    (rule,) = run["tool"]["driver"]["rules"]
    assert (rule["properties"]["security-severity"], rule["defaultConfiguration"]["level"]) == (
        expected
    )
    assert run["results"][0]["level"] == expected[1]


def test_a_failed_running_scan_and_unknown_newness() -> None:
    scan = make_scan(status=ScanStatus.FAILED, finished=None, error="nmap exited with 1")
    data = make_data((make_finding(),), scan=scan, new_fingerprints=None)
    (run,) = sarif(data)["runs"]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "endTimeUtc" not in invocation
    assert invocation["toolExecutionNotifications"][0]["level"] == "error"
    assert "baselineState" not in run["results"][0]


def test_no_scan_and_no_findings_is_still_valid() -> None:
    (run,) = sarif(make_data((), scan=None, scans=()))["runs"]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert "invocations" not in run
