"""Compliance views: per framework, each control the rule packs map to, as pass, fail or not
tested, with the findings and scans that prove it; and the scan-history evidence an auditor asks
for (PCI DSS 4.0 11.3.1: internal vulnerability scans, when, of what, how complete).

A control fails while any finding of a rule mapped to it is active (open or reopened). It
passes when a completed scan in the window evaluated at least one of its rules and none of them
has an active finding; findings a person accepted as a risk or marked false positive are listed
as exceptions. Otherwise it was not tested: no completed scan in the window evaluated its rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanRecord, ScanStatus, StoredFinding, finding_sort_key
from scanner.store.export import scan_as_dict

if TYPE_CHECKING:
    from scanner.store.db import Store

FRAMEWORKS: Mapping[str, str] = {
    "pci-dss-4.0": "PCI-DSS-4.0",
    "cis-8": "CIS-8",
    "nist-800-53": "NIST-800-53",
}
FRAMEWORK_NAMES: Mapping[str, str] = {
    "pci-dss-4.0": "PCI DSS 4.0",
    "cis-8": "CIS Controls v8",
    "nist-800-53": "NIST SP 800-53",
}
_EXCEPTIONS = (FindingStatus.RISK_ACCEPTED, FindingStatus.FALSE_POSITIVE)


class MappedRule(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def controls(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ControlResult:
    control: str  # the framework's own id: "6.3.3", "7.4", "SI-2"
    status: str  # "pass" | "fail" | "not tested"
    rules: tuple[str, ...]
    failing: tuple[StoredFinding, ...]
    exceptions: tuple[StoredFinding, ...]
    tested_by: tuple[int, ...]  # completed scans in the window that evaluated its rules


@dataclass(frozen=True)
class ComplianceView:
    framework: str
    name: str
    controls: tuple[ControlResult, ...]
    scans: tuple[ScanRecord, ...]  # the window's scans, oldest first: the evidence table

    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "not tested": 0}
        for control in self.controls:
            counts[control.status] += 1
        return counts


def _control_key(control: str) -> tuple[object, ...]:
    """ "6.3.3" before "6.10", "SI-2" before "SI-10", "AC-6(2)" after "AC-6"."""
    parts: list[object] = []
    for piece in control.replace("(", ".").replace(")", "").replace("-", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


def compliance_view(
    framework: str,
    rules: Iterable[MappedRule],
    findings: Iterable[StoredFinding],
    scans: Iterable[ScanRecord],
    scan_rules: Mapping[int, frozenset[str]],
) -> ComplianceView:
    """`findings` in any status (current state); `scans` those of the window; `scan_rules` the
    rules each scan evaluated."""
    prefix = FRAMEWORKS.get(framework)
    if prefix is None:
        raise ConfigError(f"unknown framework {framework!r} (expected: {', '.join(FRAMEWORKS)})")
    by_control: dict[str, list[str]] = {}
    for rule in rules:
        for control in rule.controls:
            name, _, ident = control.partition(":")
            if name == prefix and ident:
                by_control.setdefault(ident, []).append(rule.id)
    by_rule: dict[str, list[StoredFinding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    window = sorted(scans, key=lambda s: s.id)
    completed = [s for s in window if s.status is ScanStatus.COMPLETED]
    results = []
    for control in sorted(by_control, key=_control_key):
        rule_ids = tuple(sorted(set(by_control[control])))
        mine = [f for r in rule_ids for f in by_rule.get(r, [])]
        failing = tuple(sorted((f for f in mine if f.status.is_active), key=finding_sort_key))
        exceptions = tuple(
            sorted((f for f in mine if f.status in _EXCEPTIONS), key=finding_sort_key)
        )
        tested = tuple(s.id for s in completed if scan_rules.get(s.id, frozenset()) & set(rule_ids))
        status = "fail" if failing else "pass" if tested else "not tested"
        results.append(ControlResult(control, status, rule_ids, failing, exceptions, tested))
    return ComplianceView(framework, FRAMEWORK_NAMES[framework], tuple(results), tuple(window))


def store_compliance(
    store: Store, rules: Iterable[MappedRule], framework: str, first_day: date
) -> ComplianceView:
    """`compliance_view` of what the store holds: every finding, and the scans started on or
    after `first_day` as the evidence."""
    scans = [s for s in store.list_scans() if s.started[:10] >= first_day.isoformat()]
    return compliance_view(
        framework,
        rules,
        store.findings(statuses=list(FindingStatus)),
        scans,
        {s.id: store.scan_rules(s.id) for s in scans},
    )


def view_as_dict(view: ComplianceView) -> dict[str, Any]:
    return {
        "framework": view.framework,
        "name": view.name,
        "counts": view.counts(),
        "controls": [
            {
                "control": c.control,
                "status": c.status,
                "rules": list(c.rules),
                "failing": [f.fingerprint for f in c.failing],
                "exceptions": [f.fingerprint for f in c.exceptions],
                "tested_by_scans": list(c.tested_by),
            }
            for c in view.controls
        ],
        "scans": [
            {k: v for k, v in scan_as_dict(s).items() if k not in ("options", "packs")}
            for s in view.scans
        ],
    }


def render_compliance(view: ComplianceView, fmt: str, since: str, today: str, version: str) -> str:
    """The compliance profile of `posture report`: HTML (self-contained), Markdown or JSON."""
    from scanner.report.escape import clean
    from scanner.report.templates import html_environment, markdown_environment

    if fmt == "json":
        return json.dumps({**view_as_dict(view), "since": since, "today": today}, indent=2) + "\n"
    context = {
        "v": view,
        "counts": view.counts(),
        "since": since,
        "today": today,
        "version": version,
        "clean": clean,
    }
    if fmt == "html":
        return html_environment().get_template("compliance.html.j2").render(**context)
    if fmt == "md":
        return markdown_environment().get_template("compliance.md.j2").render(**context)
    raise ValueError(f"the compliance profile renders html, md or json, not {fmt}")


__all__ = [
    "FRAMEWORKS",
    "FRAMEWORK_NAMES",
    "ComplianceView",
    "ControlResult",
    "compliance_view",
    "render_compliance",
    "store_compliance",
    "view_as_dict",
]
