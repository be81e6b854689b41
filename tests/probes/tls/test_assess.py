"""Whole-endpoint assessment against real servers: openssl s_server and nginx with chosen
protocols, suites, groups and certificates, the STARTTLS lab server, the legacy fake for what
OpenSSL 3 cannot serve, and hostile servers. Expected suites come from `openssl ciphers
-stdname`, not from posture's own tables.

Addresses: 127.0.85.1-60 (port 4433 unless said otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from demo.tlslab import LegacyTlsServer, NginxServer, StartTlsServer
from scanner.probes.tls.assess import TlsOptions, assess, assess_endpoint
from scanner.probes.tls.connection import Endpoint, HostLimiter
from scanner.probes.tls.model import StartTls, TlsEndpoint, TlsVersion
from scanner.rating.grade import grade

PORT = 4433
needs_nginx = pytest.mark.skipif(
    not NginxServer.available(), reason="needs nginx: apt-get install -y nginx-light"
)


def iana(openssl_spec: str, version: str) -> list[str]:
    """IANA names of an OpenSSL cipher string, in OpenSSL's order (`openssl ciphers -stdname`)."""
    out = subprocess.run(
        ["openssl", "ciphers", "-stdname", "-s", f"-{version}", openssl_spec],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return [line.split(" - ")[0].strip() for line in out.splitlines() if line.strip()]


def options(pki: dict[str, tuple[Path, Path]], **kwargs: object) -> TlsOptions:
    return TlsOptions(timeout=3, ca_file=pki["ca"][0], **kwargs)  # type: ignore[arg-type]


def run(address: str, opts: TlsOptions, port: int = PORT, **kwargs: object) -> TlsEndpoint:
    endpoint = Endpoint(address, port, sni=kwargs.pop("sni", "localhost"), **kwargs)  # type: ignore[arg-type]
    [result] = assess([endpoint], opts)
    return result


def der_of(pem: Path) -> bytes:
    return x509.load_pem_x509_certificates(pem.read_bytes())[0].public_bytes(Encoding.DER)


@pytest.fixture
def legacy() -> Iterator[Callable[..., LegacyTlsServer]]:
    started: list[LegacyTlsServer] = []

    def start(address: str, **kwargs: object) -> LegacyTlsServer:
        server = LegacyTlsServer(address, PORT, lifetime=60, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def test_suites_per_version_match_openssl_with_server_order(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    tls12 = (
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"
        ":AES128-SHA"
    )
    tls13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    s_server(
        "127.0.85.1",
        PORT,
        protocols=("tls1_2", "tls1_3"),
        ciphers=tls12,
        ciphersuites=tls13,
        server_preference=True,
        groups="x25519:secp384r1:ffdhe2048",
        dhparam="ffdhe2048",
    )
    result = run("127.0.85.1", options(pki))
    assert result.error is None
    p12, p13 = result.protocol(TlsVersion.TLS12), result.protocol(TlsVersion.TLS13)
    assert p12.supported and p13.supported
    assert list(p12.suites) == iana(tls12, "tls1_2")
    assert p12.server_preference is True
    assert list(p13.suites) == tls13.split(":")
    for old in (TlsVersion.SSL2, TlsVersion.SSL3, TlsVersion.TLS10, TlsVersion.TLS11):
        assert result.protocol(old).supported is False
    names = [g.name for g in result.groups]
    assert names[:2] == ["x25519", "secp384r1"]
    assert result.dh_bits == 2048
    assert result.secure_renegotiation is True and result.compression is False
    assert result.heartbleed is False and result.fallback_scsv is True
    chain = result.chain
    assert chain is not None and chain.trusted and chain.hostname_matches
    assert chain.leaf.sha256 == hashlib.sha256(der_of(pki["good"][0])).hexdigest()
    rating = grade(result)
    assert rating is not None and rating.letter == "A", rating


def test_client_order_and_tls13_only_chain(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    s_server("127.0.85.2", PORT, "good-ec", protocols=("tls1_3",))
    result = run("127.0.85.2", options(pki))
    p13 = result.protocol(TlsVersion.TLS13)
    assert set(p13.suites) == {
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
    }
    assert p13.server_preference is False  # OpenSSL follows the client's order by default
    assert result.protocol(TlsVersion.TLS12).supported is False
    assert result.chain is not None and result.chain.key_type == "ecdsa"  # read from TLS 1.3
    assert result.secure_renegotiation is True


def test_tls10_and_11_need_seclevel_0_and_cap_the_grade(
    s_server: Callable[..., object], pki: dict[str, tuple[Path, Path]]
) -> None:
    s_server("127.0.85.3", PORT, protocols=("tls1", "tls1_1", "tls1_2"))
    result = run("127.0.85.3", options(pki))
    for version in (TlsVersion.TLS10, TlsVersion.TLS11, TlsVersion.TLS12):
        assert result.protocol(version).supported, version
    expected10 = iana("DEFAULT:@SECLEVEL=0:!aECDSA", "tls1")  # an RSA certificate
    assert set(result.protocol(TlsVersion.TLS10).suites) == set(expected10)
    assert result.fallback_scsv is True
    rating = grade(result)
    assert rating is not None and rating.letter == "B"
    assert any("TLSv1.0" in cap.reason for cap in rating.caps)


def test_legacy_server_sslv3_rc4_export_compression_heartbleed(
    legacy: Callable[..., LegacyTlsServer], pki: dict[str, tuple[Path, Path]]
) -> None:
    server = legacy(
        "127.0.85.4",
        versions={0x0300, 0x0301},
        suites=(0x0005, 0x0004, 0x000A, 0x0003),
        cert_der=der_of(pki["good"][0]),
        compression=True,
        secure_renegotiation=False,
        heartbeat="vulnerable",
        sslv2=True,
        fallback_scsv=False,
    )
    result = run("127.0.85.4", options(pki))
    assert result.protocol(TlsVersion.SSL2).supported is True
    assert result.protocol(TlsVersion.SSL3).suites == (
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_RC4_128_MD5",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
    )
    assert result.protocol(TlsVersion.SSL3).server_preference is True
    assert result.protocol(TlsVersion.TLS12).supported is False
    assert result.compression is True and result.heartbleed is True
    assert result.secure_renegotiation is False and result.fallback_scsv is False
    # The over-long probe was answered (that is what `heartbleed` is read from). The well-formed
    # one follows in the same write; the client hangs up once it has the first answer, and a
    # reset can discard the second request before the server reads it, so it may go unanswered.
    assert server.heartbeats_answered in (1, 2)
    rating = grade(result)
    assert rating is not None and rating.letter == "F"


def test_patched_heartbeat_is_not_heartbleed(
    legacy: Callable[..., LegacyTlsServer], pki: dict[str, tuple[Path, Path]]
) -> None:
    server = legacy(
        "127.0.85.5",
        versions={0x0303},
        suites=(0xC02F, 0x009C),
        cert_der=der_of(pki["good"][0]),
        heartbeat="patched",
    )
    started = time.monotonic()
    result = run("127.0.85.5", options(pki))
    assert result.heartbeat is True and result.heartbleed is False
    assert server.heartbeats_answered == 1  # only the well-formed request
    assert time.monotonic() - started < 2  # told in one round trip, not by a timeout


@pytest.mark.parametrize(
    ("host", "cert", "letter", "field"),
    [
        (10, "expired", "T", "expired"),
        (11, "self-signed", "T", "self_signed"),
        (12, "wrong-name", "M", None),
        (13, "incomplete-chain", "T", "incomplete"),
        (14, "rsa1024", "B", None),
        (15, "sha1-signed", "T", "weak_signature"),
    ],
)
def test_certificate_problems_show_in_the_chain_and_the_grade(
    s_server: Callable[..., object],
    pki: dict[str, tuple[Path, Path]],
    host: int,
    cert: str,
    letter: str,
    field: str | None,
) -> None:
    address = f"127.0.85.{host}"
    # SECLEVEL 0: Debian's OpenSSL refuses to serve RSA-1024 or SHA-1 certificates otherwise.
    s_server(address, PORT, cert, protocols=("tls1_2", "tls1_3"), ciphers="DEFAULT:@SECLEVEL=0")
    result = run(address, options(pki))
    chain = result.chain
    assert chain is not None
    if cert == "rsa1024":
        assert (chain.key_type, chain.key_bits, chain.trusted) == ("rsa", 1024, True)
    elif cert == "sha1-signed":
        assert chain.weak_signature == "sha1"
    elif field is not None:
        assert getattr(chain, field) is True
    else:
        assert chain.hostname_matches is False
    rating = grade(result)
    assert rating is not None and rating.letter == letter


@needs_nginx
def test_nginx_intermediate_with_hsts(pki: dict[str, tuple[Path, Path]]) -> None:
    from demo.tlslab import MOZILLA_INTERMEDIATE_CIPHERS

    cert, key = pki["good"]
    with NginxServer(
        "127.0.85.20",
        8443,
        cert,
        key,
        ciphers=MOZILLA_INTERMEDIATE_CIPHERS,
        dhparam="ffdhe2048",
        hsts="max-age=63072000; includeSubDomains",
        lifetime=60,
    ):
        result = run("127.0.85.20", options(pki), port=8443)
    assert result.hsts is not None and result.hsts.max_age == 63072000
    assert result.hsts.include_subdomains is True
    assert set(result.protocol(TlsVersion.TLS12).suites) == set(
        iana(MOZILLA_INTERMEDIATE_CIPHERS + ":!aECDSA", "tls1_2")  # an RSA certificate
    )
    assert result.dh_bits == 2048
    rating = grade(result)
    assert rating is not None and rating.letter == "A+", rating


@pytest.mark.parametrize(
    ("host", "protocol"),
    [
        (30, StartTls.SMTP),
        (32, StartTls.IMAP),
        (33, StartTls.POP3),
        (34, StartTls.FTP),
        (35, StartTls.POSTGRES),
    ],
)
def test_starttls(pki: dict[str, tuple[Path, Path]], host: int, protocol: StartTls) -> None:
    cert, key = pki["good"]
    address = f"127.0.85.{host}"
    with StartTlsServer(address, 2525, protocol.value, cert, key, lifetime=60) as server:
        result = run(address, options(pki), port=2525, starttls=protocol)
        assert result.error is None
        assert result.protocol(TlsVersion.TLS12).supported
        assert result.protocol(TlsVersion.TLS13).supported
        assert result.chain is not None and result.chain.trusted
        assert len(server.server_names) >= 5
        assert set(server.server_names) == {"localhost"}  # SNI on every hello, after STARTTLS


def test_starttls_not_offered_is_reported(pki: dict[str, tuple[Path, Path]]) -> None:
    cert, key = pki["good"]
    with StartTlsServer("127.0.85.31", 2525, "smtp", cert, key, offer_starttls=False, lifetime=60):
        result = run("127.0.85.31", options(pki), port=2525, starttls=StartTls.SMTP)
    assert result.starttls_refused is True
    assert result.error is not None and "STARTTLS" in result.error


# --- hostile or absent servers ---------------------------------------------------------------


async def _hostile(address: str, handler: object, opts: TlsOptions) -> TlsEndpoint:
    server = await asyncio.start_server(handler, address, PORT)  # type: ignore[arg-type]
    try:
        return await assess_endpoint(Endpoint(address, PORT, sni="localhost"), opts)
    finally:
        server.close()
        await server.wait_closed()


def test_silent_server_ends_in_a_clear_error_within_its_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)
        writer.close()

    result = asyncio.run(_hostile("127.0.85.40", silent, TlsOptions(timeout=0.5)))
    assert result.error is not None and "0.5s" in result.error
    assert result.elapsed < 5


def test_non_tls_server_is_named() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    result = asyncio.run(_hostile("127.0.85.41", http, TlsOptions(timeout=1)))
    assert result.error is not None and result.error.startswith("does not speak TLS")


def test_closed_port_is_an_error_not_an_exception() -> None:
    result = run("127.0.85.42", TlsOptions(timeout=1))
    assert result.error is not None and "refused" in result.error


def test_connection_cap_per_host_holds(pki: dict[str, tuple[Path, Path]]) -> None:
    """A counting proxy in front of the legacy fake sees at most `connections_per_host`."""
    cert = der_of(pki["good"][0])
    peak = total = 0
    open_sockets: set[socket.socket] = set()

    def still_open(sock: socket.socket) -> bool:
        """Asks the kernel, not the event loop, whether the client has closed its end: a FIN
        or a reset queued ahead of a new connection's accept counts, whatever order the loop
        runs their callbacks in."""
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    async def main() -> TlsEndpoint:
        nonlocal peak, total
        with LegacyTlsServer(
            "127.0.85.50",
            PORT,
            versions={0x0301, 0x0302, 0x0303},
            suites=tuple(range(1, 40)),
            cert_der=cert,
            lifetime=60,
        ):

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()

            async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                """Counts the client's connections open at the socket level at each accept."""
                nonlocal peak, total
                for sock in [s for s in open_sockets if not still_open(s)]:
                    open_sockets.discard(sock)
                    sock.close()
                mine = socket.socket(fileno=os.dup(writer.get_extra_info("socket").fileno()))
                open_sockets.add(mine)
                total += 1
                peak = max(peak, len(open_sockets))
                upstream: asyncio.Task[None] | None = None
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.85.50", PORT)
                    upstream = asyncio.create_task(pump(up_reader, writer))
                    async with asyncio.timeout(10):
                        await pump(reader, up_writer)
                    up_writer.close()
                finally:
                    if upstream is not None:
                        upstream.cancel()
                    writer.close()

            server = await asyncio.start_server(proxy, "127.0.85.51", PORT)
            try:
                opts = TlsOptions(timeout=3, connections_per_host=3)
                return await assess_endpoint(
                    Endpoint("127.0.85.51", PORT), opts, HostLimiter(3, 0.0)
                )
            finally:
                server.close()
                await server.wait_closed()

    try:
        result = asyncio.run(main())
    finally:
        for sock in open_sockets:
            sock.close()
    assert result.protocol(TlsVersion.TLS12).supported
    assert len(result.protocol(TlsVersion.TLS12).suites) > 20
    assert 1 <= peak <= 3
    assert total == result.connections


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        TlsOptions(timeout=0)
    with pytest.raises(ValueError):
        TlsOptions(connections_per_host=0)
    assert TlsOptions(now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)).now is not None
