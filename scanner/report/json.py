"""JSON report: the whole report as one documented, versioned structure.

Layout (`schema_version` 1; strings from targets and rule packs are control-escaped and clipped as
in every format):

    {"schema_version": 1, "profile": "technical", "generated_at": ISO,
     "tool": {"name": "posture", "version": str},
     "scan": SCAN | null,  "scans": [SCAN],
     "summary": {"total": int, "by_severity": {severity: int}, "by_status": {status: int}},
     "hosts": {"by_state": {state: int}, "not_covered": [{"address", "hostname", "state",
               "reason"}]},  # hosts of "scan"; by_state is {} when not known
     "findings": [{"fingerprint", "rule_id", "title", "severity", "confidence", "status", "host",
                   "hostname", "port", "proto", "discriminator", "evidence": {...}, "cves": [],
                   "controls": [], "first_seen", "last_seen", "last_scan_id", "status_note",
                   "accept_expires", "fixed_at", "new": bool | null, "owner": str}],
                 # `posture findings --json`'s fields (scanner.store.export) plus "new" and
                 # "owner" (a name, or "unassigned")
     "rules": {rule_id: {"id", "title", "severity", "description", "remediation", "references",
                         "controls", "pack", "known": bool}},
     "tls": [{"host", "port", "sni", "starttls", "grade", "caps": [str], "versions": [str],
              "certificate_days_left", "trusted", "error"}],  # the TLS endpoints of "scan"
     "vulnerabilities": [{"id", "cves", "host", "hostname", "port", "proto", "product",
                          "version", "fixed_version", "cvss", "severity", "kev",
                          "kev_ransomware", "epss", "priority", "confidence", "source",
                          "reason", "status", "fingerprint"}]}
                 # open vulnerability findings, most urgent first (scanner.report.vulns)
    SCAN = {"id", "status", "started", "finished", "targets", "scope", "excludes", "packs",
            "options", "hosts_total", "hosts_done", "error"}  # scanner.store.export too
"""

from __future__ import annotations

from typing import Any

from scanner.rating.summary import tls_summary
from scanner.report.escape import clean_json, dump_json
from scanner.report.interface import ReportData, ReportFormat
from scanner.report.view import RuleView, build_view, ordered
from scanner.report.vulns import vulnerability_rows
from scanner.store.export import finding_as_dict, scan_as_dict

SCHEMA_VERSION = 1


# JSON (like CSV) is produced by its serializer, not a Jinja template: quoting and escaping are
# only correct when the serializer that owns the syntax does them.
class JsonFormat(ReportFormat):
    name = "json"
    extension = "json"

    def render(self, data: ReportData) -> str:
        report = build_view(data)
        document = {
            "schema_version": SCHEMA_VERSION,
            "profile": "technical",
            "generated_at": report.generated_at,
            "tool": {"name": "posture", "version": report.tool_version},
            "scan": _clean(scan_as_dict(data.scan)) if data.scan else None,
            "scans": [_clean(scan_as_dict(s)) for s in data.scans],
            "summary": {
                "total": len(report.findings),
                "by_severity": {s.value: n for s, n in report.severity_counts.items()},
                "by_status": {s.value: n for s, n in report.status_counts.items()},
            },
            "hosts": {
                "by_state": {s.value: n for s, n in report.host_states.items()},
                "not_covered": [
                    {
                        "address": h.address,
                        "hostname": h.hostname,
                        "state": h.state.value,
                        "reason": h.reason,
                    }
                    for h in report.uncovered_hosts
                ],
            },
            # the same fields as `posture findings --json`, plus whether the scan saw it first
            "findings": [
                {
                    **_clean(finding_as_dict(f)),
                    "new": data.is_new(f),
                    "owner": clean_json(data.owner_of(f)),
                }
                for f in ordered(data.findings)
            ],
            "rules": {r.id: rule_json(r) for r in report.rules},
            "tls": [_clean(tls_summary(e)) for e in data.tls_endpoints],
            # open vulnerability findings, most urgent first (KEV, EPSS, CVSS)
            "vulnerabilities": [
                _clean(row.as_dict())
                for row in vulnerability_rows(f for f in data.findings if f.status.is_active)
            ],
        }
        return dump_json(document)


def rule_json(r: RuleView) -> dict[str, Any]:
    return {
        "id": r.id,
        "title": r.title,
        "severity": r.severity.value,
        "description": r.description,
        "remediation": r.remediation,
        "references": list(r.references),
        "controls": list(r.controls),
        "pack": r.pack,
        "known": r.known,
    }


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    # each field is bounded on its own, so evidence keeps its whole nesting allowance
    return {key: clean_json(value) for key, value in record.items()}
