"""A findings store for looking at reports in a browser: two scans whose findings carry hostile
titles, host names and banners, open at every severity, overdue, and mapped to PCI DSS controls.

What each profile must show was worked out by hand from the two scans below (see EXPECTED_*).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from report_data import CSI, HOSTILE, HUGE, IMG, SCRIPT

from scanner.cli import cli
from scanner.model import Confidence, Finding, Host, HostState, ScanStatus, Service, Severity
from scanner.store.db import Store

PACK = """\
pack: browsertest
version: "1.0.0"
rules:
  - id: browsertest.admin-panel
    title: Admin panel exposed
    severity: critical
    when: {service.name: http}
    references: [https://example.org/rules]
    remediation: Put the admin panel behind the VPN.
    controls: [PCI-DSS-4.0:2.2.4]
  - id: browsertest.redis-open
    title: Redis answers without authentication
    severity: high
    when: {redis.unauthenticated: true}
    references: [https://example.org/rules]
    remediation: Set requirepass and bind Redis to a private interface.
    controls: [PCI-DSS-4.0:8.3.1, CIS-8:4.8]
  - id: browsertest.ftp-anonymous
    title: FTP allows anonymous login
    severity: medium
    when: {ftp.anonymous: true}
    references: [https://example.org/rules]
    remediation: Disable anonymous FTP.
    controls: [PCI-DSS-4.0:2.2.5]
  - id: browsertest.tls10
    title: TLS 1.0 is offered
    severity: medium
    when: {tls.fallback_scsv: false}
    references: [https://example.org/rules]
    remediation: Offer TLS 1.2 and 1.3 only.
    controls: [PCI-DSS-4.0:4.2.1]
  - id: browsertest.banner
    title: Service banner discloses its version
    severity: low
    when: {service.method: probed}
    references: [https://example.org/rules]
    remediation: Hide the version in the banner.
    controls: [CIS-8:4.1]
  - id: browsertest.never-run
    title: A rule no scan evaluated
    severity: low
    when: {memcached.unauthenticated: true}
    references: [https://example.org/rules]
    remediation: Nothing to do.
    controls: [PCI-DSS-4.0:12.3.1]
"""

# a finding title of every kind of hostile text, and long: what a target's web page could set
ADMIN_TITLE = f"Admin panel exposed {HOSTILE}" + "B" * 3000
ADMIN = Finding(
    rule_id="browsertest.admin-panel",
    severity=Severity.CRITICAL,
    confidence=Confidence.FIRM,
    title=ADMIN_TITLE,
    host="127.0.102.10",
    port=80,
    proto="tcp",
    hostname=f"admin{SCRIPT}.lab",
    evidence={"title": f"{SCRIPT}{IMG}{CSI}"},
)
REDIS = Finding(
    rule_id="browsertest.redis-open",
    severity=Severity.HIGH,
    confidence=Confidence.CERTAIN,
    title="Redis answers without authentication",
    host="127.0.102.11",
    port=6379,
    proto="tcp",
    evidence={"redis.version": "7.0.15"},
)
FTP = Finding(
    rule_id="browsertest.ftp-anonymous",
    severity=Severity.MEDIUM,
    confidence=Confidence.FIRM,
    title="FTP allows anonymous login",
    host="127.0.102.12",
    port=21,
    proto="tcp",
)
TLS10 = Finding(
    rule_id="browsertest.tls10",
    severity=Severity.MEDIUM,
    confidence=Confidence.CERTAIN,
    title="TLS 1.0 is offered",
    host="127.0.102.12",
    port=443,
    proto="tcp",
)
BANNER = Finding(
    rule_id="browsertest.banner",
    severity=Severity.LOW,
    confidence=Confidence.TENTATIVE,
    title="Service banner discloses its version",
    host="127.0.102.13",
    port=8080,
    proto="tcp",
    hostname=HOSTILE,
    evidence={"banner": HOSTILE + HUGE},
)
SCANNED_RULES = [f.rule_id for f in (ADMIN, REDIS, FTP, TLS10, BANNER)]  # never-run is not

# Scan 1: admin panel, Redis, FTP. Scan 2: admin panel and Redis again, FTP gone (fixed), TLS 1.0
# and the banner new. Both ran 60 days ago, so the critical (7 days) and high (30 days) findings
# are overdue and the medium and low ones are not.
EXPECTED_OPEN = {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 0}
EXPECTED_CHANGE = {"critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0}
EXPECTED_OVERDUE = ("Admin panel exposed", "Redis answers without authentication")
# PCI DSS: 2.2.4 (admin), 4.2.1 (TLS 1.0) and 8.3.1 (Redis) fail, 2.2.5 passes (FTP fixed by a
# scan that evaluated it), 12.3.1 was never tested.
EXPECTED_CONTROLS = {"2.2.4": "fail", "2.2.5": "pass", "4.2.1": "fail", "8.3.1": "fail",
                     "12.3.1": "not tested"}  # fmt: skip


class Clock:
    """Store time 60 days ago, moving a minute per reading."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _up(address: str, *ports: int) -> Host:
    services = tuple(Service(port=p, proto="tcp", state="open") for p in ports)
    return Host(address, HostState.UP, services=services)


def _scan(store: Store, hosts: list[Host], findings: list[Finding]) -> int:
    scan_id = store.create_scan(
        targets=["127.0.102.8/29"],
        scope=["127.0.102.0/24"],
        excludes=[],
        packs=["browsertest@1.0.0"],
        rules=SCANNED_RULES,
        options={"ports": "21,80,443,6379,8080"},
        hosts_total=len(hosts),
    )
    store.record_chunk(scan_id, hosts, findings, {"tcp": "21,80,443,6379,8080"})
    store.finish_scan(scan_id, ScanStatus.COMPLETED)
    return scan_id


@pytest.fixture
def hostile_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working folder (posture.db and pack.yaml in it) of the two scans above."""
    monkeypatch.chdir(tmp_path)  # no posture.toml of the checkout's
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    with Store(tmp_path / "posture.db", clock=Clock()) as store:
        _scan(
            store,
            [_up("127.0.102.10", 80), _up("127.0.102.11", 6379), _up("127.0.102.12", 21)],
            [ADMIN, REDIS, FTP],
        )
        _scan(
            store,
            [
                _up("127.0.102.10", 80),
                _up("127.0.102.11", 6379),
                _up("127.0.102.12", 443),
                _up("127.0.102.13", 8080),
            ],
            [ADMIN, REDIS, TLS10, BANNER],
        )
    yield tmp_path


def report(*args: str) -> Result:
    """`posture report` with the pack and database of `hostile_store`."""
    return CliRunner().invoke(
        cli, ["report", "--rules", "pack.yaml", "--db", "posture.db", *args],
        catch_exceptions=False,
    )  # fmt: skip
