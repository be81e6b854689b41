"""Fingerprints and severities: the identity of a finding across scans."""

from __future__ import annotations

import hashlib

import pytest

from scanner.model import Confidence, Finding, Severity, fingerprint


def finding(**changes: object) -> Finding:
    base: dict[str, object] = {
        "rule_id": "baseline.telnet-exposed",
        "severity": Severity.HIGH,
        "confidence": Confidence.FIRM,
        "title": "Telnet service exposed",
        "host": "10.0.0.5",
        "port": 23,
        "proto": "tcp",
    }
    base.update(changes)
    return Finding(**base)  # type: ignore[arg-type]


def test_fingerprint_is_sha256_of_rule_asset_where_and_discriminator() -> None:
    expected = hashlib.sha256(b"baseline.telnet-exposed|10.0.0.5|tcp/23|").hexdigest()
    assert finding().fingerprint == expected
    host_level = fingerprint("r.host", "10.0.0.5", None, None)
    assert host_level == hashlib.sha256(b"r.host|10.0.0.5||").hexdigest()


def test_text_severity_evidence_and_hostname_do_not_fork_a_finding() -> None:
    reworded = finding(
        title="Telnet is open (cleartext)",
        severity=Severity.CRITICAL,
        confidence=Confidence.CERTAIN,
        evidence={"banner": "login:"},
        hostname="legacy.corp",
        controls=("CIS-8:4.8",),
    )
    assert reworded.fingerprint == finding().fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"rule_id": "baseline.ftp-cleartext"},
        {"host": "10.0.0.6"},
        {"port": 2323},
        {"proto": "udp"},
        {"discriminator": "TLSv1.0"},
    ],
)
def test_each_identity_part_changes_the_fingerprint(change: dict[str, object]) -> None:
    assert finding(**change).fingerprint != finding().fingerprint


def test_severity_order_and_parsing() -> None:
    ordered = sorted(Severity, key=lambda s: s.rank, reverse=True)
    assert [s.value for s in ordered] == ["critical", "high", "medium", "low", "info"]
    assert Severity.HIGH.at_least(Severity.MEDIUM) and not Severity.LOW.at_least(Severity.HIGH)
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        Severity.parse("urgent")
