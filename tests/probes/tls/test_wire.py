"""Parsing what servers send: recorded flights no local server can produce any more (SSLv2,
SSLv3 with RC4, EXPORT with DEFLATE, Heartbleed), hostile servers, and random bytes.

Hostile servers run on 127.0.81.100-130, inside the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.probes.tls import hello, wire
from scanner.probes.tls.model import TlsVersion
from scanner.probes.tls.wire import FlightKind

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> bytes:
    """An annotated hex recording: hex before '#' on each line."""
    text = (DATA / name).read_text()
    return bytes.fromhex("".join(re.sub(r"#.*", "", line) for line in text.splitlines()))


def test_sslv3_server_hello_with_rc4() -> None:
    flight = wire.parse_flight(recorded("sslv3_rc4_server_hello.hex"))
    assert flight.kind is FlightKind.SERVER_HELLO
    assert flight.version == 0x0300 and flight.suite == 0x0005
    assert flight.compression == 0 and flight.certificates == (bytes.fromhex("3003020101"),)
    assert flight.secure_renegotiation is False and len(flight.session_id) == 32


def test_tls10_export_suite_with_deflate_and_no_renegotiation_info() -> None:
    flight = wire.parse_flight(recorded("tls10_export_deflate.hex"))
    assert (flight.version, flight.suite, flight.compression) == (0x0301, 0x0003, 1)
    assert flight.secure_renegotiation is False
    assert flight.server_key_exchange == wire.ServerKeyExchange(None)  # RSA_EXPORT key
    assert len(flight.certificates) == 1


def test_sslv2_server_hello() -> None:
    flight = wire.parse_flight(recorded("sslv2_server_hello.hex"))
    assert flight.kind is FlightKind.SSLV2_SERVER_HELLO
    assert flight.sslv2_cipher_specs == (0x010080, 0x0700C0, 0x020080)
    assert flight.certificates == (bytes.fromhex("3003020101"),)


def test_split_server_hello_and_many_messages_in_one_record() -> None:
    data = recorded("tls12_ecdhe_split.hex")
    flight = wire.parse_flight(data)
    assert flight.kind is FlightKind.SERVER_HELLO
    assert flight.suite == 0xC02F and flight.secure_renegotiation is True
    assert flight.heartbeat_mode == 1
    assert flight.server_key_exchange == wire.ServerKeyExchange("ecdhe", group=0x0018)
    short = wire.parse_flight(data, want_certificate=False)
    assert short.suite == 0xC02F and short.certificates == () and short.server_key_exchange is None


def test_dhe_prime_size() -> None:
    flight = wire.parse_flight(recorded("tls12_dhe_1024.hex"))
    assert flight.server_key_exchange == wire.ServerKeyExchange("dhe", dh_bits=1024)


def test_heartbeat_response_payload_length() -> None:
    async def read(data: bytes) -> int | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await wire.read_heartbeat_response(reader, 1.0)

    assert asyncio.run(read(recorded("heartbeat_response.hex"))) == 16
    assert asyncio.run(read(bytes.fromhex("15030300020228"))) is None  # an alert instead
    assert asyncio.run(read(b"")) is None
    assert asyncio.run(read(b"\x18\x03\x03\x00\x01\x02")) is None  # too short to count


def test_alert_and_hello_retry() -> None:
    alert = wire.parse_flight(bytes.fromhex("15030300020246"))
    assert alert.kind is FlightKind.ALERT and alert.alert == wire.Alert(2, 70)
    assert alert.alert.name == "protocol_version"
    body = (
        b"\x03\x03"
        + hello.HELLO_RETRY_RANDOM
        + b"\x00"
        + b"\x13\x02\x00"
        + b"\x00\x0c"
        + b"\x00\x2b\x00\x02\x03\x04"  # supported_versions TLS 1.3
        + b"\x00\x33\x00\x02\x00\x18"  # key_share: secp384r1 wanted
    )
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    flight = wire.parse_flight(b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message)
    assert flight.kind is FlightKind.HELLO_RETRY
    assert (flight.version, flight.suite, flight.selected_group) == (0x0304, 0x1302, 0x0018)
    assert flight.raw_handshake == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x16\x03\x03\xff\xff" + bytes(10), "more than TLS allows"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not a TLS record: the server sent 'SSH-2"),
        (b"\x16\x03\x03\x00\x10\x02\x00\x00\x40", "truncated"),
        (b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00", "before the ServerHello"),
        (bytes.fromhex("1603030004") + bytes.fromhex("02000000"), "ServerHello is truncated"),
    ],
)
def test_broken_flights_raise_a_typed_error(data: bytes, message: str) -> None:
    with pytest.raises(wire.TlsProtocolError, match=message):
        wire.parse_flight(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_anything_but_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(wire.TlsProtocolError):
        wire.parse_flight(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_random_handshake_bodies_inside_valid_records(body: bytes) -> None:
    data = b"\x16\x03\x03" + len(body).to_bytes(2, "big") + body
    with contextlib.suppress(wire.TlsProtocolError):
        wire.parse_flight(data)


# --- hostile servers ----------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def against(address: str, handler: Handler, *, timeout: float = 1.0) -> wire.ServerFlight:
    """Send a TLS 1.2 hello to a server running `handler` and read its flight."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                await handler(reader, writer)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, address, 4433)
    try:
        reader, writer = await asyncio.open_connection(address, 4433)
        writer.write(hello.client_hello(TlsVersion.TLS12, [0xC02F, 0x002F]))
        await writer.drain()
        flight = await wire.read_flight(reader, timeout=timeout, limit=64 * 1024)
        writer.close()
        return flight
    finally:
        server.close()
        await server.wait_closed()


def run(address: str, handler: Handler) -> tuple[wire.ServerFlight, float]:
    started = time.monotonic()
    flight = asyncio.run(against(address, handler))
    return flight, time.monotonic() - started


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3)


async def closes_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)


async def closes_mid_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    data = recorded("sslv3_rc4_server_hello.hex")
    writer.write(data[:30])
    await writer.drain()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    await writer.drain()


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Valid-looking handshake records forever (a message that never completes)."""
    await reader.read(100)
    writer.write(b"\x16\x03\x03\x40\x00\x02\xff\xff\xff" + bytes(0x4000 - 4))
    for _ in range(200):
        writer.write(b"\x16\x03\x03\x40\x00" + bytes(0x4000))
        await writer.drain()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One byte every 0.2 s: each read succeeds, the whole flight never ends."""
    await reader.read(100)
    for byte in recorded("sslv3_rc4_server_hello.hex"):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.2)


def test_silent_server_costs_its_timeout() -> None:
    flight, elapsed = run("127.0.81.100", silent)
    assert flight.kind is FlightKind.CLOSED
    assert flight.error == "no complete answer within 1s"
    assert elapsed < 2.5


def test_server_closing_at_once_or_mid_handshake() -> None:
    flight, _ = run("127.0.81.101", closes_at_once)
    assert flight.kind is FlightKind.CLOSED and "closed" in (flight.error or "")
    flight, elapsed = run("127.0.81.102", closes_mid_handshake)
    assert flight.kind is FlightKind.CLOSED
    assert flight.error == "the server closed the connection in the middle of the handshake"
    assert elapsed < 2.5


def test_garbage_answer_is_described() -> None:
    flight, _ = run("127.0.81.103", garbage)
    assert flight.kind is FlightKind.GARBAGE
    assert flight.error == "not a TLS record: the server sent 'HTTP/'"


def test_endless_stream_stops_at_the_byte_limit() -> None:
    flight, elapsed = run("127.0.81.104", endless)
    assert flight.kind is FlightKind.GARBAGE
    assert flight.error == f"more than {64 * 1024} bytes without a ServerHello"
    assert elapsed < 2.5


def test_trickling_server_is_cut_by_the_flight_deadline() -> None:
    flight, elapsed = run("127.0.81.105", trickle)
    assert flight.kind is FlightKind.CLOSED
    assert "within 1s" in (flight.error or "")
    assert elapsed < 2.5
