"""The facts a TLS assessment produces: one `TlsEndpoint` per host:port, built from many small
handshakes. Frozen values only; nothing here does I/O or judges (see scanner/rating/).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class TlsVersion(enum.Enum):
    """Protocol versions in the order they were published; `code` is the wire value."""

    SSL2 = "SSLv2"
    SSL3 = "SSLv3"
    TLS10 = "TLSv1.0"
    TLS11 = "TLSv1.1"
    TLS12 = "TLSv1.2"
    TLS13 = "TLSv1.3"

    @property
    def code(self) -> int:
        return _VERSION_CODES[self]

    @property
    def rank(self) -> int:
        return list(TlsVersion).index(self)

    @classmethod
    def from_code(cls, code: int) -> TlsVersion | None:
        return _CODE_VERSIONS.get(code)


_VERSION_CODES = {
    TlsVersion.SSL2: 0x0002,
    TlsVersion.SSL3: 0x0300,
    TlsVersion.TLS10: 0x0301,
    TlsVersion.TLS11: 0x0302,
    TlsVersion.TLS12: 0x0303,
    TlsVersion.TLS13: 0x0304,
}
_CODE_VERSIONS = {code: version for version, code in _VERSION_CODES.items()}


class StartTls(enum.Enum):
    """Plain-text protocols that upgrade to TLS in-band before the ClientHello."""

    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class ProtocolSupport:
    """What one protocol version accepts. `supported` is None when it could not be told (the
    probe failed: see `error`); `suites` are IANA names, in the server's order of preference
    when `server_preference` is True, else in the order posture offered them."""

    version: TlsVersion
    supported: bool | None
    suites: tuple[str, ...] = ()
    server_preference: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class KeyExchangeGroup:
    """A named group (curve or finite-field group) the server accepts for key exchange."""

    name: str  # IANA name: x25519, secp256r1, ffdhe2048, ...
    bits: int  # security-relevant size: 256 for P-256 and X25519, 2048 for ffdhe2048
    versions: tuple[TlsVersion, ...]  # where it was seen accepted (TLSv1.2 ECDHE, TLSv1.3)


@dataclass(frozen=True)
class CertificateFacts:
    """One certificate as the server sent it."""

    subject: str  # RFC 4514 string
    issuer: str
    serial: str  # hex
    not_before: dt.datetime  # UTC, aware
    not_after: dt.datetime
    dns_names: tuple[str, ...]  # subjectAltName dNSName entries
    ip_addresses: tuple[str, ...]  # subjectAltName iPAddress entries
    common_name: str | None
    key_type: str  # rsa, ecdsa, ed25519, ed448, dsa
    key_bits: int
    curve: str | None  # for ecdsa keys: secp256r1, ...
    signature_algorithm: str  # sha256WithRSAEncryption, ecdsa-with-SHA256, ...
    signature_hash: str | None  # md5, sha1, sha256, ... (None for ed25519)
    self_signed: bool  # issuer == subject and the signature verifies with its own key
    is_ca: bool
    sha256: str  # fingerprint of the DER, hex


@dataclass(frozen=True)
class ChainFacts:
    """The chain the server sent, and what validating it told."""

    certificates: tuple[CertificateFacts, ...]  # as sent, leaf first
    trusted: bool  # a path to a trust anchor (system store or --ca-file) was built
    trust_error: str | None  # why not, in words, when not trusted
    hostname: str | None  # the name checked (SNI), None when only an address was known
    hostname_matches: bool | None  # None when there was no name to check
    expired: bool
    not_yet_valid: bool
    days_left: int  # until the leaf expires (negative once expired)
    expiring_soon: bool  # within the configured warning window
    self_signed: bool  # the leaf is self-signed
    incomplete: bool  # the server left out an intermediate needed to reach a trust anchor
    weak_signature: str | None  # md5 or sha1 when any non-root certificate is signed with it
    key_type: str  # of the leaf
    key_bits: int

    @property
    def leaf(self) -> CertificateFacts:
        return self.certificates[0]


@dataclass(frozen=True)
class HstsPolicy:
    """The Strict-Transport-Security header of an HTTPS endpoint (None on TlsEndpoint when the
    endpoint did not answer HTTP; `present` False when it answered without the header)."""

    present: bool
    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False
    header: str | None = None  # the raw value, clipped


@dataclass(frozen=True)
class TlsEndpoint:
    """Everything one assessment learned about host:port. Optional facts are None when the
    probe did not run or could not tell."""

    host: str  # address connected to
    port: int
    sni: str | None  # server name sent (never an IP address)
    starttls: StartTls | None
    protocols: tuple[ProtocolSupport, ...]  # one per version probed, oldest first
    groups: tuple[KeyExchangeGroup, ...] = ()  # in the server's order of preference
    dh_bits: int | None = None  # smallest finite-field DHE modulus seen with a DHE suite
    chain: ChainFacts | None = None
    secure_renegotiation: bool | None = None  # RFC 5746 renegotiation_info answered
    compression: bool | None = None  # the server chose DEFLATE (CRIME)
    fallback_scsv: bool | None = None  # a downgraded hello with TLS_FALLBACK_SCSV was refused
    heartbleed: bool | None = None  # the server answered an over-long heartbeat request
    heartbeat: bool | None = None  # the server offers the heartbeat extension at all
    hsts: HstsPolicy | None = None
    error: str | None = None  # why the endpoint could not be assessed (None when it could)
    # The plain-text service answered that it does not offer STARTTLS: not a TLS endpoint.
    starttls_refused: bool = False
    connections: int = 0  # TCP connections made
    elapsed: float = 0.0  # seconds
    warnings: tuple[str, ...] = field(default=())  # probe-level problems that did not stop it

    def protocol(self, version: TlsVersion) -> ProtocolSupport | None:
        return next((p for p in self.protocols if p.version is version), None)

    @property
    def supported_versions(self) -> tuple[TlsVersion, ...]:
        return tuple(p.version for p in self.protocols if p.supported)

    @property
    def accepted_suites(self) -> tuple[str, ...]:
        """Every suite accepted by any version, each once, newest version first."""
        seen: dict[str, None] = {}
        for support in sorted(self.protocols, key=lambda p: -p.version.rank):
            for suite in support.suites:
                seen.setdefault(suite, None)
        return tuple(seen)
