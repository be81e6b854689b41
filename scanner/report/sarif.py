"""SARIF 2.1.0 report: one run, the rules used, one result per finding.

Network findings have no file, so a result's location is a logical location named
"host:port/proto" of kind "host"; `partialFingerprints` carries posture's fingerprint so that
SARIF consumers track a finding across scans as posture does.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from scanner.model import ScanStatus, Severity
from scanner.report.escape import dump_json, is_web_url, markdown_escape, markdown_reference
from scanner.report.interface import ReportData, ReportFormat
from scanner.report.view import FindingView, HostView, RuleView, ScanView, build_view

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "postureFingerprint/v1"

# GitHub code scanning reads `security-severity` as a CVSS-like score given as a string.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


class SarifFormat(ReportFormat):
    name = "sarif"
    extension = "sarif"

    def render(self, data: ReportData) -> str:
        report = build_view(data)
        rule_index = {rule.id: i for i, rule in enumerate(report.rules)}
        run: dict[str, Any] = {
            "tool": {"driver": _driver(report.tool_version, report.rules)},
            "results": [_result(f, rule_index[f.rule.id]) for f in report.findings],
        }
        if report.scan is not None:
            run["invocations"] = [_invocation(report.scan, report.uncovered_hosts)]
            run["properties"] = {"scanId": report.scan.id, "targets": list(report.scan.targets)}
        document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
        return dump_json(document)


@functools.cache
def _information_uri() -> str | None:
    """The project's home page ([project.urls] in pyproject.toml), when it declares one."""
    try:
        meta = metadata.metadata("posture")
    except metadata.PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or ():
        _label, _, url = entry.partition(",")
        if url.strip().startswith("https://"):
            return url.strip()
    return None


def _driver(version: str, rules: tuple[RuleView, ...]) -> dict[str, Any]:
    driver: dict[str, Any] = {
        "name": "posture",
        "version": version,
        "semanticVersion": version,
        "rules": [_rule(r) for r in rules],
    }
    uri = _information_uri()
    if uri:
        driver["informationUri"] = uri
    return driver


def _rule_name(title: str) -> str:
    """SARIF wants a name like an identifier: the title's words in PascalCase."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words)[:100] or "Rule"


def _rule(rule: RuleView) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": _rule_name(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": list(dict.fromkeys(("security", *rule.controls))),  # SARIF: unique
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "severity": rule.severity.value,
        },
    }
    if rule.pack:
        descriptor["properties"]["pack"] = rule.pack
    if rule.remediation is not None:
        descriptor["help"] = {"text": rule.remediation, "markdown": _help_markdown(rule)}
    web_references = [r for r in rule.references if is_web_url(r)]
    if web_references:
        descriptor["helpUri"] = web_references[0]
    return descriptor


def _help_markdown(rule: RuleView) -> str:
    parts = [f"**Remediation:** {markdown_escape(rule.remediation)}"]
    if rule.references:
        parts.append(
            "**References:**\n\n" + "\n".join(f"- {markdown_reference(r)}" for r in rule.references)
        )
    if rule.controls:
        parts.append("**Controls:** " + markdown_escape(", ".join(rule.controls)))
    return "\n\n".join(parts)


def _result(f: FindingView, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "status": f.status.value,
        "confidence": f.confidence.value,
        "evidence": dict(f.evidence),
        "firstSeen": f.first_seen,
        "lastSeen": f.last_seen,
    }
    if f.cves:
        properties["cves"] = list(f.cves)
    if f.status_note:
        properties["statusNote"] = f.status_note
    result: dict[str, Any] = {
        "ruleId": f.rule.id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": f"{f.title} on {f.location}"},
        "locations": [
            {
                "logicalLocations": [{"name": f.location, "kind": "host"}],
                "properties": {"host": f.host, "port": f.port, "proto": f.proto},
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": properties,
    }
    if f.new is not None:
        result["baselineState"] = "new" if f.new else "unchanged"
    return result


def _invocation(scan: ScanView, uncovered: tuple[HostView, ...]) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": scan.status == ScanStatus.COMPLETED.value}
    for key, when in (("startTimeUtc", scan.started), ("endTimeUtc", scan.finished)):
        utc = _utc(when)
        if utc:
            invocation[key] = utc
    notifications = [{"level": "error", "message": {"text": scan.error}}] if scan.error else []
    notifications += [
        {"level": "warning", "message": {"text": f"not covered: {h.description}"}}
        for h in uncovered
    ]
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _utc(iso: str | None) -> str | None:
    """SARIF times are UTC with a Z; a timestamp without a zone is taken as UTC, as stored."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
