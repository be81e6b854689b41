"""Just enough of a TLS 1.3 client to read the certificate chain, which TLS 1.3 encrypts:
one key share, the RFC 8446 key schedule up to the server's handshake traffic key, and AEAD
decryption of the server's first encrypted records. No Finished is sent; the caller closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from scanner.probes.tls import hello, wire
from scanner.probes.tls.model import TlsVersion

MAX_ENCRYPTED_RECORDS = 64
MAX_ENCRYPTED_BYTES = 512 * 1024
HANDSHAKE_ENCRYPTED_EXTENSIONS = 8
HANDSHAKE_CERTIFICATE_REQUEST = 13
HANDSHAKE_MESSAGE_HASH = 254
# Groups this client can compute a shared secret for, in the order it offers them.
OFFERED_GROUPS = (hello.X25519, hello.SECP256R1, hello.SECP384R1, hello.SECP521R1)


@dataclass(frozen=True)
class _Suite:
    hash: Callable[[], hashes.HashAlgorithm]
    key_length: int
    aead: Callable[[bytes], AESGCM | ChaCha20Poly1305 | AESCCM]


SUITES: dict[int, _Suite] = {
    0x1301: _Suite(hashes.SHA256, 16, AESGCM),
    0x1302: _Suite(hashes.SHA384, 32, AESGCM),
    0x1303: _Suite(hashes.SHA256, 32, ChaCha20Poly1305),
    0x1304: _Suite(hashes.SHA256, 16, AESCCM),
    0x1305: _Suite(hashes.SHA256, 16, lambda key: AESCCM(key, tag_length=8)),
}


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(algorithm.digest_size), ikm, algorithm.name).digest()


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: str, context: bytes, length: int
) -> bytes:
    full = b"tls13 " + label.encode("ascii")
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(algorithm, length, info).derive(secret)


def transcript_hash(algorithm: hashes.HashAlgorithm, messages: bytes) -> bytes:
    return hashlib.new(algorithm.name, messages).digest()


def server_handshake_keys(
    suite: int, shared_secret: bytes, transcript: bytes
) -> tuple[bytes, bytes]:
    """(key, iv) protecting the server's handshake records (RFC 8446 7.1 and 7.3), from the
    (EC)DHE secret and the handshake messages up to the ServerHello."""
    spec = SUITES[suite]
    algorithm = spec.hash()
    size = algorithm.digest_size
    early = hkdf_extract(algorithm, b"", bytes(size))
    derived = hkdf_expand_label(algorithm, early, "derived", transcript_hash(algorithm, b""), size)
    handshake = hkdf_extract(algorithm, derived, shared_secret)
    traffic = hkdf_expand_label(
        algorithm, handshake, "s hs traffic", transcript_hash(algorithm, transcript), size
    )
    key = hkdf_expand_label(algorithm, traffic, "key", b"", spec.key_length)
    iv = hkdf_expand_label(algorithm, traffic, "iv", b"", 12)
    return key, iv


class RecordDecrypter:
    """Opens TLSCiphertext records with a traffic key, counting sequence numbers."""

    def __init__(self, suite: int, key: bytes, iv: bytes) -> None:
        self.aead = SUITES[suite].aead(key)
        self.iv = iv
        self.sequence = 0

    def open(self, record: wire.Record) -> tuple[int, bytes]:
        """(inner content type, content) of one application_data record."""
        counter = self.sequence.to_bytes(12, "big")
        nonce = bytes(a ^ b for a, b in zip(self.iv, counter, strict=True))
        header = struct.pack(">BHH", record.content_type, record.version, len(record.fragment))
        try:
            plain = self.aead.decrypt(nonce, record.fragment, header)
        except InvalidTag:
            raise wire.TlsProtocolError(
                "a TLS 1.3 record did not decrypt (wrong key schedule or a broken server)"
            ) from None
        self.sequence += 1
        inner = plain.rstrip(b"\x00")
        if not inner:
            raise wire.TlsProtocolError("a TLS 1.3 record without an inner content type")
        return inner[-1], inner[:-1]


def _shared_secret(private: hello.PrivateKey, group: int, public: bytes) -> bytes:
    try:
        if isinstance(private, x25519.X25519PrivateKey):
            return private.exchange(x25519.X25519PublicKey.from_public_bytes(public))
        peer = ec.EllipticCurvePublicKey.from_encoded_point(private.curve, public)
        return private.exchange(ec.ECDH(), peer)
    except ValueError as exc:
        raise wire.TlsProtocolError(
            f"the server's key share for group 0x{group:04x} is invalid: {exc}"
        ) from None


def _unwrap(data: bytes) -> bytes:
    """The handshake message inside the records `hello.client_hello` built."""
    out, at = b"", 0
    while at < len(data):
        length = int.from_bytes(data[at + 3 : at + 5], "big")
        out += data[at + 5 : at + 5 + length]
        at += 5 + length
    return out


async def _send(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
    writer.write(data)
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except (TimeoutError, OSError) as exc:
        raise wire.TlsProtocolError(f"could not send the ClientHello: {exc}") from None


def _answer(flight: wire.ServerFlight) -> wire.ServerFlight:
    if flight.kind is wire.FlightKind.ALERT and flight.alert is not None:
        raise wire.TlsProtocolError(f"the server refused TLS 1.3: alert {flight.alert.name}")
    if flight.kind not in (wire.FlightKind.SERVER_HELLO, wire.FlightKind.HELLO_RETRY):
        raise wire.TlsProtocolError(flight.error or f"no ServerHello ({flight.kind.value})")
    if flight.version != TlsVersion.TLS13.code:
        raise wire.TlsProtocolError("the server did not negotiate TLS 1.3")
    if flight.suite not in SUITES:
        raise wire.TlsProtocolError(f"the server chose an unknown TLS 1.3 suite {flight.suite}")
    return flight


async def fetch_certificates_tls13(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    sni: str | None,
    timeout: float,
    suites: Sequence[int] = (0x1301, 0x1302, 0x1303),
) -> tuple[bytes, ...]:
    """The certificate chain (DER, leaf first) a TLS 1.3 server sends on this connection.

    Raises `wire.TlsProtocolError` with a readable reason when it cannot be had."""
    share, private = hello.make_key_share(hello.X25519)
    random = os.urandom(32)
    session_id = os.urandom(32)

    def client_hello(shares: Sequence[hello.KeyShare], cookie: bytes | None = None) -> bytes:
        return hello.client_hello(
            TlsVersion.TLS13,
            suites,
            sni=sni,
            groups=OFFERED_GROUPS,
            key_shares=shares,
            random=random,
            session_id=session_id,
            cookie=cookie,
        )

    first = client_hello([share])
    await _send(writer, first, timeout)
    flight = _answer(await wire.read_flight(reader, timeout=timeout))
    transcript = _unwrap(first)
    if flight.kind is wire.FlightKind.HELLO_RETRY:
        group = flight.selected_group
        if group not in OFFERED_GROUPS or group is None:
            raise wire.TlsProtocolError(
                f"the server asked for key share group {group}, which posture cannot compute"
            )
        algorithm = SUITES[flight.suite or 0].hash()
        digest = transcript_hash(algorithm, transcript)
        transcript = (
            bytes([HANDSHAKE_MESSAGE_HASH]) + len(digest).to_bytes(3, "big") + digest
        ) + flight.raw_handshake
        share, private = hello.make_key_share(group)
        cookie_ext = flight.extensions.get(hello.EXT_COOKIE)
        second = client_hello([share], cookie_ext[2:] if cookie_ext else None)
        await _send(writer, second, timeout)
        transcript += _unwrap(second)
        flight = _answer(await wire.read_flight(reader, timeout=timeout))
        if flight.kind is wire.FlightKind.HELLO_RETRY:
            raise wire.TlsProtocolError("the server sent a second HelloRetryRequest")
    if flight.selected_group != share.group or not flight.key_share:
        raise wire.TlsProtocolError("the ServerHello's key share does not match the offer")
    suite = flight.suite or 0
    secret = _shared_secret(private, share.group, flight.key_share)
    key, iv = server_handshake_keys(suite, secret, transcript + flight.raw_handshake)
    return await _read_certificate(reader, RecordDecrypter(suite, key, iv), timeout)


async def _read_certificate(
    reader: asyncio.StreamReader, decrypter: RecordDecrypter, timeout: float
) -> tuple[bytes, ...]:
    buffer = b""
    received = 0
    async with asyncio.timeout(timeout):
        for _ in range(MAX_ENCRYPTED_RECORDS):
            record = await wire.read_record(reader, timeout=timeout)
            received += len(record.fragment)
            if received > MAX_ENCRYPTED_BYTES:
                raise wire.TlsProtocolError("no Certificate in the first 512 KiB")
            if record.content_type == hello.CONTENT_CHANGE_CIPHER_SPEC:
                continue
            if record.content_type == hello.CONTENT_ALERT:
                raise wire.TlsProtocolError("the server sent an alert instead of its certificate")
            if record.content_type != hello.CONTENT_APPLICATION_DATA:
                raise wire.TlsProtocolError(
                    f"an unencrypted record of type {record.content_type} after the ServerHello"
                )
            inner_type, content = decrypter.open(record)
            if inner_type != hello.CONTENT_HANDSHAKE:
                raise wire.TlsProtocolError("an encrypted alert instead of the certificate")
            buffer += content
            while len(buffer) >= 4:
                length = int.from_bytes(buffer[1:4], "big")
                if len(buffer) < 4 + length:
                    break
                kind, body = buffer[0], buffer[4 : 4 + length]
                buffer = buffer[4 + length :]
                if kind == wire.HANDSHAKE_CERTIFICATE:
                    return wire.parse_certificate_list(body, tls13=True)
                if kind not in (HANDSHAKE_ENCRYPTED_EXTENSIONS, HANDSHAKE_CERTIFICATE_REQUEST):
                    raise wire.TlsProtocolError(
                        f"handshake message {kind} before the Certificate (a PSK resumption?)"
                    )
    raise wire.TlsProtocolError(f"no Certificate in the first {MAX_ENCRYPTED_RECORDS} records")


__all__ = ["fetch_certificates_tls13", "server_handshake_keys"]
