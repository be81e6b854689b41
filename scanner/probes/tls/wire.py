"""Bounded parsing of what a server sends back to one hello: the records up to the end of its
first flight, read with a deadline and a byte limit, so a silent, slow, garbage-spewing or
endless peer costs at most its timeout.

Errors: the pure parsers raise `TlsProtocolError`; `read_flight` never raises for anything the
server does and reports it as a `ServerFlight` of kind GARBAGE or CLOSED with an `error`.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from scanner.probes.tls import suites
from scanner.probes.tls.hello import (
    CONTENT_ALERT,
    CONTENT_APPLICATION_DATA,
    CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE,
    CONTENT_HEARTBEAT,
    EXT_HEARTBEAT,
    EXT_KEY_SHARE,
    EXT_RENEGOTIATION_INFO,
    EXT_SUPPORTED_VERSIONS,
    HELLO_RETRY_RANDOM,
)
from scanner.safetext import decode_banner

MAX_RECORD = 2**14 + 2048  # the largest TLSCiphertext RFC 8446 allows
DEFAULT_LIMIT = 512 * 1024  # bytes of one flight (a chain of ten large certificates fits)
MAX_CERTIFICATES = 10
CONTENT_TYPES = frozenset(
    {
        CONTENT_CHANGE_CIPHER_SPEC,
        CONTENT_ALERT,
        CONTENT_HANDSHAKE,
        CONTENT_APPLICATION_DATA,
        CONTENT_HEARTBEAT,
    }
)

HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_CERTIFICATE = 11
HANDSHAKE_SERVER_KEY_EXCHANGE = 12
HANDSHAKE_CERTIFICATE_REQUEST = 13
HANDSHAKE_SERVER_HELLO_DONE = 14
SSL2_SERVER_HELLO = 4

ALERT_NAMES = MappingProxyType(
    {
        0: "close_notify",
        10: "unexpected_message",
        20: "bad_record_mac",
        21: "decryption_failed",
        22: "record_overflow",
        30: "decompression_failure",
        40: "handshake_failure",
        41: "no_certificate",
        42: "bad_certificate",
        43: "unsupported_certificate",
        44: "certificate_revoked",
        45: "certificate_expired",
        46: "certificate_unknown",
        47: "illegal_parameter",
        48: "unknown_ca",
        49: "access_denied",
        50: "decode_error",
        51: "decrypt_error",
        60: "export_restriction",
        70: "protocol_version",
        71: "insufficient_security",
        80: "internal_error",
        86: "inappropriate_fallback",
        90: "user_canceled",
        100: "no_renegotiation",
        109: "missing_extension",
        110: "unsupported_extension",
        112: "unrecognized_name",
        116: "certificate_required",
        120: "no_application_protocol",
    }
)


class TlsProtocolError(ValueError):
    """Bytes from the server that are not the TLS (or SSLv2) this parser expects."""


class FlightKind(enum.Enum):
    SERVER_HELLO = "server_hello"
    HELLO_RETRY = "hello_retry"  # TLS 1.3 HelloRetryRequest
    ALERT = "alert"  # an alert before any ServerHello: the hello was refused
    SSLV2_SERVER_HELLO = "sslv2_server_hello"
    CLOSED = "closed"  # no answer: EOF, reset or timeout before anything useful
    GARBAGE = "garbage"  # an answer that is not TLS, or breaks its rules


@dataclass(frozen=True)
class Alert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return ALERT_NAMES.get(self.description, f"alert {self.description}")


@dataclass(frozen=True)
class ServerKeyExchange:
    """What matters of a TLS <= 1.2 ServerKeyExchange: the ECDHE curve or the DH prime size."""

    kind: str | None  # 'ecdhe', 'dhe' or None (e.g. an RSA_EXPORT temporary key)
    group: int | None = None  # named curve of ECDHE
    dh_bits: int | None = None  # size of the DHE prime


@dataclass(frozen=True)
class ServerFlight:
    """The server's answer to one hello. For TLS <= 1.2 it runs up to ServerHelloDone (or just
    the ServerHello when the certificate was not wanted); for TLS 1.3, the (Retry) ServerHello."""

    kind: FlightKind
    version: int | None = None  # negotiated (supported_versions for TLS 1.3)
    suite: int | None = None
    compression: int | None = None
    random: bytes = b""
    session_id: bytes = b""
    extensions: Mapping[int, bytes] = field(default_factory=dict)
    selected_group: int | None = None  # TLS 1.3 key_share (HRR: the group asked for)
    key_share: bytes | None = None  # TLS 1.3 ServerHello: the server's public value
    certificates: tuple[bytes, ...] = ()  # DER, leaf first (TLS <= 1.2 and SSLv2)
    server_key_exchange: ServerKeyExchange | None = None
    alert: Alert | None = None
    sslv2_cipher_specs: tuple[int, ...] = ()
    heartbeat_mode: int | None = None
    secure_renegotiation: bool | None = None  # renegotiation_info in the ServerHello
    raw_handshake: bytes = b""  # the handshake messages as received (TLS 1.3 transcript)
    record_version: int | None = None
    error: str | None = None

    @property
    def tls13(self) -> bool:
        return self.version == 0x0304


class _Cursor:
    """Reads big-endian fields from bytes; running past the end is a TlsProtocolError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.at = 0
        self.what = what

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise TlsProtocolError(
                f"{self.what} is truncated: {size} bytes wanted at offset {self.at} "
                f"of {len(self.data)}"
            )
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    @property
    def left(self) -> int:
        return len(self.data) - self.at


@dataclass(frozen=True)
class ServerHello:
    version: int
    random: bytes
    session_id: bytes
    suite: int
    compression: int
    extensions: Mapping[int, bytes]

    @property
    def retry(self) -> bool:
        return self.random == HELLO_RETRY_RANDOM

    @property
    def negotiated_version(self) -> int:
        chosen = self.extensions.get(EXT_SUPPORTED_VERSIONS)
        if chosen is not None:
            if len(chosen) != 2:
                raise TlsProtocolError("supported_versions in the ServerHello is not 2 bytes")
            return int.from_bytes(chosen, "big")
        return self.version


def parse_server_hello(body: bytes) -> ServerHello:
    cur = _Cursor(body, "ServerHello")
    version = cur.number(2)
    random = cur.take(32)
    session_id = cur.vector(1)
    if len(session_id) > 32:
        raise TlsProtocolError("ServerHello session id longer than 32 bytes")
    suite, compression = cur.number(2), cur.number(1)
    extensions: dict[int, bytes] = {}
    if cur.left:
        block = _Cursor(cur.vector(2), "ServerHello extensions")
        while block.left:
            kind = block.number(2)
            if kind in extensions:
                raise TlsProtocolError(f"ServerHello repeats extension {kind}")
            extensions[kind] = block.vector(2)
    if cur.left:
        raise TlsProtocolError(f"{cur.left} stray bytes after the ServerHello extensions")
    return ServerHello(
        version, random, session_id, suite, compression, MappingProxyType(extensions)
    )


def parse_certificate_list(body: bytes, *, tls13: bool = False) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message (TLS 1.3 entries carry a context and
    per-entry extensions). At most MAX_CERTIFICATES are kept."""
    cur = _Cursor(body, "Certificate message")
    if tls13:
        cur.vector(1)  # certificate_request_context
    block = _Cursor(cur.vector(3), "certificate list")
    found: list[bytes] = []
    while block.left:
        der = block.vector(3)
        if tls13:
            block.vector(2)  # per-certificate extensions (OCSP, SCT)
        if not der:
            raise TlsProtocolError("an empty certificate in the Certificate message")
        if len(found) < MAX_CERTIFICATES:
            found.append(der)
    return tuple(found)


def parse_server_key_exchange(body: bytes, suite: int | None) -> ServerKeyExchange:
    known = suites.BY_CODE.get(suite) if suite is not None else None
    if known is not None:
        if known.kex == "ECDHE" or (known.kex == "ECDH" and known.auth == "anon"):
            kind: str | None = "ecdhe"
        elif known.kex == "DHE" or (known.kex == "DH" and known.auth == "anon"):
            kind = "dhe"
        else:
            return ServerKeyExchange(None)
    else:
        kind = "ecdhe" if body[:1] == b"\x03" else "dhe"
    cur = _Cursor(body, "ServerKeyExchange")
    if kind == "ecdhe":
        curve_type = cur.number(1)
        if curve_type != 3:  # explicit curves: no named group to report
            return ServerKeyExchange("ecdhe")
        return ServerKeyExchange("ecdhe", group=cur.number(2))
    prime = cur.vector(2)
    return ServerKeyExchange("dhe", dh_bits=int.from_bytes(prime, "big").bit_length())


def parse_sslv2_server_hello(message: bytes) -> ServerFlight:
    """An SSLv2 SERVER-HELLO message (after the record header)."""
    cur = _Cursor(message, "SSLv2 SERVER-HELLO")
    if cur.number(1) != SSL2_SERVER_HELLO:
        raise TlsProtocolError("SSLv2 record is not a SERVER-HELLO")
    cur.take(2)  # session_id_hit, certificate_type
    version = cur.number(2)
    cert_length, specs_length, connection_length = cur.number(2), cur.number(2), cur.number(2)
    certificate = cur.take(cert_length)
    specs = cur.take(specs_length)
    cur.take(connection_length)
    if specs_length % 3:
        raise TlsProtocolError("SSLv2 cipher specs are not a multiple of 3 bytes")
    codes = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3))
    return ServerFlight(
        FlightKind.SSLV2_SERVER_HELLO,
        version=version,
        sslv2_cipher_specs=codes,
        certificates=(certificate,) if certificate else (),
    )


class FlightParser:
    """Collects records of one server flight; `feed` returns the flight once it is complete."""

    def __init__(self, *, want_certificate: bool = True) -> None:
        self.want_certificate = want_certificate
        self.buffer = b""  # handshake bytes not yet forming a whole message
        self.raw = b""
        self.hello: ServerHello | None = None
        self.record_version: int | None = None
        self.certificates: tuple[bytes, ...] = ()
        self.key_exchange: ServerKeyExchange | None = None
        self.alert: Alert | None = None

    def feed(self, content_type: int, version: int, fragment: bytes) -> ServerFlight | None:
        if self.record_version is None:
            self.record_version = version
        if content_type == CONTENT_ALERT:
            if len(fragment) < 2:
                raise TlsProtocolError("an alert record shorter than 2 bytes")
            self.alert = Alert(fragment[0], fragment[1])
            if self.hello is None:
                return ServerFlight(
                    FlightKind.ALERT,
                    alert=self.alert,
                    record_version=version,
                    error=f"alert {self.alert.name}",
                )
            return self.flight(error=f"alert {self.alert.name} during the handshake")
        if content_type in (CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HEARTBEAT):
            return None  # middlebox-compatibility CCS, stray heartbeats: not part of the flight
        if content_type != CONTENT_HANDSHAKE:
            raise TlsProtocolError(f"content type {content_type} before the handshake ended")
        self.buffer += fragment
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[1:4], "big")
            if len(self.buffer) < 4 + length:
                break
            kind, body = self.buffer[0], self.buffer[4 : 4 + length]
            self.raw += self.buffer[: 4 + length]
            self.buffer = self.buffer[4 + length :]
            done = self.message(kind, body)
            if done is not None:
                return done
        return None

    def message(self, kind: int, body: bytes) -> ServerFlight | None:
        if self.hello is None:
            if kind != HANDSHAKE_SERVER_HELLO:
                raise TlsProtocolError(f"handshake message {kind} before the ServerHello")
            self.hello = parse_server_hello(body)
            if self.hello.retry or self.hello.negotiated_version >= 0x0304:
                return self.flight()
            if not self.want_certificate:
                return self.flight()
            return None
        if kind == HANDSHAKE_CERTIFICATE:
            self.certificates = parse_certificate_list(body)
        elif kind == HANDSHAKE_SERVER_KEY_EXCHANGE:
            self.key_exchange = parse_server_key_exchange(body, self.hello.suite)
        elif kind == HANDSHAKE_SERVER_HELLO_DONE:
            return self.flight()
        elif kind != HANDSHAKE_CERTIFICATE_REQUEST and kind not in (22, 23):  # status, supp.
            raise TlsProtocolError(f"unexpected handshake message {kind} in the server flight")
        return None

    def flight(self, *, error: str | None = None) -> ServerFlight:
        """What has been seen so far (the flight ends early on an alert or the byte limit)."""
        sh = self.hello
        if sh is None:
            return ServerFlight(FlightKind.CLOSED, error=error or "no ServerHello")
        ext = sh.extensions
        version = sh.negotiated_version
        group: int | None = None
        share: bytes | None = None
        key_share = ext.get(EXT_KEY_SHARE)
        if key_share is not None and version >= 0x0304:
            cur = _Cursor(key_share, "key_share")
            group = cur.number(2)
            if not sh.retry:
                share = cur.vector(2)
        heartbeat = ext.get(EXT_HEARTBEAT)
        return ServerFlight(
            FlightKind.HELLO_RETRY if sh.retry else FlightKind.SERVER_HELLO,
            version=version,
            suite=sh.suite,
            compression=sh.compression,
            random=sh.random,
            session_id=sh.session_id,
            extensions=sh.extensions,
            selected_group=group,
            key_share=share,
            certificates=self.certificates,
            server_key_exchange=self.key_exchange,
            alert=self.alert,
            heartbeat_mode=heartbeat[0] if heartbeat else None,
            secure_renegotiation=EXT_RENEGOTIATION_INFO in ext,
            raw_handshake=self.raw,
            record_version=self.record_version,
            error=error,
        )


def describe(data: bytes) -> str:
    """A short, printable picture of bytes that are not TLS (often a plain-text banner)."""
    text = decode_banner(data[:48], 48).strip()
    if text and sum(ch.isprintable() for ch in text) >= 0.8 * len(text):
        return f"the server sent {text!r}"
    return f"the server sent bytes {data[:16].hex()}"


def _sslv2_header(head: bytes) -> tuple[int, int] | None:
    """(header size, message length) when `head` (5 bytes) starts an SSLv2 SERVER-HELLO."""
    if head[0] & 0x80 and head[2] == SSL2_SERVER_HELLO:
        return 2, ((head[0] & 0x7F) << 8) | head[1]
    if head[0] not in CONTENT_TYPES and head[0] & 0xC0 == 0 and head[3] == SSL2_SERVER_HELLO:
        return 3, ((head[0] & 0x3F) << 8) | head[1]
    return None


def parse_flight(data: bytes, *, want_certificate: bool = True) -> ServerFlight:
    """The flight in `data` (pure: for recorded bytes). Raises TlsProtocolError for bytes
    that are not TLS or end before the flight does."""
    if len(data) < 5:
        raise TlsProtocolError(f"{len(data)} bytes are not a record")
    sslv2 = _sslv2_header(data[:5])
    if sslv2 is not None:
        size, length = sslv2
        return parse_sslv2_server_hello(_Cursor(data, "SSLv2 record").take(size + length)[size:])
    parser = FlightParser(want_certificate=want_certificate)
    cur = _Cursor(data, "record stream")
    while cur.left:
        content_type, version, length = struct.unpack(">BHH", cur.take(5))
        _check_header(content_type, version, length, data[cur.at - 5 : cur.at])
        done = parser.feed(content_type, version, cur.take(length))
        if done is not None:
            return done
    raise TlsProtocolError("the bytes end before the server's flight does")


def _check_header(content_type: int, version: int, length: int, head: bytes) -> None:
    if content_type not in CONTENT_TYPES or version >> 8 != 3:
        raise TlsProtocolError(f"not a TLS record: {describe(head)}")
    if length > MAX_RECORD:
        raise TlsProtocolError(f"a record of {length} bytes, more than TLS allows ({MAX_RECORD})")


@dataclass(frozen=True)
class Record:
    content_type: int
    version: int
    fragment: bytes


async def read_record(reader: asyncio.StreamReader, *, timeout: float) -> Record:
    """One TLS record within `timeout`. EOF, timeout and bad headers raise TlsProtocolError
    (EOFError-like cases say so in the message)."""
    try:
        async with asyncio.timeout(timeout):
            head = await reader.readexactly(5)
            content_type, version, length = struct.unpack(">BHH", head)
            _check_header(content_type, version, length, head)
            return Record(content_type, version, await reader.readexactly(length))
    except asyncio.IncompleteReadError as exc:
        raise TlsProtocolError(
            "the server closed the connection"
            + (f" after {len(exc.partial)} bytes of a record" if exc.partial else "")
        ) from None
    except TimeoutError:
        raise TlsProtocolError(f"no record within {timeout:g}s") from None
    except OSError as exc:
        raise TlsProtocolError(f"connection error: {exc.strerror or exc}") from None


async def read_flight(
    reader: asyncio.StreamReader,
    *,
    timeout: float,
    want_certificate: bool = True,
    limit: int = DEFAULT_LIMIT,
) -> ServerFlight:
    """Read the server's answer to a hello, within `timeout` for the whole flight and at most
    `limit` bytes. Never raises for what the server does."""
    parser = FlightParser(want_certificate=want_certificate)
    received = 0
    try:
        async with asyncio.timeout(timeout):
            head = await _read_head(reader)
            if head is None:
                return ServerFlight(FlightKind.CLOSED, error="the server closed the connection")
            sslv2 = _sslv2_header(head)
            if sslv2 is not None:
                size, length = sslv2
                rest = await reader.readexactly(size + length - len(head))
                return parse_sslv2_server_hello((head + rest)[size:])
            while True:
                content_type, version, length = struct.unpack(">BHH", head)
                _check_header(content_type, version, length, head)
                received += 5 + length
                if received > limit:
                    if parser.hello is not None:
                        return parser.flight(error=f"the flight exceeds {limit} bytes")
                    return ServerFlight(
                        FlightKind.GARBAGE, error=f"more than {limit} bytes without a ServerHello"
                    )
                done = parser.feed(content_type, version, await reader.readexactly(length))
                if done is not None:
                    return done
                head = await reader.readexactly(5)
    except TimeoutError:
        error = f"no complete answer within {timeout:g}s"
    except asyncio.IncompleteReadError:
        error = "the server closed the connection in the middle of the handshake"
    except OSError as exc:
        error = f"connection error: {exc.strerror or exc}"
    except TlsProtocolError as exc:
        return ServerFlight(FlightKind.GARBAGE, error=str(exc))
    if parser.hello is not None:
        return parser.flight(error=error)
    return ServerFlight(FlightKind.CLOSED, error=error)


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The first 5 bytes, or None at a clean EOF; a short answer is returned as it is."""
    head = b""
    while len(head) < 5:
        chunk = await reader.read(5 - len(head))
        if not chunk:
            if not head:
                return None
            raise TlsProtocolError(f"only {len(head)} bytes came back: {describe(head)}")
        head += chunk
    return head


async def read_heartbeat_response(reader: asyncio.StreamReader, timeout: float) -> int | None:
    """The payload length of the first HeartbeatResponse that arrives before `timeout`; None
    on an alert, EOF, silence or anything else (at most 16 records are looked at)."""
    try:
        async with asyncio.timeout(timeout):
            for _ in range(16):
                record = await read_record(reader, timeout=timeout)
                if record.content_type == CONTENT_HEARTBEAT:
                    body = record.fragment
                    if len(body) >= 3 and body[0] == 2:  # heartbeat_response
                        return int.from_bytes(body[1:3], "big")
                    continue
                if record.content_type == CONTENT_ALERT:
                    return None
    except (TimeoutError, TlsProtocolError):
        return None
    return None


__all__ = [
    "Alert",
    "FlightKind",
    "FlightParser",
    "Record",
    "ServerFlight",
    "ServerKeyExchange",
    "TlsProtocolError",
    "parse_flight",
    "read_flight",
    "read_heartbeat_response",
    "read_record",
]
