"""Stored findings, events and scans as plain JSON-ready dicts (for `--json` and reports)."""

from __future__ import annotations

from typing import Any

from scanner.model import ScanRecord, StoredFinding
from scanner.store.rows import FindingEvent, OwnerAssignment


def finding_as_dict(finding: StoredFinding) -> dict[str, Any]:
    return {
        "fingerprint": finding.fingerprint,
        "rule_id": finding.rule_id,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "title": finding.title,
        "host": finding.host,
        "hostname": finding.hostname,
        "port": finding.port,
        "proto": finding.proto,
        "discriminator": finding.discriminator,
        "status": finding.status.value,
        "evidence": dict(finding.evidence),
        "cves": list(finding.cves),
        "controls": list(finding.controls),
        "first_seen": finding.first_seen,
        "last_seen": finding.last_seen,
        "last_scan_id": finding.last_scan_id,
        "fixed_at": finding.fixed_at,
        "status_note": finding.status_note,
        "accept_expires": finding.accept_expires,
    }


def event_as_dict(event: FindingEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value,
        "scan_id": event.scan_id,
        "note": event.note,
        "actor": event.actor,
    }


def owner_assignment_as_dict(assignment: OwnerAssignment) -> dict[str, Any]:
    return {
        "at": assignment.at,
        "owner": assignment.owner,
        "contact": assignment.contact,
        "note": assignment.note,
        "actor": assignment.actor,
    }


def scan_as_dict(scan: ScanRecord) -> dict[str, Any]:
    return {
        "id": scan.id,
        "started": scan.started,
        "finished": scan.finished,
        "status": scan.status.value,
        "hosts_total": scan.hosts_total,
        "hosts_done": scan.hosts_done,
        "targets": list(scan.targets),
        "scope": list(scan.scope),
        "excludes": list(scan.excludes),
        "packs": list(scan.packs),
        "options": dict(scan.options),
        "error": scan.error,
    }
