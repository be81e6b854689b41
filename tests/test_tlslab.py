"""demo.tlslab: each kind of lab TLS server really serves what it was told, and stops.

Addresses: 127.0.82.10-99, one per test (`python -m demo.tlslab` and bench/tls.py use the rest).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.tlslab import (
    HelloError,
    LabServerError,
    LegacyTlsServer,
    NginxServer,
    OpenSslServer,
    StartTlsServer,
    parse_client_hello,
    parse_sslv2_client_hello,
)

ROOT = Path(__file__).resolve().parents[1]
needs_nginx = pytest.mark.skipif(
    not NginxServer.available(), reason="needs nginx: apt-get install -y nginx-light"
)


def addr(host: int) -> str:
    assert 10 <= host <= 99
    return f"127.0.82.{host}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    from demo.pki import standard_set

    return standard_set(tmp_path_factory.mktemp("pki"))


def der_of(pem: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)


def client_context(
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def handshake(
    address: str, port: int, context: ssl.SSLContext | None = None
) -> tuple[str, str, bytes]:
    """(version, cipher, leaf DER) of one handshake with Python's ssl."""
    context = context or client_context()
    with (
        socket.create_connection((address, port), 5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        cipher = tls.cipher()
        der = tls.getpeercert(binary_form=True)
        assert cipher is not None and der is not None
        return str(tls.version()), cipher[0], der


def refuses(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), 2).close()
    except ConnectionRefusedError:
        return True
    return False


def group_gone(pgid: int | None, within: float = 5.0) -> bool:
    """Whether every process of the group is gone, waiting up to `within` seconds: a killed
    process stays in its group until the kernel has torn it down and it was reaped."""
    assert pgid is not None
    deadline = time.monotonic() + within
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def s_client(address: str, port: int, *args: str) -> str:
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{port}", *args],
        input=b"",
        capture_output=True,
        timeout=15,
        check=False,
    )
    return done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# openssl s_server


def test_s_server_serves_the_chosen_version_suite_and_certificate(certs: dict) -> None:
    cert, key = certs["good"]
    server = OpenSslServer(
        addr(10), 4433, cert, key, protocols=("tls1_2",), ciphers="ECDHE-RSA-AES128-GCM-SHA256"
    )
    with server:
        version, cipher, der = handshake(addr(10), 4433)
        assert (version, cipher) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
        assert der == der_of(cert)
        with pytest.raises(ssl.SSLError):
            handshake(addr(10), 4433, client_context(minimum=ssl.TLSVersion.TLSv1_3))
        assert "-no_tls1_3" in server.argv()
    assert refuses(addr(10), 4433)
    assert group_gone(server.process_group)


def test_s_server_tls13_suites_and_groups(certs: dict) -> None:
    cert, key = certs["good"]
    with OpenSslServer(
        addr(11),
        4433,
        cert,
        key,
        protocols=("tls1_3",),
        ciphersuites="TLS_CHACHA20_POLY1305_SHA256",
        groups="P-384",
    ):
        assert handshake(addr(11), 4433)[:2] == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
        out = s_client(addr(11), 4433)
        assert "Server Temp Key: ECDH, secp384r1" in out, out


def test_s_server_legacy_tls10_gets_seclevel_0(certs: dict) -> None:
    cert, key = certs["good"]
    with OpenSslServer(addr(12), 4433, cert, key, protocols=("tls1",)) as server:
        assert server.ciphers == "DEFAULT:@SECLEVEL=0"
        legacy = client_context(
            ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_3, ciphers="DEFAULT:@SECLEVEL=0"
        )
        version, cipher, _ = handshake(addr(12), 4433, legacy)
        assert version == "TLSv1"
        assert "SHA" in cipher
        with pytest.raises(ssl.SSLError):
            handshake(addr(12), 4433)  # a TLS 1.2+ client finds nothing in common


@pytest.mark.parametrize(("server_preference", "expected"), [(True, "AES256"), (False, "AES128")])
def test_s_server_preference(certs: dict, server_preference: bool, expected: str) -> None:
    cert, key = certs["good"]
    host = addr(13 if server_preference else 14)
    with OpenSslServer(
        host,
        4433,
        cert,
        key,
        protocols=("tls1_2",),
        ciphers="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
        server_preference=server_preference,
    ):
        client = client_context(ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
        assert (
            handshake(host, 4433, client)[1]
            == f"ECDHE-RSA-{expected}-GCM-SHA{384 if expected == 'AES256' else 256}"
        )


@pytest.mark.parametrize(("group", "bits"), [("ffdhe2048", 2048), ("rfc5114-1024", 1024)])
def test_s_server_dh_parameters(certs: dict, group: str, bits: int) -> None:
    cert, key = certs["good"]
    host = addr(15 if bits == 2048 else 16)
    with OpenSslServer(
        host,
        4433,
        cert,
        key,
        protocols=("tls1_2",),
        ciphers="DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        dhparam=group,
    ):
        out = s_client(host, 4433, "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
        assert f"Server Temp Key: DH, {bits} bits" in out, out


def test_s_server_start_failure_carries_the_log(certs: dict) -> None:
    cert, key = certs["good"]
    server = OpenSslServer(addr(17), 4433, cert, key, ciphers="NO-SUCH-CIPHER")
    with pytest.raises(LabServerError) as caught:
        server.start()
    assert "exited" in str(caught.value)
    assert "cipher" in str(caught.value).lower()  # s_server's own complaint, from its log
    assert not server.running
    assert refuses(addr(17), 4433)


def test_s_server_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    server = OpenSslServer(addr(18), 4433, tmp_path / "none.pem", tmp_path / "none.key")
    with pytest.raises(LabServerError, match="no such file"):
        server.start()


def test_lifetime_stops_a_forgotten_s_server(certs: dict) -> None:
    cert, key = certs["good"]
    server = OpenSslServer(addr(19), 4433, cert, key, lifetime=1.0).start()
    try:
        assert not refuses(addr(19), 4433)
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not server.running
        assert refuses(addr(19), 4433)
        assert group_gone(server.process_group)
    finally:
        server.stop()


def test_a_server_starts_once(certs: dict) -> None:
    cert, key = certs["good"]
    server = OpenSslServer(addr(20), 4433, cert, key)
    with server, pytest.raises(LabServerError, match="starts once"):
        server.start()
    server.stop()  # idempotent
    with pytest.raises(LabServerError):
        server.start()


def test_bad_arguments_are_refused_before_anything_runs(certs: dict) -> None:
    cert, key = certs["good"]
    with pytest.raises(ValueError, match="unknown protocols"):
        OpenSslServer(addr(21), 4433, cert, key, protocols=("ssl3",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OpenSslServer("localhost", 4433, cert, key)
    with pytest.raises(ValueError, match="unknown DH group"):
        OpenSslServer(addr(21), 4433, cert, key, dhparam="dh512").start()
    with pytest.raises(ValueError, match="contiguous"):
        StartTlsServer(addr(21), 25, "smtp", cert, key, tls_versions=("tls1", "tls1_2"))


# --------------------------------------------------------------------------------------------
# nginx


def http_get(address: str, port: int) -> bytes:
    with (
        socket.create_connection((address, port), 5) as raw,
        client_context().wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: lab.test\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


@needs_nginx
def test_nginx_intermediate_with_hsts(certs: dict) -> None:
    from demo.tlslab import MOZILLA_INTERMEDIATE_CIPHERS

    cert, key = certs["good"]
    server = NginxServer(
        addr(30),
        4443,
        cert,
        key,
        ciphers=MOZILLA_INTERMEDIATE_CIPHERS,
        dhparam="ffdhe2048",
        hsts="max-age=31536000; includeSubDomains",
    )
    with server:
        assert handshake(addr(30), 4443)[0] == "TLSv1.3"
        tls12 = client_context(maximum=ssl.TLSVersion.TLSv1_2)
        version, cipher, der = handshake(addr(30), 4443, tls12)
        assert (version, der) == ("TLSv1.2", der_of(cert))
        assert cipher in MOZILLA_INTERMEDIATE_CIPHERS.split(":")
        dhe = client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="DHE-RSA-AES128-GCM-SHA256")
        assert handshake(addr(30), 4443, dhe)[1] == "DHE-RSA-AES128-GCM-SHA256"
        with pytest.raises(ssl.SSLError):  # outside the intermediate list
            handshake(
                addr(30), 4443, client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA")
            )
        old = client_context(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0")
        with pytest.raises(ssl.SSLError):
            handshake(addr(30), 4443, old)
        response = http_get(addr(30), 4443)
        assert response.startswith(b"HTTP/1.1 200")
        assert b"Strict-Transport-Security: max-age=31536000; includeSubDomains" in response
        pgid = server.process_group
    assert refuses(addr(30), 4443)
    assert group_gone(pgid)
    assert not server.workdir.exists()


@needs_nginx
def test_nginx_ecdsa_narrow_list_server_preference(certs: dict) -> None:
    cert, key = certs["good-ec"]
    with NginxServer(
        addr(31),
        4443,
        cert,
        key,
        protocols="TLSv1.2",
        ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
        prefer_server_ciphers=True,
        ecdh_curve="secp384r1",
    ):
        client = client_context(
            ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
        )
        version, cipher, der = handshake(addr(31), 4443, client)
        assert (version, cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
        assert der == der_of(cert)
        assert "Server Temp Key: ECDH, secp384r1" in s_client(addr(31), 4443)
        response = http_get(addr(31), 4443)
        assert b"Strict-Transport-Security" not in response


@needs_nginx
def test_nginx_rejected_configuration_is_reported(certs: dict, tmp_path: Path) -> None:
    cert, key = certs["good"]
    server = NginxServer(
        addr(32), 4443, cert, key, server_directives=["no_such_directive on;"], workdir=tmp_path
    )
    with pytest.raises(LabServerError, match="nginx -t") as caught:
        server.start()
    assert "no_such_directive" in str(caught.value)
    assert refuses(addr(32), 4443)


def test_nginx_configuration_values_cannot_inject_directives(certs: dict) -> None:
    cert, key = certs["good"]
    server = NginxServer(addr(33), 4443, cert, key, hsts='max-age=1"; return 500; #')
    with pytest.raises(ValueError, match="cannot go into an nginx configuration"):
        server.config()


# --------------------------------------------------------------------------------------------
# STARTTLS


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "ftp", "postgres"])
def test_starttls_upgrades_for_openssl_s_client(certs: dict, protocol: str) -> None:
    cert, key = certs["good"]
    host = addr(40 + ["smtp", "imap", "pop3", "ftp", "postgres"].index(protocol))
    with StartTlsServer(host, 2525, protocol, cert, key, tls_versions=("tls1_2",)) as server:  # type: ignore[arg-type]
        out = s_client(host, 2525, "-starttls", protocol)
        assert "New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384" in out, out
        deadline = time.monotonic() + 5
        while not server.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.sessions[0].version == "TLSv1.2"
        assert server.sessions[0].error is None
    assert refuses(host, 2525)


def _lines_until(sock: socket.socket, last_prefix: bytes) -> list[bytes]:
    data = b""
    while not any(
        line.startswith(last_prefix) for line in data.split(b"\r\n") if data.endswith(b"\r\n")
    ):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\r\n").split(b"\r\n")


def test_smtp_preamble_is_what_postfix_says(certs: dict) -> None:
    cert, key = certs["good"]
    with (
        StartTlsServer(addr(50), 2525, "smtp", cert, key) as server,
        socket.create_connection((addr(50), 2525), 5) as sock,
    ):
        sock.settimeout(5)
        assert _lines_until(sock, b"220 ")[0].startswith(b"220 mail.lab.test ESMTP")
        sock.sendall(b"EHLO scanner.test\r\n")
        lines = _lines_until(sock, b"250 ")
        assert b"250-STARTTLS" in lines
        assert all(line.startswith(b"250-") for line in lines[:-1])
        sock.sendall(b"STARTTLS\r\n")
        assert _lines_until(sock, b"220 ") == [b"220 2.0.0 Ready to start TLS"]
        with client_context().wrap_socket(sock) as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.getpeercert(binary_form=True) == der_of(cert)
            tls.sendall(b"QUIT\r\n")
            assert tls.recv(100).startswith(b"221")
    assert server.sessions and server.sessions[0].version == "TLSv1.3"


def test_starttls_can_be_refused(certs: dict) -> None:
    cert, key = certs["good"]
    with (
        StartTlsServer(addr(51), 2525, "smtp", cert, key, offer_starttls=False),
        socket.create_connection((addr(51), 2525), 5) as sock,
    ):
        sock.settimeout(5)
        _lines_until(sock, b"220 ")
        sock.sendall(b"EHLO scanner.test\r\n")
        assert b"250-STARTTLS" not in _lines_until(sock, b"250 ")
        sock.sendall(b"STARTTLS\r\n")
        assert _lines_until(sock, b"502")[0].startswith(b"502 ")


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "ftp", "postgres"])
def test_starttls_refused_means_no_tls_for_s_client(certs: dict, protocol: str) -> None:
    cert, key = certs["good"]
    host = addr(56 + ["smtp", "imap", "pop3", "ftp", "postgres"].index(protocol))
    # s_client may go on with a ClientHello anyway, which the server reads as a line that
    # never ends: the connection lifetime ends it.
    with StartTlsServer(
        host,
        2525,
        protocol,  # type: ignore[arg-type]
        cert,
        key,
        offer_starttls=False,
        connection_lifetime=1.0,
    ) as server:
        out = s_client(host, 2525, "-starttls", protocol)
        assert "Cipher is" not in out or "Cipher is (NONE)" in out, out
        assert server.sessions == []


def test_postgres_answers_the_ssl_request_with_s(certs: dict) -> None:
    cert, key = certs["good"]
    with (
        StartTlsServer(addr(52), 5432, "postgres", cert, key),
        socket.create_connection((addr(52), 5432), 5) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(struct.pack(">II", 8, 80877103))
        assert sock.recv(1) == b"S"
        with client_context().wrap_socket(sock) as tls:
            assert tls.version() == "TLSv1.3"


def test_starttls_handshake_failure_is_recorded(certs: dict) -> None:
    cert, key = certs["good"]
    with StartTlsServer(addr(53), 2525, "pop3", cert, key, tls_versions=("tls1_2",)) as server:
        out = s_client(addr(53), 2525, "-starttls", "pop3", "-tls1_3")
        assert "Cipher is (NONE)" in out or "alert" in out, out
        deadline = time.monotonic() + 5
        while not server.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.sessions[0].version is None
        assert server.sessions[0].error


def test_loop_server_lifetime(certs: dict) -> None:
    cert, key = certs["good"]
    server = StartTlsServer(addr(54), 2525, "imap", cert, key, lifetime=0.5).start()
    try:
        assert not refuses(addr(54), 2525)
        deadline = time.monotonic() + 5
        while server.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refuses(addr(54), 2525)
    finally:
        server.stop()


def test_busy_port_is_a_clear_error(certs: dict) -> None:
    cert, key = certs["good"]
    second = StartTlsServer(addr(55), 2525, "smtp", cert, key)
    with (
        StartTlsServer(addr(55), 2525, "smtp", cert, key),
        pytest.raises(LabServerError, match="cannot listen"),
    ):
        second.start()


# --------------------------------------------------------------------------------------------
# The legacy fake


def client_hello(
    version: int,
    suites: list[int],
    *,
    compression: bytes = b"\x00",
    extensions: list[tuple[int, bytes]] | None = None,
    record_version: int = 0x0300,
) -> bytes:
    """A ClientHello record, written out by hand."""
    body = struct.pack(">H", version) + secrets.token_bytes(32) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + struct.pack(f">{len(suites)}H", *suites)
    body += bytes([len(compression)]) + compression
    if extensions is not None:
        block = b"".join(struct.pack(">HH", k, len(v)) + v for k, v in extensions)
        body += struct.pack(">H", len(block)) + block
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", 22, record_version, len(message)) + message


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_record(sock: socket.socket) -> tuple[int, int, bytes]:
    content_type, version, length = struct.unpack(">BHH", read_exactly(sock, 5))
    return content_type, version, read_exactly(sock, length)


def exchange(address: str, port: int, hello: bytes) -> tuple[int, int, bytes]:
    with socket.create_connection((address, port), 5) as sock:
        sock.settimeout(5)
        sock.sendall(hello)
        return read_record(sock)


@pytest.fixture(scope="module")
def cert_der(certs: dict) -> bytes:
    return der_of(certs["good"][0])


def test_legacy_answers_an_sslv3_hello_byte_for_byte(cert_der: bytes) -> None:
    with LegacyTlsServer(
        addr(60),
        4433,
        versions={0x0300},
        suites=(0x0005, 0x000A),
        cert_der=cert_der,
        compression=True,
    ) as server:
        hello = client_hello(0x0300, [0x000A, 0x0005, 0x00FF], compression=b"\x01\x00")
        content_type, version, payload = exchange(addr(60), 4433, hello)
    assert (content_type, version) == (22, 0x0300)
    random, session_id = payload[6:38], payload[39:71]
    server_hello_body = (
        b"\x03\x00"
        + random
        + b"\x20"
        + session_id
        + b"\x00\x05"  # RC4-SHA: the server's first choice, not the client's
        + b"\x01"  # DEFLATE
        + b"\x00\x05\xff\x01\x00\x01\x00"  # renegotiation_info, answering the SCSV
    )
    certificate_list = len(cert_der).to_bytes(3, "big") + cert_der
    expected = (
        b"\x02"
        + len(server_hello_body).to_bytes(3, "big")
        + server_hello_body
        + b"\x0b"
        + (len(certificate_list) + 3).to_bytes(3, "big")
        + len(certificate_list).to_bytes(3, "big")
        + certificate_list
        + b"\x0e\x00\x00\x00"
    )
    assert payload == expected
    assert int.from_bytes(random[:4], "big") == pytest.approx(time.time(), abs=60)
    assert server.hellos[0].suites == (0x000A, 0x0005, 0x00FF)
    assert server.answers[0].suite == 0x0005


def test_legacy_client_preference_and_version_choice(cert_der: bytes) -> None:
    with LegacyTlsServer(
        addr(61),
        4433,
        versions={0x0300, 0x0301},
        suites=(0x0005, 0x000A),
        cert_der=cert_der,
        server_preference=False,
        secure_renegotiation=False,
    ):
        _, version, payload = exchange(
            addr(61), 4433, client_hello(0x0303, [0x000A, 0x0005, 0x00FF])
        )
    assert version == 0x0301
    assert payload[4:6] == b"\x03\x01"
    assert payload[71:74] == b"\x00\x0a\x00"  # the client's first choice, no compression
    assert payload[74:75] == b"\x0b"  # no extensions: Certificate follows at once


@pytest.mark.parametrize(
    ("client_version", "suites", "alert"),
    [
        (0x0300, [0x0005, 0x5600], 86),  # fallback SCSV below the server's best: refused
        (0x0300, [0x0005], 70),  # the server speaks nothing this old
        (0x0301, [0xC02F], 40),  # no suite in common
    ],
)
def test_legacy_alerts(cert_der: bytes, client_version: int, suites: list[int], alert: int) -> None:
    host = addr(62 + [86, 70, 40].index(alert))
    with LegacyTlsServer(
        host, 4433, versions={0x0301, 0x0302}, suites=(0x0005,), cert_der=cert_der
    ) as server:
        content_type, _, payload = exchange(host, 4433, client_hello(client_version, suites))
    assert (content_type, payload) == (21, bytes([2, alert]))
    assert server.answers[0].alert == alert


def test_legacy_fallback_scsv_can_be_ignored(cert_der: bytes) -> None:
    with LegacyTlsServer(
        addr(65),
        4433,
        versions={0x0301, 0x0302},
        suites=(0x0005,),
        cert_der=cert_der,
        fallback_scsv=False,
    ):
        _, version, payload = exchange(addr(65), 4433, client_hello(0x0301, [0x0005, 0x5600]))
    assert payload[0] == 2 and version == 0x0301


def sslv2_hello(version: int, kinds: list[int]) -> bytes:
    specs = b"".join(k.to_bytes(3, "big") for k in kinds)
    challenge = secrets.token_bytes(16)
    message = b"\x01" + struct.pack(">HHHH", version, len(specs), 0, 16) + specs + challenge
    return struct.pack(">H", 0x8000 | len(message)) + message


def test_legacy_sslv2_server_hello(cert_der: bytes) -> None:
    with (
        LegacyTlsServer(
            addr(66), 4433, versions={0x0300}, suites=(0x0005,), cert_der=cert_der, sslv2=True
        ),
        socket.create_connection((addr(66), 4433), 5) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(sslv2_hello(0x0002, [0x0700C0, 0x010080, 0x080080]))
        head = read_exactly(sock, 2)
        assert head[0] & 0x80
        message = read_exactly(sock, ((head[0] & 0x7F) << 8) | head[1])
    assert message[:3] == b"\x04\x00\x01"  # SERVER-HELLO, no session hit, X.509
    version, cert_length, specs_length, conn_length = struct.unpack(">HHHH", message[3:11])
    assert (version, cert_length, specs_length, conn_length) == (2, len(cert_der), 6, 16)
    assert message[11 : 11 + cert_length] == cert_der
    # the kinds both know, in the server's order (SSL2_CIPHER_KINDS: RC4-MD5 first)
    assert message[11 + cert_length : 17 + cert_length] == bytes.fromhex("0100800700c0")


def test_legacy_without_sslv2_hangs_up_on_an_sslv2_hello(cert_der: bytes) -> None:
    with (
        LegacyTlsServer(addr(67), 4433, versions={0x0300}, suites=(0x0005,), cert_der=cert_der),
        socket.create_connection((addr(67), 4433), 5) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(sslv2_hello(0x0002, [0x010080]))
        assert sock.recv(100) == b""


def test_legacy_sslv2_compatible_hello_gets_an_sslv3_answer(cert_der: bytes) -> None:
    with LegacyTlsServer(
        addr(68), 4433, versions={0x0300, 0x0301}, suites=(0x000A,), cert_der=cert_der
    ) as server:
        hello = sslv2_hello(0x0301, [0x010080, 0x00000A, 0x000005])
        content_type, version, payload = exchange(addr(68), 4433, hello)
    assert (content_type, version, payload[0]) == (22, 0x0301, 2)
    assert server.hellos[0].sslv2_format and server.hellos[0].suites == (0x000A, 0x0005)


def heartbeat_hello() -> bytes:
    return client_hello(0x0301, [0x0005], extensions=[(0x000F, b"\x01")])


def test_legacy_heartbleed_echoes_what_was_claimed(cert_der: bytes) -> None:
    with (
        LegacyTlsServer(
            addr(70),
            4433,
            versions={0x0301},
            suites=(0x0005,),
            cert_der=cert_der,
            heartbeat="vulnerable",
        ),
        socket.create_connection((addr(70), 4433), 5) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(heartbeat_hello())
        _, _, flight = read_record(sock)
        assert b"\x00\x0f\x00\x01\x01" in flight[:120]  # heartbeat extension in the ServerHello
        claimed = 0x4000
        sock.sendall(struct.pack(">BHH", 24, 0x0301, 3) + b"\x01" + struct.pack(">H", claimed))
        response = b""
        while len(response) < 3 + claimed + 16:
            content_type, _, fragment = read_record(sock)
            assert content_type == 24
            assert len(fragment) <= 16384
            response += fragment
    assert response[0] == 2
    assert struct.unpack(">H", response[1:3])[0] == claimed
    assert len(response) == 3 + claimed + 16
    assert b"lab-fake-memory" in response


def test_legacy_patched_heartbeat_drops_overlong_requests(cert_der: bytes) -> None:
    with (
        LegacyTlsServer(
            addr(71),
            4433,
            versions={0x0301},
            suites=(0x0005,),
            cert_der=cert_der,
            heartbeat="patched",
        ) as server,
        socket.create_connection((addr(71), 4433), 5) as sock,
    ):
        sock.settimeout(1)
        sock.sendall(heartbeat_hello())
        read_record(sock)
        sock.sendall(struct.pack(">BHH", 24, 0x0301, 3) + b"\x01\x40\x00")
        with pytest.raises(TimeoutError):
            sock.recv(100)
        payload = b"ping"
        request = b"\x01" + struct.pack(">H", len(payload)) + payload + bytes(16)
        sock.sendall(struct.pack(">BHH", 24, 0x0301, len(request)) + request)
        content_type, _, response = read_record(sock)
        assert (content_type, response[:7]) == (24, b"\x02\x00\x04ping")
        assert server.heartbeats_answered == 1


def test_legacy_no_heartbeat_no_compression_unless_configured(cert_der: bytes) -> None:
    with LegacyTlsServer(
        addr(72), 4433, versions={0x0301}, suites=(0x0005,), cert_der=cert_der
    ) as server:
        hello = client_hello(
            0x0301, [0x0005], compression=b"\x01\x00", extensions=[(0x000F, b"\x01")]
        )
        _, _, payload = exchange(addr(72), 4433, hello)
    assert payload[73] == 0  # compression method: null
    assert server.answers[0].extensions == ()


def test_legacy_survives_garbage_and_serves_the_next_client(cert_der: bytes) -> None:
    with LegacyTlsServer(addr(73), 4433, versions={0x0301}, suites=(0x0005,), cert_der=cert_der):
        for junk in (
            b"GET / HTTP/1.0\r\n\r\n",
            b"\x16\x03\x01\xff\xff",
            b"\x16\x03\x01\x00\x04\x01\x00\x00\x10",
        ):
            with socket.create_connection((addr(73), 4433), 5) as sock:
                sock.settimeout(12)
                sock.sendall(junk)
                sock.shutdown(socket.SHUT_WR)
                assert sock.recv(100) == b""
        assert exchange(addr(73), 4433, client_hello(0x0301, [0x0005]))[0] == 22


def test_legacy_refuses_versions_it_cannot_fake(cert_der: bytes) -> None:
    with pytest.raises(ValueError, match="0x304"):
        LegacyTlsServer(addr(74), 4433, versions={0x0304}, suites=(0x1301,), cert_der=cert_der)


@pytest.mark.nmap
def test_legacy_fake_reads_right_to_an_independent_scanner(cert_der: bytes) -> None:
    """nmap's ssl-enum-ciphers, sslv2 and ssl-heartbleed scripts (Lua, not OpenSSL) see an old
    server: the fake's bytes are right, not merely what this file's own client expects."""
    with LegacyTlsServer(
        addr(75),
        4433,
        versions={0x0300, 0x0301},
        suites=(0x0005, 0x000A, 0x0003),
        cert_der=cert_der,
        compression=True,
        heartbeat="vulnerable",
        sslv2=True,
    ):
        scripts = "ssl-enum-ciphers,sslv2,ssl-heartbleed"
        done = subprocess.run(
            ["nmap", "-Pn", "-sT", "-p", "4433", "--script", scripts, addr(75)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    out = done.stdout
    assert "SSLv3:" in out and "TLSv1.0:" in out and "TLSv1.1:" not in out, out
    ciphers = ["TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    positions = [out.index(c) for c in [*ciphers, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"]]
    assert positions == sorted(positions)  # in the server's order
    assert "cipher preference: server" in out
    assert "DEFLATE" in out
    assert "SSLv2 supported" in out
    assert "State: VULNERABLE" in out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_hello_parsers_raise_only_hello_error(data: bytes) -> None:
    for parse in (parse_client_hello, parse_sslv2_client_hello):
        with contextlib.suppress(HelloError):
            parse(data)


# --------------------------------------------------------------------------------------------
# The showcase CLI


@pytest.mark.slow
def test_showcase_cli_serves_its_endpoints_then_stops() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo.tlslab",
            "--base",
            "127.0.82",
            "--seconds",
            "8",
            "--https-port",
            "14443",
            "--smtp-port",
            "12525",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        text = ""
        while not text.rstrip().endswith("}") or text.count("{") != text.count("}"):
            line = proc.stdout.readline().decode()
            if not line:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
            text += line
        document = json.loads(text)
        endpoints = {e["name"]: e for e in document["endpoints"]}
        assert set(endpoints) == {"good", "expired", "tls1.0-only", "legacy", "smtp"}
        good = endpoints["good"]
        assert handshake(good["address"], good["port"])[0] == "TLSv1.3"
        legacy = endpoints["legacy"]
        assert exchange(legacy["address"], legacy["port"], client_hello(0x0300, [0x0005]))[0] == 22
        smtp = endpoints["smtp"]
        out = s_client(smtp["address"], smtp["port"], "-starttls", "smtp")
        assert "Cipher is TLS_" in out
        assert proc.wait(20) == 0
        for endpoint in endpoints.values():
            assert refuses(endpoint["address"], endpoint["port"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


# --------------------------------------------------------------------------------------------
# bench/tls.py: reading both tools' JSON and comparing (the bench itself is run by hand)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tls", ROOT / "bench" / "tls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def sslyze_document(**attempts: dict) -> dict:
    """The shape of `sslyze --json_out` (6.x), with only what the bench reads."""
    empty = {"status": "COMPLETED", "result": {"accepted_cipher_suites": []}}
    scan = {
        attribute: attempts.get(attribute, empty)
        for attribute in (
            "ssl_2_0_cipher_suites",
            "ssl_3_0_cipher_suites",
            "tls_1_0_cipher_suites",
            "tls_1_1_cipher_suites",
            "tls_1_2_cipher_suites",
            "tls_1_3_cipher_suites",
        )
    }
    return {"server_scan_results": [{"scan_status": "COMPLETED", "scan_result": scan}]}


def accepted(*names: str) -> dict:
    suites = [{"cipher_suite": {"name": n, "openssl_name": "x"}} for n in names]
    return {"status": "COMPLETED", "result": {"accepted_cipher_suites": suites}}


def test_bench_reads_sslyze_and_posture_and_lists_differences(bench: ModuleType) -> None:
    sslyze = bench.sslyze_observation(
        sslyze_document(
            tls_1_2_cipher_suites=accepted(
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DH_anon_WITH_AES_128_CBC_SHA"
            ),
            tls_1_3_cipher_suites={"status": "ERROR", "error_reason": "BUG_IN_SSLYZE"},
        )
    )
    assert sslyze.suites["TLSv1.2"] == {
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_DH_ANON_WITH_AES_128_CBC_SHA",
    }
    assert "TLSv1.3" not in sslyze.suites
    assert sslyze.errors == ("sslyze TLSv1.3: BUG_IN_SSLYZE",)

    posture = bench.posture_observation(
        {
            "error": None,
            "protocols": [
                {"version": "SSLv3", "supported": False, "suites": []},
                {
                    "version": "TLSv1.2",
                    "supported": True,
                    "suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "SSL_RSA_WITH_RC4_128_MD5"],
                },
                {"version": "TLSv1.3", "supported": None, "suites": [], "error": "timed out"},
            ],
        }
    )
    assert posture.suites == {
        "SSLv3": frozenset(),
        "TLSv1.2": {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_MD5"},
    }
    assert posture.errors == ("posture TLSv1.3: timed out",)

    differences = bench.compare(posture, sslyze)
    by_version = {d.version: d for d in differences}
    assert by_version["TLSv1.2"].only_posture == {"TLS_RSA_WITH_RC4_128_MD5"}
    assert by_version["TLSv1.2"].only_sslyze == {"TLS_DH_ANON_WITH_AES_128_CBC_SHA"}
    assert "SSLv3" not in by_version  # both: nothing
    assert "TLSv1.3" not in by_version  # neither could tell
    assert bench.normalize_suite("SSL_CK_RC4_128_WITH_MD5") == "SSL_CK_RC4_128_WITH_MD5"

    endpoint = bench.ENDPOINTS[0]
    row = bench.Row(endpoint, [bench.Run(2.0, posture)], [bench.Run(1.0, sslyze)])
    text = bench.render([row], runs=1, extra=False)
    assert f"{endpoint.name} | 2.00      | 1.00     | 2.00  | no" in text
    assert "TLSv1.2: only posture accepted TLS_RSA_WITH_RC4_128_MD5" in text
    assert "error: posture TLSv1.3: timed out" in text


def test_bench_agreeing_tools_are_identical(bench: ModuleType) -> None:
    names = ["TLS_AES_128_GCM_SHA256"]
    protocols: list[dict[str, Any]] = [
        {"version": v, "supported": False, "suites": []}
        for v in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2")
    ]
    protocols.append({"version": "TLSv1.3", "supported": True, "suites": names})
    posture = bench.posture_observation({"protocols": protocols})
    sslyze = bench.sslyze_observation(sslyze_document(tls_1_3_cipher_suites=accepted(*names)))
    row = bench.Row(bench.ENDPOINTS[0], [bench.Run(1.0, posture)], [bench.Run(1.0, sslyze)])
    assert row.identical
    del protocols[0]  # a version posture did not probe: not identical
    posture = bench.posture_observation({"protocols": protocols})
    row = bench.Row(bench.ENDPOINTS[0], [bench.Run(1.0, posture)], [bench.Run(1.0, sslyze)])
    assert [d.note for d in row.differences] == ["posture could not tell"]
    assert not row.identical
    failed = bench.posture_observation({"error": "connection refused", "protocols": []})
    row = bench.Row(bench.ENDPOINTS[0], [bench.Run(1.0, failed)], [bench.Run(1.0, sslyze)])
    assert not row.identical and row.errors == ["posture: connection refused"]


def test_bench_commands(bench: ModuleType, tmp_path: Path) -> None:
    argv = bench.sslyze_command(
        Path("sslyze"), "127.0.82.205:2525", tmp_path / "o.json", starttls="smtp", extra=False
    )
    assert argv[-3:] == ["--starttls", "smtp", "127.0.82.205:2525"]
    assert {"--mozilla_config", "disable", "--sslv2", "--tlsv1_3"} <= set(argv)
    assert "--certinfo" not in argv
    posture = bench.posture_command("127.0.82.205:2525", starttls="smtp")
    assert posture[-5:] == ["tls", "127.0.82.205:2525", "--json", "--starttls", "smtp"]


@pytest.mark.slow
@pytest.mark.skipif(
    not (ROOT / "bench" / ".venv-sslyze" / "bin" / "sslyze").exists(),
    reason="needs bench/.venv-sslyze: run bench/tls.py once",
)
def test_bench_reads_real_sslyze_output(bench: ModuleType, certs: dict) -> None:
    cert, key = certs["good"]
    with OpenSslServer(
        addr(80),
        4433,
        cert,
        key,
        protocols=("tls1_2",),
        ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA",
    ):
        run = bench.run_sslyze(bench.ensure_sslyze(), f"{addr(80)}:4433", None, False)
    assert run.observation.errors == ()
    assert run.observation.suites["TLSv1.2"] == {
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
    }
    assert run.observation.suites["TLSv1.3"] == frozenset()
