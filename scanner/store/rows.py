"""Conversions between the store's table rows and the model's dataclasses."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.model import (
    Confidence,
    Finding,
    FindingStatus,
    ScanRecord,
    ScanStatus,
    Service,
    Severity,
    StoredFinding,
)
from scanner.probes.inventory import Inventory, OsRelease, Package
from scanner.probes.tls.export import endpoint_as_dict


@dataclass(frozen=True)
class FindingEvent:
    """One status change of a finding: by a scan (scan_id set) or by a person."""

    id: int
    fingerprint: str
    at: str  # ISO 8601 UTC
    from_status: FindingStatus | None  # None: the finding was created
    to_status: FindingStatus
    scan_id: int | None = None
    note: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class OwnerAssignment:
    """One change of a finding's owner by a person; `owner` None: the assignment was cleared."""

    fingerprint: str
    at: str  # ISO 8601 UTC
    owner: str | None
    contact: str | None = None
    note: str | None = None
    actor: str | None = None


def to_json(value: Any) -> str:
    """Stable JSON for a column; values JSON cannot hold (bytes, sets, ...) are kept as text."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _json_tuple(text: str | None) -> tuple[Any, ...]:
    return tuple(json.loads(text)) if text else ()


def _json_dict(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def finding_row(finding: Finding) -> dict[str, Any]:
    """The columns of a finding that every sighting refreshes (the fingerprint never changes)."""
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
        "evidence": to_json(dict(finding.evidence)),
        "cves": to_json(list(finding.cves)),
        "controls": to_json(list(finding.controls)),
    }


def service_row(scan_id: int, address: str, service: Service) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "address": address,
        "port": service.port,
        "proto": service.proto,
        "state": service.state,
        "name": service.name,
        "product": service.product,
        "version": service.version,
        "extrainfo": service.extrainfo,
        "tunnel": service.tunnel,
        "method": service.method,
        "conf": service.conf,
        "cpe": to_json(list(service.cpe)),
        "banner": service.banner,
        "checks": to_json({k: dict(v) for k, v in service.checks.items()}),
    }


def tls_row(scan_id: int, address: str, service: Service) -> dict[str, Any]:
    endpoint = service.tls
    assert endpoint is not None
    grade = service.checks.get("tls", {}).get("grade")
    return {
        "scan_id": scan_id,
        "address": address,
        "port": service.port,
        "sni": endpoint.sni,
        "starttls": endpoint.starttls.value if endpoint.starttls else None,
        "grade": grade if isinstance(grade, str) else None,
        "error": endpoint.error,
        "data": to_json(endpoint_as_dict(endpoint)),
    }


def inventory_row(scan_id: int, address: str, inventory: Inventory) -> dict[str, Any]:
    os = inventory.os
    packages = [[p.name, p.version, p.arch, p.source, p.source_version] for p in inventory.packages]
    return {
        "scan_id": scan_id,
        "address": address,
        "inventoried_as": inventory.host,
        "os_id": os.id if os else None,
        "os_version": os.version_id if os else None,
        "os_name": os.pretty_name if os else None,
        "kernel": inventory.kernel,
        "manager": inventory.manager,
        "package_count": len(inventory.packages),
        "packages": zlib.compress(to_json(packages).encode("utf-8"), 6),
        "sshd": to_json(dict(inventory.sshd)),
        "warnings": to_json(list(inventory.warnings)),
    }


def inventory_from_row(row: Mapping[str, Any]) -> Inventory:
    manager = row["manager"] or ""
    packages = tuple(
        Package(name, version, manager, arch, source, source_version)
        for name, version, arch, source, source_version in json.loads(
            zlib.decompress(row["packages"]).decode("utf-8")
        )
    )
    os = (
        OsRelease(row["os_id"], row["os_version"], row["os_name"])
        if row["os_id"] is not None
        else None
    )
    return Inventory(
        host=row["inventoried_as"],
        os=os,
        kernel=row["kernel"],
        manager=row["manager"],
        packages=packages,
        sshd=json.loads(row["sshd"]),
        warnings=tuple(json.loads(row["warnings"])),
    )


def service_from_row(row: Mapping[str, Any]) -> Service:
    return Service(
        port=row["port"],
        proto=row["proto"],
        state=row["state"],
        name=row["name"],
        product=row["product"],
        version=row["version"],
        extrainfo=row["extrainfo"],
        tunnel=row["tunnel"],
        method=row["method"],
        conf=row["conf"],
        cpe=_json_tuple(row["cpe"]),
        banner=row["banner"],
        checks=_json_dict(row["checks"]),
    )


def stored_finding_from_row(row: Mapping[str, Any]) -> StoredFinding:
    return StoredFinding(
        fingerprint=row["fingerprint"],
        rule_id=row["rule_id"],
        severity=Severity(row["severity"]),
        confidence=Confidence(row["confidence"]),
        title=row["title"],
        host=row["host"],
        port=row["port"],
        proto=row["proto"],
        status=FindingStatus(row["status"]),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        last_scan_id=row["last_scan_id"],
        hostname=row["hostname"],
        discriminator=row["discriminator"],
        evidence=_json_dict(row["evidence"]),
        cves=_json_tuple(row["cves"]),
        controls=_json_tuple(row["controls"]),
        status_note=row["status_note"],
        accept_expires=row["accept_expires"],
        fixed_at=row["fixed_at"],
    )


def scan_from_row(row: Mapping[str, Any]) -> ScanRecord:
    return ScanRecord(
        id=row["id"],
        started=row["started"],
        status=ScanStatus(row["status"]),
        targets=_json_tuple(row["targets"]),
        scope=_json_tuple(row["scope"]),
        excludes=_json_tuple(row["excludes"]),
        packs=_json_tuple(row["packs"]),
        options=_json_dict(row["options"]),
        finished=row["finished"],
        hosts_total=row["hosts_total"],
        hosts_done=row["hosts_done"],
        error=row["error"],
    )


def event_from_row(row: Mapping[str, Any]) -> FindingEvent:
    return FindingEvent(
        id=row["id"],
        fingerprint=row["fingerprint"],
        at=row["at"],
        from_status=FindingStatus(row["from_status"]) if row["from_status"] else None,
        to_status=FindingStatus(row["to_status"]),
        scan_id=row["scan_id"],
        note=row["note"],
        actor=row["actor"],
    )


def owner_assignment_from_row(row: Mapping[str, Any]) -> OwnerAssignment:
    return OwnerAssignment(
        fingerprint=row["fingerprint"],
        at=row["at"],
        owner=row["owner"],
        contact=row["contact"],
        note=row["note"],
        actor=row["actor"],
    )
