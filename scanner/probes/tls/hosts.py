"""Which ports of a scanned host speak TLS (nmap's ssl tunnel, TLS service names and ports,
STARTTLS services), and their assessment, all ports of a host sharing its connection cap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from scanner.model import Host, HostState, Service
from scanner.probes.tls.assess import TlsOptions, assess_endpoints, default_sni
from scanner.probes.tls.connection import STARTTLS_PORTS, Endpoint
from scanner.probes.tls.model import StartTls, TlsEndpoint

# nmap service names of protocols wrapped in TLS from the first byte.
TLS_NAMES = frozenset(
    {
        "https",
        "ssl",
        "ssl/http",
        "imaps",
        "pop3s",
        "smtps",
        "ldaps",
        "ftps",
        "ftps-data",
        "nntps",
        "ircs",
        "xmpps",
        "sip-tls",
        "ms-wbt-server-ssl",
        "https-alt",
        "docker-s",
    }
)
# Ports where TLS is the rule, used when nmap could not name what answers there.
TLS_PORTS = frozenset(
    {
        443,
        465,
        563,
        636,
        853,
        989,
        990,
        992,
        993,
        994,
        995,
        2376,
        3269,
        4443,
        5061,
        5986,
        6443,
        8443,
        9443,
        10250,
        10443,
    }
)
UNIDENTIFIED = frozenset({"", "unknown", "tcpwrapped"})
# nmap names of services that can upgrade to TLS in-band.
STARTTLS_NAMES = {
    "smtp": StartTls.SMTP,
    "submission": StartTls.SMTP,
    "imap": StartTls.IMAP,
    "pop3": StartTls.POP3,
    "ftp": StartTls.FTP,
    "postgresql": StartTls.POSTGRES,
}


def tls_endpoint_for(host: Host, service: Service) -> Endpoint | None:
    """How to reach TLS on this port, or None when it does not look like TLS at all."""
    if service.proto != "tcp" or service.state != "open":
        return None
    sni = default_sni(host.hostname)
    name = (service.name or "").lower()
    if service.tunnel == "ssl" or name in TLS_NAMES:
        return Endpoint(host.address, service.port, sni)
    if name in STARTTLS_NAMES:
        return Endpoint(host.address, service.port, sni, STARTTLS_NAMES[name])
    if service.method == "probed" and name not in UNIDENTIFIED:
        return None  # nmap identified something else there
    if service.port in TLS_PORTS:
        return Endpoint(host.address, service.port, sni)
    if service.port in STARTTLS_PORTS:
        return Endpoint(host.address, service.port, sni, STARTTLS_PORTS[service.port])
    return None


def assess_hosts(hosts: Sequence[Host], options: TlsOptions) -> dict[tuple[int, int], TlsEndpoint]:
    """The assessment of every TLS port of the up hosts, keyed by (host index, service index).
    Blocking: runs one event loop for all of them (called from a scan's worker thread); each
    host's ports share that host's connection cap."""
    targets = [
        ((h, s), endpoint)
        for h, host in enumerate(hosts)
        if host.state is HostState.UP
        for s, service in enumerate(host.services)
        if (endpoint := tls_endpoint_for(host, service)) is not None
    ]
    if not targets:
        return {}
    results = asyncio.run(assess_endpoints([endpoint for _, endpoint in targets], options))
    return {key: result for (key, _), result in zip(targets, results, strict=True)}
