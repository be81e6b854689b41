"""Builders for store tests: a clock that moves only when told, and the facts a scan stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scanner.model import Confidence, Finding, Host, HostState, Service, Severity
from scanner.store import Store

START = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Facts:
    """Builders for the values a scan runner hands to the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def finding(
        rule: str = "ftp.anonymous",
        host: str = "127.0.0.1",
        port: int | None = 21,
        proto: str | None = "tcp",
        severity: Severity = Severity.HIGH,
        title: str = "Anonymous FTP login allowed",
        discriminator: str = "",
        **extra: object,
    ) -> Finding:
        return Finding(
            rule_id=rule,
            severity=severity,
            confidence=Confidence.CERTAIN,
            title=title,
            host=host,
            port=port,
            proto=proto if port is not None else None,
            discriminator=discriminator,
            **extra,  # type: ignore[arg-type]
        )

    @staticmethod
    def host(
        address: str = "127.0.0.1",
        state: HostState = HostState.UP,
        ports: Sequence[int] = (21,),
        reason: str | None = None,
        hostname: str | None = None,
    ) -> Host:
        services = tuple(Service(port=p, proto="tcp", state="open") for p in ports)
        return Host(
            address=address,
            state=state,
            hostname=hostname,
            services=services if state is HostState.UP else (),
            reason=reason,
        )

    def scan(
        self,
        rules: Sequence[str] = ("ftp.anonymous", "host.rule"),
        hosts_total: int = 1,
        targets: Sequence[str] = ("127.0.0.1",),
    ) -> int:
        return self.store.create_scan(
            targets=targets,
            scope=["127.0.0.0/8"],
            excludes=[],
            packs=["baseline@1"],
            rules=rules,
            options={"ports": "1-1024", "timeout": "5m"},
            hosts_total=hosts_total,
        )
