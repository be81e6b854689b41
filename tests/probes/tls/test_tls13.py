"""TLS 1.3 certificate retrieval against a real `openssl s_server`: the decrypted chain is the
exact DER the server was given, for every suite, after a HelloRetryRequest too; and the wire
layer reads real ServerHellos, HelloRetryRequests and alerts.

Addresses: 127.0.81.1-60, port 4433.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.probes.tls import hello, suites, tls13, wire
from scanner.probes.tls.model import TlsVersion
from scanner.probes.tls.wire import FlightKind

PORT = 4433


def der_of(pem: Path) -> bytes:
    return x509.load_pem_x509_certificates(pem.read_bytes())[0].public_bytes(Encoding.DER)


async def fetch(address: str, sni: str | None = "localhost", **kwargs: object) -> tuple[bytes, ...]:
    reader, writer = await asyncio.open_connection(address, PORT)
    try:
        return await tls13.fetch_certificates_tls13(reader, writer, sni=sni, timeout=3, **kwargs)  # type: ignore[arg-type]
    finally:
        writer.close()


async def flight_of(address: str, data: bytes) -> wire.ServerFlight:
    reader, writer = await asyncio.open_connection(address, PORT)
    try:
        writer.write(data)
        await writer.drain()
        return await wire.read_flight(reader, timeout=3)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("host", "suite", "cert"),
    [
        (1, "TLS_AES_128_GCM_SHA256", "good"),
        (2, "TLS_AES_256_GCM_SHA384", "good"),
        (3, "TLS_CHACHA20_POLY1305_SHA256", "good-ec"),
        (4, "TLS_AES_128_CCM_SHA256", "good-ec"),
    ],
)
def test_chain_is_decrypted_for_each_suite(
    s_server: Callable[..., object],
    pki: dict[str, tuple[Path, Path]],
    host: int,
    suite: str,
    cert: str,
) -> None:
    address = f"127.0.81.{host}"
    s_server(address, PORT, cert, protocols=("tls1_3",), ciphersuites=suite)
    code = suites.code(suite)
    chain = asyncio.run(fetch(address, suites=(code,)))
    assert chain[0] == der_of(pki[cert][0])


def test_hello_retry_for_another_group(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    address = "127.0.81.5"
    s_server(address, PORT, protocols=("tls1_3",), groups="secp384r1")
    assert asyncio.run(fetch(address))[0] == der_of(pki["good"][0])
    shares = asyncio.run(
        flight_of(address, hello.client_hello(TlsVersion.TLS13, [0x1301], key_shares=()))
    )
    assert shares.kind is FlightKind.HELLO_RETRY and shares.selected_group == hello.SECP384R1


def test_server_without_tls13_gives_a_clear_error(s_server: Callable[..., object]) -> None:
    address = "127.0.81.6"
    s_server(address, PORT, protocols=("tls1_2",))
    with pytest.raises(wire.TlsProtocolError, match=r"did not negotiate TLS 1\.3|refused TLS 1\.3"):
        asyncio.run(fetch(address))


def test_tls12_flight_from_a_real_server(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    address = "127.0.81.7"
    s_server(
        address,
        PORT,
        protocols=("tls1_2",),
        ciphers="ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256",
        groups="secp384r1:x25519",
        dhparam="ffdhe3072",
    )
    ecdhe = suites.code("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    dhe = suites.code("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")
    flight = asyncio.run(
        flight_of(
            address,
            hello.client_hello(TlsVersion.TLS12, [ecdhe], groups=[0x18], sni="localhost"),
        )
    )
    assert flight.kind is FlightKind.SERVER_HELLO
    assert (flight.version, flight.suite) == (0x0303, ecdhe)
    assert flight.certificates[0] == der_of(pki["good"][0])
    assert flight.server_key_exchange == wire.ServerKeyExchange("ecdhe", group=0x18)
    assert flight.secure_renegotiation is True
    flight = asyncio.run(flight_of(address, hello.client_hello(TlsVersion.TLS12, [dhe])))
    assert flight.server_key_exchange == wire.ServerKeyExchange("dhe", dh_bits=3072)
    refused = asyncio.run(flight_of(address, hello.client_hello(TlsVersion.TLS12, [0x0005])))
    assert refused.kind is FlightKind.ALERT and refused.alert is not None
    assert refused.alert.name == "handshake_failure"
    old = asyncio.run(flight_of(address, hello.client_hello(TlsVersion.TLS11, [ecdhe, 0x002F])))
    assert old.kind is FlightKind.ALERT


def test_sni_reaches_the_server(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    """s_server with -servername_fatal refuses a hello whose SNI is not its name."""
    address = "127.0.81.8"
    cert2, key2 = pki["good-ec"]
    s_server(
        address,
        PORT,
        protocols=("tls1_2", "tls1_3"),
        extra_args=[
            *("-servername", "right.test", "-servername_fatal"),
            *("-cert2", str(cert2), "-key2", str(key2)),
        ],
    )
    right = asyncio.run(
        flight_of(address, hello.client_hello(TlsVersion.TLS12, [0xC02F, 0xC02B], sni="right.test"))
    )
    wrong = asyncio.run(
        flight_of(address, hello.client_hello(TlsVersion.TLS12, [0xC02F, 0xC02B], sni="wrong.test"))
    )
    assert right.kind is FlightKind.SERVER_HELLO
    assert right.suite == 0xC02B  # the ECDSA certificate configured for right.test
    assert wrong.kind is FlightKind.ALERT and wrong.alert is not None
    assert wrong.alert.name == "unrecognized_name"
