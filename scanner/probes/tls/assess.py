"""Assess one TLS endpoint: many small handshakes (each one connection, at most N at a time per
host), assembled into one `TlsEndpoint`.

Suites are enumerated by offering everything a version allows and removing what the server
picks, so a version costs one handshake per accepted suite plus one, not one per known suite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.probes.certs import CertificateError, TrustStore, chain_facts
from scanner.probes.tls import hello, suites, tls13, wire
from scanner.probes.tls.connection import (
    Connector,
    Endpoint,
    HostLimiter,
    ProbeConnectionError,
    StartTlsRefused,
)
from scanner.probes.tls.hsts import fetch_hsts
from scanner.probes.tls.model import (
    ChainFacts,
    HstsPolicy,
    KeyExchangeGroup,
    ProtocolSupport,
    TlsEndpoint,
    TlsVersion,
)
from scanner.safetext import for_terminal

MAX_SUITES_PER_VERSION = 400  # bound on the enumeration loop whatever the server answers
MAX_GROUPS = 64
INAPPROPRIATE_FALLBACK = 86  # alert description (RFC 7507)
BLEED_CLAIM = 16  # payload bytes the Heartbleed probe claims (it carries 7, plus 16 of padding)
LEGACY_VERSIONS = (TlsVersion.SSL3, TlsVersion.TLS10, TlsVersion.TLS11, TlsVersion.TLS12)
# Ports where an HTTPS server is expected, so HSTS is asked for.
HTTPS_PORTS = frozenset({443, 4443, 8443, 9443, 10443})


@dataclass(frozen=True)
class TlsOptions:
    """How to assess: timeouts, politeness and what to trust."""

    timeout: float = 5.0  # seconds for each connect and each read
    connections_per_host: int = 5
    delay: float = 0.0  # seconds between the starts of two connections to one host
    deadline: float = 300.0  # seconds for one whole endpoint
    warn_days: int = 30  # a certificate expiring within this many days is "expiring soon"
    ca_file: Path | None = None  # trust anchors instead of the system store
    hsts: bool | None = None  # ask for HSTS: None decides by port (HTTPS ports)
    versions: tuple[TlsVersion, ...] = tuple(TlsVersion)
    source_address: str | None = None
    now: dt.datetime | None = None  # the time certificates are judged at (tests)

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 600:
            raise ValueError("the TLS timeout must be between 0 and 600 seconds")
        if not 1 <= self.connections_per_host <= 64:
            raise ValueError("connections per host must be between 1 and 64")
        if not 0 <= self.delay <= 60:
            raise ValueError("the delay between connections must be between 0 and 60 seconds")
        if not 0 <= self.warn_days <= 3650:
            raise ValueError("the certificate warning window must be between 0 and 3650 days")

    def trust(self) -> TrustStore:
        return TrustStore.from_file(self.ca_file) if self.ca_file else TrustStore.system()


@dataclass
class _State:
    """What the handshakes of one endpoint have learned so far (mutated by one event loop)."""

    chain: tuple[bytes, ...] = ()
    chain_version: TlsVersion | None = None
    dh_bits: int | None = None
    renegotiation: dict[TlsVersion, bool] = field(default_factory=dict)
    tls12_groups: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    not_tls: str | None = None  # what a non-TLS answer looked like
    connection_error: str | None = None
    silence: str | None = None  # why the first unanswered hello got nothing (timeout, close)
    answered: bool = False  # some handshake got a TLS answer (hello or alert)
    starttls_refused: bool = False

    def warn(self, text: str) -> None:
        if text not in self.warnings and len(self.warnings) < 32:
            self.warnings.append(for_terminal(text, 300))


class _Assessment:
    def __init__(self, endpoint: Endpoint, connector: Connector, options: TlsOptions) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.options = options
        self.state = _State()

    # --- one handshake -------------------------------------------------------------------

    async def exchange(self, data: bytes, *, want_certificate: bool = True) -> wire.ServerFlight:
        """Send one hello on a new connection and read the server's flight."""
        async with self.connector.open() as (reader, writer):
            writer.write(data)
            try:
                async with asyncio.timeout(self.options.timeout):
                    await writer.drain()
            except (TimeoutError, OSError):
                return wire.ServerFlight(kind=wire.FlightKind.CLOSED)
            flight = await wire.read_flight(
                reader, timeout=self.options.timeout, want_certificate=want_certificate
            )
        self._observe(flight)
        return flight

    def _observe(self, flight: wire.ServerFlight) -> None:
        kind = flight.kind
        if kind is wire.FlightKind.GARBAGE:
            self.state.not_tls = self.state.not_tls or (flight.error or "not a TLS answer")
        elif kind is not wire.FlightKind.CLOSED:
            self.state.answered = True
        elif flight.error and self.state.silence is None:
            self.state.silence = flight.error

    def hello(self, version: TlsVersion, offer: Sequence[int], **extra: object) -> bytes:
        return hello.client_hello(version, offer, sni=self.endpoint.sni, **extra)  # type: ignore[arg-type]

    # --- protocol versions and their suites ----------------------------------------------

    async def legacy_version(self, version: TlsVersion) -> ProtocolSupport:
        """SSLv3 to TLS 1.2: accepted suites, removing each pick from the next offer."""
        offer = list(suites.tls_suites(version))
        accepted: list[int] = []
        for _ in range(MAX_SUITES_PER_VERSION):
            if not offer:
                break
            flight = await self.exchange(self.hello(version, offer))
            if flight.kind is not wire.FlightKind.SERVER_HELLO:
                break
            if flight.version != version.code:
                break  # the server negotiated another version: this one is not accepted
            if flight.suite not in offer:
                self.state.warn(
                    f"{version.value}: the server chose suite 0x{flight.suite:04x}, "
                    "which was not offered"
                )
                break
            self._learn(version, flight)
            accepted.append(flight.suite)
            offer.remove(flight.suite)
        return await self._support(version, accepted)

    async def _support(self, version: TlsVersion, accepted: list[int]) -> ProtocolSupport:
        if not accepted:
            return ProtocolSupport(version, supported=False)
        preference = await self.server_preference(version, accepted)
        return ProtocolSupport(
            version,
            supported=True,
            suites=tuple(suites.name(code) for code in accepted),
            server_preference=preference,
        )

    def _learn(self, version: TlsVersion, flight: wire.ServerFlight) -> None:
        state = self.state
        state.renegotiation[version] = bool(flight.secure_renegotiation)
        if flight.certificates and (
            state.chain_version is None or version.rank > state.chain_version.rank
        ):
            state.chain, state.chain_version = tuple(flight.certificates), version
        ske = flight.server_key_exchange
        if ske is None:
            return
        if ske.kind == "dhe" and ske.dh_bits:
            state.dh_bits = (
                ske.dh_bits if state.dh_bits is None else min(state.dh_bits, ske.dh_bits)
            )
        if ske.kind == "ecdhe" and ske.group is not None and ske.group not in state.tls12_groups:
            state.tls12_groups.append(ske.group)

    async def server_preference(self, version: TlsVersion, accepted: list[int]) -> bool | None:
        """Offer the accepted suites in reverse: a server that still picks its first choice
        orders by its own preference."""
        if len(accepted) < 2:
            return None
        offer = list(reversed(accepted))
        if version is TlsVersion.TLS13:
            flight = await self.exchange(self.hello(version, offer, key_shares=()))
        else:
            flight = await self.exchange(self.hello(version, offer), want_certificate=False)
        if flight.kind not in (wire.FlightKind.SERVER_HELLO, wire.FlightKind.HELLO_RETRY):
            return None
        if flight.suite == accepted[0]:
            return True
        if flight.suite == offer[0]:
            return False
        return None

    async def tls13(self) -> ProtocolSupport:
        """TLS 1.3 suites from HelloRetryRequests: a hello without key shares makes the server
        name its suite and group without any key agreement."""
        version = TlsVersion.TLS13
        offer = list(suites.tls_suites(version))
        accepted: list[int] = []
        for _ in range(len(offer)):
            flight = await self.exchange(self.hello(version, offer, key_shares=()))
            if flight.kind not in (wire.FlightKind.HELLO_RETRY, wire.FlightKind.SERVER_HELLO):
                break
            if flight.version != version.code or flight.suite not in offer:
                break
            accepted.append(flight.suite)
            offer.remove(flight.suite)
            if not offer:
                break
        return await self._support(version, accepted)

    async def sslv2(self) -> ProtocolSupport:
        flight = await self.exchange(hello.sslv2_client_hello(suites.sslv2_specs()))
        if flight.kind is not wire.FlightKind.SSLV2_SERVER_HELLO or not flight.sslv2_cipher_specs:
            return ProtocolSupport(TlsVersion.SSL2, supported=False)
        names = tuple(suites.name(spec) for spec in flight.sslv2_cipher_specs)
        return ProtocolSupport(TlsVersion.SSL2, supported=True, suites=names)

    async def version(self, version: TlsVersion) -> ProtocolSupport:
        """One version's support, or an 'unknown' entry saying why it could not be told."""
        try:
            if version is TlsVersion.SSL2:
                return await self.sslv2()
            if version is TlsVersion.TLS13:
                return await self.tls13()
            return await self.legacy_version(version)
        except ProbeConnectionError as exc:
            self.state.connection_error = self.state.connection_error or str(exc)
            if isinstance(exc, StartTlsRefused):
                self.state.starttls_refused = True
            return ProtocolSupport(version, supported=None, error=str(exc))

    # --- key exchange groups -----------------------------------------------------------

    async def tls13_groups(self) -> list[int]:
        offer = list(hello.DEFAULT_GROUPS)
        found: list[int] = []
        for _ in range(MAX_GROUPS):
            if not offer:
                break
            flight = await self.exchange(
                self.hello(
                    TlsVersion.TLS13,
                    suites.tls_suites(TlsVersion.TLS13),
                    groups=offer,
                    key_shares=(),
                )
            )
            group = flight.selected_group
            if flight.kind is not wire.FlightKind.HELLO_RETRY or group not in offer:
                break
            found.append(group)
            offer.remove(group)
        return found

    async def tls12_groups(self, version: TlsVersion, accepted: Sequence[str]) -> list[int]:
        """ECDHE curves of TLS 1.2 (and older) from ServerKeyExchange, removing each pick."""
        ecdhe = [suites.code(n) for n in accepted if suites.suite(n).kex == "ECDHE"]
        if not ecdhe:
            return []
        offer = [g for g in hello.DEFAULT_GROUPS if suites.group_kind(g) == "ec"]
        for group in self.state.tls12_groups:
            if group in offer:
                offer.remove(group)
        found = list(self.state.tls12_groups)
        for _ in range(MAX_GROUPS):
            if not offer:
                break
            flight = await self.exchange(self.hello(version, ecdhe, groups=offer))
            ske = flight.server_key_exchange
            if flight.kind is not wire.FlightKind.SERVER_HELLO or ske is None:
                break
            if ske.group is None or ske.group not in offer:
                break
            found.append(ske.group)
            offer.remove(ske.group)
        return found

    # --- everything else ---------------------------------------------------------------

    async def fallback_scsv(self, supported: Sequence[TlsVersion]) -> bool | None:
        """RFC 7507: a hello below the best version, flagged as a fallback, must be refused."""
        lower = [v for v in supported if v in LEGACY_VERSIONS]
        if len(supported) < 2 or not lower:
            return None
        below = lower[-1] if lower[-1] is not max(supported, key=lambda v: v.rank) else lower[-2]
        offer = [*suites.tls_suites(below), hello.TLS_FALLBACK_SCSV]
        flight = await self.exchange(self.hello(below, offer), want_certificate=False)
        if flight.kind is wire.FlightKind.ALERT and flight.alert is not None:
            return flight.alert.description == INAPPROPRIATE_FALLBACK
        if flight.kind is wire.FlightKind.SERVER_HELLO:
            return False
        return None

    async def compression_and_heartbeat(
        self, version: TlsVersion
    ) -> tuple[bool | None, bool | None, bool | None]:
        """One handshake offering DEFLATE and the heartbeat extension. When the server takes
        heartbeats, two requests follow: one claiming 16 payload bytes while carrying 7, which
        RFC 6520 says to drop and only a Heartbleed-vulnerable server answers (echoing posture's
        own padding: nothing of its memory), then a well-formed one of 2 bytes that any server
        with heartbeats answers. The first answer's length tells them apart in one round trip,
        so a patched server costs no timeout."""
        data = self.hello(version, suites.tls_suites(version), compression=(1, 0), heartbeat=True)
        async with self.connector.open() as (reader, writer):
            writer.write(data)
            async with asyncio.timeout(self.options.timeout):
                await writer.drain()
            flight = await wire.read_flight(reader, timeout=self.options.timeout)
            self._observe(flight)
            if flight.kind is not wire.FlightKind.SERVER_HELLO or flight.version != version.code:
                return None, None, None
            compression = flight.compression == 1
            heartbeat = flight.heartbeat_mode is not None
            if not heartbeat:
                return compression, False, False  # no heartbeats, no Heartbleed
            writer.write(
                hello.heartbeat_request(BLEED_CLAIM, b"posture", version)
                + hello.heartbeat_request(2, b"ok", version)
            )
            try:
                async with asyncio.timeout(self.options.timeout):
                    await writer.drain()
            except (TimeoutError, OSError):
                return compression, heartbeat, None
            answered = await wire.read_heartbeat_response(reader, self.options.timeout)
            if answered is None:
                return compression, heartbeat, None  # neither answered: cannot tell
            return compression, heartbeat, answered == BLEED_CLAIM

    async def tls13_chain(self) -> tuple[bytes, ...]:
        async with self.connector.open() as (reader, writer):
            return await tls13.fetch_certificates_tls13(
                reader, writer, sni=self.endpoint.sni, timeout=self.options.timeout
            )

    async def hsts(self) -> HstsPolicy | None:
        async with self.connector.limiter.slot():
            self.connector.connections += 1
            return await fetch_hsts(self.endpoint, timeout=self.options.timeout)

    # --- the whole endpoint ------------------------------------------------------------

    async def run(self) -> TlsEndpoint:
        options = self.options
        versions = [v for v in TlsVersion if v in options.versions]
        protocols = list(await asyncio.gather(*(self.version(v) for v in versions)))
        supported = [p.version for p in protocols if p.supported]
        if not supported:
            return self._unreachable(protocols)

        jobs: dict[str, Awaitable[object]] = {}
        if TlsVersion.TLS13 in supported:
            jobs["groups13"] = self.tls13_groups()
            if not self.state.chain:
                jobs["chain13"] = self.tls13_chain()
        legacy = [v for v in supported if v in LEGACY_VERSIONS]
        if legacy:
            best = legacy[-1]
            accepted = next(p.suites for p in protocols if p.version is best)
            jobs["groups12"] = self.tls12_groups(best, accepted)
            jobs["extras"] = self.compression_and_heartbeat(best)
        jobs["fallback"] = self.fallback_scsv(supported)
        if options.hsts or (options.hsts is None and self._looks_https()):
            jobs["hsts"] = self.hsts()
        results = dict(
            zip(jobs, await asyncio.gather(*jobs.values(), return_exceptions=True), strict=True)
        )
        for name, result in results.items():
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                self.state.warn(f"{name}: {result}")

        def got(name: str) -> Any:
            value = results.get(name)
            return None if isinstance(value, BaseException) else value

        groups = self._groups(got("groups13") or [], got("groups12") or [])
        extras: tuple[bool | None, bool | None, bool | None] = got("extras") or (None,) * 3
        chain13: tuple[bytes, ...] | None = got("chain13")
        chain = self.state.chain or chain13 or ()
        return TlsEndpoint(
            host=self.endpoint.address,
            port=self.endpoint.port,
            sni=self.endpoint.sni,
            starttls=self.endpoint.starttls,
            protocols=tuple(protocols),
            groups=groups,
            dh_bits=self.state.dh_bits,
            chain=self._chain(chain),
            secure_renegotiation=self._renegotiation(legacy),
            compression=extras[0],
            heartbeat=extras[1],
            heartbleed=extras[2],
            fallback_scsv=got("fallback"),
            hsts=got("hsts"),
            warnings=tuple(self.state.warnings),
        )

    def _looks_https(self) -> bool:
        return self.endpoint.starttls is None and self.endpoint.port in HTTPS_PORTS

    def _renegotiation(self, legacy: Sequence[TlsVersion]) -> bool | None:
        if not legacy:
            return True  # TLS 1.3 has no renegotiation at all, so none can be insecure
        seen = [self.state.renegotiation[v] for v in legacy if v in self.state.renegotiation]
        return all(seen) if seen else None

    def _groups(
        self, tls13_codes: list[int], tls12_codes: list[int]
    ) -> tuple[KeyExchangeGroup, ...]:
        order = list(dict.fromkeys([*tls13_codes, *tls12_codes]))
        found = []
        for code in order:
            seen = []
            if code in tls12_codes:
                seen.append(TlsVersion.TLS12)
            if code in tls13_codes:
                seen.append(TlsVersion.TLS13)
            found.append(
                KeyExchangeGroup(suites.group_name(code), suites.group_bits(code), tuple(seen))
            )
        return tuple(found)

    def _chain(self, chain: Sequence[bytes]) -> ChainFacts | None:
        if not chain:
            self.state.warn("no certificate could be read")
            return None
        try:
            return chain_facts(
                chain,
                hostname=self.endpoint.sni,
                trust=self.options.trust(),
                now=self.options.now,
                warn_days=self.options.warn_days,
            )
        except CertificateError as exc:
            self.state.warn(f"certificate: {exc}")
            return None

    def _unreachable(self, protocols: list[ProtocolSupport]) -> TlsEndpoint:
        state = self.state
        if state.not_tls and not state.answered:
            error = f"does not speak TLS: {state.not_tls}"
        elif state.connection_error and not state.answered:
            error = state.connection_error
        elif state.silence and not state.answered:
            error = f"no TLS answer to any ClientHello: {state.silence}"
        elif all(p.supported is False for p in protocols):
            error = "no SSL/TLS version was accepted"
        else:
            error = next((p.error for p in protocols if p.error), "no SSL/TLS version accepted")
        return failed(
            self.endpoint,
            error,
            protocols=tuple(protocols),
            starttls_refused=state.starttls_refused and not state.answered,
            warnings=tuple(state.warnings),
        )


def failed(endpoint: Endpoint, error: object, **facts: Any) -> TlsEndpoint:
    """The assessment of an endpoint that could not be assessed, and why."""
    return TlsEndpoint(
        host=endpoint.address,
        port=endpoint.port,
        sni=endpoint.sni,
        starttls=endpoint.starttls,
        protocols=facts.pop("protocols", ()),
        error=for_terminal(error, 300),
        **facts,
    )


async def assess_endpoint(
    endpoint: Endpoint, options: TlsOptions, limiter: HostLimiter | None = None
) -> TlsEndpoint:
    """Assess one endpoint within `options.deadline`; never raises for what the server does."""
    limiter = limiter or HostLimiter(options.connections_per_host, options.delay)
    connector = Connector(
        endpoint, limiter, timeout=options.timeout, source_address=options.source_address
    )
    assessment = _Assessment(endpoint, connector, options)
    started = time.monotonic()
    try:
        async with asyncio.timeout(options.deadline):
            result = await assessment.run()
    except TimeoutError:
        result = failed(endpoint, f"the assessment did not finish within {options.deadline:g}s")
    except ProbeConnectionError as exc:
        result = failed(endpoint, exc)
    elapsed = time.monotonic() - started
    return dataclasses.replace(result, connections=connector.connections, elapsed=round(elapsed, 3))


async def assess_endpoints(
    endpoints: Sequence[Endpoint], options: TlsOptions, *, max_endpoints: int = 10
) -> list[TlsEndpoint]:
    """Several endpoints: one limiter per host (so all ports of a host share its cap), at most
    `max_endpoints` endpoints in progress at a time."""
    limiters: dict[str, HostLimiter] = {}
    hosts = asyncio.Semaphore(max_endpoints)

    async def one(endpoint: Endpoint) -> TlsEndpoint:
        limiter = limiters.setdefault(
            endpoint.address, HostLimiter(options.connections_per_host, options.delay)
        )
        async with hosts:
            return await assess_endpoint(endpoint, options, limiter)

    return list(await asyncio.gather(*(one(e) for e in endpoints)))


def assess(endpoints: Sequence[Endpoint], options: TlsOptions | None = None) -> list[TlsEndpoint]:
    """Blocking twin of `assess_endpoints` for callers without an event loop."""
    return asyncio.run(assess_endpoints(endpoints, options or TlsOptions()))


def default_sni(name: str | None) -> str | None:
    """A name usable as SNI: a DNS name, not an address; None otherwise."""
    if not name:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.rstrip(".").lower() or None
    return None


__all__ = [
    "Endpoint",
    "TlsOptions",
    "assess",
    "assess_endpoint",
    "assess_endpoints",
    "default_sni",
]
