"""Which scanned ports get a TLS assessment, and how they are reached."""

from __future__ import annotations

import pytest

from scanner.model import Host, HostState, Service
from scanner.probes.tls.hosts import tls_endpoint_for
from scanner.probes.tls.model import StartTls

HOST = Host("127.0.86.1", HostState.UP, hostname="www.example.test")


def svc(port: int, name: str | None = None, **extra: object) -> Service:
    return Service(port=port, proto="tcp", state="open", name=name, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("service", "starttls"),
    [
        (svc(8080, "http", tunnel="ssl", method="probed"), None),  # nmap found TLS
        (svc(4433, "https", method="probed"), None),
        (svc(443), None),  # unidentified well-known TLS port
        (svc(443, "tcpwrapped", method="probed"), None),
        (svc(993, "imaps", method="probed"), None),
        (svc(25, "smtp", method="probed"), StartTls.SMTP),
        (svc(2525, "smtp", method="probed"), StartTls.SMTP),  # moved, still SMTP
        (svc(587, "submission", method="probed"), StartTls.SMTP),
        (svc(143, "imap", method="probed"), StartTls.IMAP),
        (svc(110, "pop3", method="probed"), StartTls.POP3),
        (svc(21, "ftp", method="probed"), StartTls.FTP),
        (svc(5432, "postgresql", method="probed"), StartTls.POSTGRES),
        (svc(5432), StartTls.POSTGRES),
    ],
)
def test_assessed(service: Service, starttls: StartTls | None) -> None:
    endpoint = tls_endpoint_for(HOST, service)
    assert endpoint is not None
    assert (endpoint.address, endpoint.port, endpoint.starttls) == (
        "127.0.86.1",
        service.port,
        starttls,
    )
    assert endpoint.sni == "www.example.test"


@pytest.mark.parametrize(
    "service",
    [
        svc(443, "http", method="probed"),  # nmap says plain HTTP
        svc(22, "ssh", method="probed"),
        svc(6379, "redis", method="probed"),
        svc(8443, "ssh", method="probed"),
        Service(port=443, proto="udp", state="open"),
        Service(port=443, proto="tcp", state="filtered"),
    ],
)
def test_not_assessed(service: Service) -> None:
    assert tls_endpoint_for(HOST, service) is None


def test_addresses_are_never_sent_as_sni() -> None:
    host = Host("127.0.86.2", HostState.UP, hostname="127.0.86.2")
    endpoint = tls_endpoint_for(host, svc(443))
    assert endpoint is not None and endpoint.sni is None
