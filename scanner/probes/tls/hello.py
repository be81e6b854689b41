"""ClientHellos built byte by byte, so posture can offer what the local OpenSSL no longer can
(SSLv2, SSLv3, RC4, EXPORT, every IANA suite at once) and decide support from the answer.

Everything here is a pure function returning whole records ready to write to a socket.
"""

from __future__ import annotations

import ipaddress
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from scanner.probes.tls.model import TlsVersion

# Content types and handshake types (RFC 8446 B.1 and B.3).
CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23
CONTENT_HEARTBEAT = 24
HANDSHAKE_CLIENT_HELLO = 1
MAX_FRAGMENT = 2**14

# Extension numbers (IANA "TLS ExtensionType Values").
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_HEARTBEAT = 15
EXT_PADDING = 21
EXT_SESSION_TICKET = 35
EXT_SUPPORTED_VERSIONS = 43
EXT_COOKIE = 44
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

TLS_FALLBACK_SCSV = 0x5600  # RFC 7507
TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF  # RFC 5746
# The ServerHello.random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 4.1.3).
HELLO_RETRY_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

X25519 = 0x001D
SECP256R1 = 0x0017
SECP384R1 = 0x0018
SECP521R1 = 0x0019
X448 = 0x001E

# Modern groups first (a server that takes the client's order picks the best), then FFDHE,
# then the legacy curves that only old servers still choose.
DEFAULT_GROUPS: tuple[int, ...] = (
    X25519,
    SECP256R1,
    SECP384R1,
    SECP521R1,
    X448,
    0x001A,  # brainpoolP256r1
    0x001B,  # brainpoolP384r1
    0x001C,  # brainpoolP512r1
    0x001F,  # brainpoolP256r1tls13
    0x0020,  # brainpoolP384r1tls13
    0x0021,  # brainpoolP512r1tls13
    0x0100,  # ffdhe2048
    0x0101,  # ffdhe3072
    0x0102,  # ffdhe4096
    0x0103,  # ffdhe6144
    0x0104,  # ffdhe8192
    *range(0x0001, 0x0017),  # sect163k1 .. secp256k1
)

# Broad on purpose: an old server that finds none of its hashes here would refuse a suite it
# does support, and posture would report it missing.
DEFAULT_SIGNATURE_SCHEMES: tuple[int, ...] = (
    0x0403,  # ecdsa_secp256r1_sha256
    0x0503,  # ecdsa_secp384r1_sha384
    0x0603,  # ecdsa_secp521r1_sha512
    0x0807,  # ed25519
    0x0808,  # ed448
    0x0804,  # rsa_pss_rsae_sha256
    0x0805,  # rsa_pss_rsae_sha384
    0x0806,  # rsa_pss_rsae_sha512
    0x0809,  # rsa_pss_pss_sha256
    0x080A,  # rsa_pss_pss_sha384
    0x080B,  # rsa_pss_pss_sha512
    0x081A,  # ecdsa_brainpoolP256r1tls13_sha256
    0x081B,  # ecdsa_brainpoolP384r1tls13_sha384
    0x081C,  # ecdsa_brainpoolP512r1tls13_sha512
    0x0401,  # rsa_pkcs1_sha256
    0x0501,  # rsa_pkcs1_sha384
    0x0601,  # rsa_pkcs1_sha512
    0x0303,  # ecdsa_sha224
    0x0301,  # rsa_pkcs1_sha224
    0x0302,  # dsa_sha224
    0x0402,  # dsa_sha256
    0x0502,  # dsa_sha384
    0x0602,  # dsa_sha512
    0x0203,  # ecdsa_sha1
    0x0201,  # rsa_pkcs1_sha1
    0x0202,  # dsa_sha1
    0x0101,  # rsa_pkcs1_md5
)

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")


@dataclass(frozen=True)
class KeyShare:
    """One KeyShareEntry of a TLS 1.3 hello: a group and the client's public value."""

    group: int
    public: bytes


PrivateKey = x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey

_CURVES: dict[int, type[ec.EllipticCurve]] = {
    SECP256R1: ec.SECP256R1,
    SECP384R1: ec.SECP384R1,
    SECP521R1: ec.SECP521R1,
}
KEY_SHARE_GROUPS = (X25519, *_CURVES)


def make_key_share(group: int) -> tuple[KeyShare, PrivateKey]:
    """A fresh ephemeral key for a TLS 1.3 key share (x25519 or a NIST curve)."""
    if group == X25519:
        private: PrivateKey = x25519.X25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return KeyShare(group, public), private
    curve = _CURVES.get(group)
    if curve is None:
        raise ValueError(f"no key share support for group 0x{group:04x}")
    private = ec.generate_private_key(curve())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return KeyShare(group, public), private


def server_name(sni: str | None) -> bytes | None:
    """The host_name to send as SNI: an ASCII (IDNA) DNS name, or None for an address or
    nothing. A name that cannot be a DNS name is refused with ValueError."""
    if not sni:
        return None
    try:
        ipaddress.ip_address(sni)
    except ValueError:
        pass
    else:
        return None  # RFC 6066 3: literal addresses are not permitted in SNI
    name = sni.rstrip(".").lower()
    try:
        encoded = name.encode("idna")
    except UnicodeError as exc:
        raise ValueError(f"{sni[:80]!r} is not a valid DNS name for SNI: {exc}") from None
    labels = encoded.decode("ascii").split(".")
    if len(encoded) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{sni[:80]!r} is not a valid DNS name for SNI")
    return encoded


def _vector(data: bytes, length_size: int) -> bytes:
    if len(data) >= 1 << (8 * length_size):
        raise ValueError(f"{len(data)} bytes do not fit a {length_size}-byte length")
    return len(data).to_bytes(length_size, "big") + data


def _u16s(values: Sequence[int]) -> bytes:
    return struct.pack(f">{len(values)}H", *values)


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack(">H", kind) + _vector(body, 2)


def records(content_type: int, version: int, data: bytes) -> bytes:
    """`data` as records of at most 2^14 bytes each (a large hello spans several)."""
    chunks = [data[i : i + MAX_FRAGMENT] for i in range(0, len(data), MAX_FRAGMENT)] or [b""]
    return b"".join(struct.pack(">BHH", content_type, version, len(c)) + c for c in chunks)


def handshake_message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _vector(body, 3)


def _padding(hello_length: int) -> bytes:
    """RFC 7685 padding for hellos of 256-511 bytes, which some F5 devices drop."""
    if not 256 <= hello_length < 512:
        return b""
    pad = 512 - hello_length - 4
    return _extension(EXT_PADDING, bytes(max(pad, 1)))


def client_hello(
    version: TlsVersion,
    suites: Sequence[int],
    *,
    sni: str | None = None,
    groups: Sequence[int] = DEFAULT_GROUPS,
    signature_schemes: Sequence[int] = DEFAULT_SIGNATURE_SCHEMES,
    compression: Sequence[int] = (0,),
    renegotiation_info: bool = True,
    heartbeat: bool = False,
    key_shares: Sequence[KeyShare] = (),
    supported_versions: Sequence[TlsVersion] | None = None,
    record_version: int | None = None,
    random: bytes | None = None,
    session_id: bytes | None = None,
    cookie: bytes | None = None,
) -> bytes:
    """A ClientHello for SSLv3 to TLS 1.3 offering `suites` in the given order.

    SSLv3 hellos carry no extensions (many SSLv3 stacks reject them). A TLS 1.3 hello has
    legacy_version TLS 1.2 and names its versions in supported_versions; with no key shares
    a TLS 1.3 server must answer with a HelloRetryRequest naming its suite and group."""
    if version is TlsVersion.SSL2:
        raise ValueError("SSLv2 hellos have their own format: use sslv2_client_hello")
    if not suites:
        raise ValueError("a ClientHello needs at least one cipher suite")
    if random is not None and len(random) != 32:
        raise ValueError("the client random is 32 bytes")
    tls13 = version is TlsVersion.TLS13
    legacy_version = TlsVersion.TLS12.code if tls13 else version.code
    if session_id is None:
        session_id = os.urandom(32) if tls13 else b""
    body = b"".join(
        (
            struct.pack(">H", legacy_version),
            random if random is not None else os.urandom(32),
            _vector(session_id, 1),
            _vector(_u16s(suites), 2),
            _vector(bytes(compression), 1),
        )
    )
    if version is not TlsVersion.SSL3:
        extensions = _extensions(
            version,
            sni=sni,
            groups=groups,
            signature_schemes=signature_schemes,
            renegotiation_info=renegotiation_info,
            heartbeat=heartbeat,
            key_shares=key_shares,
            supported_versions=supported_versions,
            cookie=cookie,
        )
        # Four bytes of handshake header plus two of extensions length come on top.
        extensions += _padding(len(body) + len(extensions) + 6)
        body += _vector(extensions, 2)
    if record_version is None:
        record_version = 0x0300 if version is TlsVersion.SSL3 else 0x0301
    return records(
        CONTENT_HANDSHAKE, record_version, handshake_message(HANDSHAKE_CLIENT_HELLO, body)
    )


def _extensions(
    version: TlsVersion,
    *,
    sni: str | None,
    groups: Sequence[int],
    signature_schemes: Sequence[int],
    renegotiation_info: bool,
    heartbeat: bool,
    key_shares: Sequence[KeyShare],
    supported_versions: Sequence[TlsVersion] | None,
    cookie: bytes | None = None,
) -> bytes:
    parts: list[bytes] = []
    host = server_name(sni)
    if host is not None:
        entry = b"\x00" + _vector(host, 2)  # name_type host_name
        parts.append(_extension(EXT_SERVER_NAME, _vector(entry, 2)))
    if groups:
        parts.append(_extension(EXT_SUPPORTED_GROUPS, _vector(_u16s(groups), 2)))
    parts.append(_extension(EXT_EC_POINT_FORMATS, _vector(b"\x00", 1)))  # uncompressed
    if version.rank >= TlsVersion.TLS12.rank and signature_schemes:
        parts.append(_extension(EXT_SIGNATURE_ALGORITHMS, _vector(_u16s(signature_schemes), 2)))
    if heartbeat:
        parts.append(_extension(EXT_HEARTBEAT, b"\x01"))  # peer_allowed_to_send
    parts.append(_extension(EXT_SESSION_TICKET, b""))
    if renegotiation_info:
        parts.append(_extension(EXT_RENEGOTIATION_INFO, b"\x00"))
    if version is TlsVersion.TLS13:
        offered = supported_versions or (TlsVersion.TLS13,)
        parts.append(
            _extension(EXT_SUPPORTED_VERSIONS, _vector(_u16s([v.code for v in offered]), 1))
        )
        parts.append(_extension(EXT_PSK_KEY_EXCHANGE_MODES, b"\x01\x01"))  # psk_dhe_ke
        shares = b"".join(struct.pack(">H", s.group) + _vector(s.public, 2) for s in key_shares)
        parts.append(_extension(EXT_KEY_SHARE, _vector(shares, 2)))
        if cookie is not None:  # echoed from a HelloRetryRequest (RFC 8446 4.2.2)
            parts.append(_extension(EXT_COOKIE, _vector(cookie, 2)))
    return b"".join(parts)


def sslv2_client_hello(cipher_specs: Sequence[int], challenge: bytes | None = None) -> bytes:
    """An SSLv2 CLIENT-HELLO (2-byte record header) offering 3-byte cipher specs."""
    if not cipher_specs:
        raise ValueError("an SSLv2 hello needs at least one cipher spec")
    challenge = challenge if challenge is not None else os.urandom(16)
    if not 16 <= len(challenge) <= 32:
        raise ValueError("the SSLv2 challenge is 16 to 32 bytes")
    specs = b"".join(spec.to_bytes(3, "big") for spec in cipher_specs)
    message = (
        b"\x01"  # CLIENT-HELLO
        + struct.pack(">HHHH", 0x0002, len(specs), 0, len(challenge))
        + specs
        + challenge
    )
    if len(message) > 0x7FFF:
        raise ValueError("SSLv2 hello too long for a 2-byte record header")
    return struct.pack(">H", 0x8000 | len(message)) + message


def heartbeat_request(claimed_length: int, payload: bytes, version: TlsVersion) -> bytes:
    """An unencrypted HeartbeatRequest whose claimed payload length may exceed `payload`.

    RFC 6520 requires at least 16 bytes of padding and says a request whose claimed length
    does not fit the record must be dropped. Only a Heartbleed-vulnerable server answers one
    that claims more than it carries; since the claim stays within payload plus padding, such
    a server echoes our own padding back and leaks none of its memory."""
    if not 0 <= claimed_length <= len(payload) + 16:
        raise ValueError("the claimed length must stay within the payload and its padding")
    message = b"\x01" + struct.pack(">H", claimed_length) + payload + bytes(16)
    record_version = version.code if version is not TlsVersion.TLS13 else 0x0303
    return records(CONTENT_HEARTBEAT, record_version, message)


__all__ = [
    "DEFAULT_GROUPS",
    "DEFAULT_SIGNATURE_SCHEMES",
    "HELLO_RETRY_RANDOM",
    "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    "TLS_FALLBACK_SCSV",
    "KeyShare",
    "client_hello",
    "heartbeat_request",
    "make_key_share",
    "server_name",
    "sslv2_client_hello",
]
