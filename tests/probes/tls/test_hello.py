"""ClientHello bytes: what posture offers, checked by parsing them back with the lab's
independent ClientHello parser (demo.tlslab)."""

from __future__ import annotations

import struct

import pytest

from demo.tlslab import parse_client_hello, parse_sslv2_client_hello
from scanner.probes.tls import hello, suites
from scanner.probes.tls.model import TlsVersion


def unwrap(data: bytes) -> tuple[list[int], bytes]:
    """(record versions, handshake body after type and length) of a hello's records."""
    versions, payload, at = [], b"", 0
    while at < len(data):
        content_type, version, length = struct.unpack(">BHH", data[at : at + 5])
        assert content_type == 22
        assert length <= 2**14
        versions.append(version)
        payload += data[at + 5 : at + 5 + length]
        at += 5 + length
    assert payload[0] == 1
    assert int.from_bytes(payload[1:4], "big") == len(payload) - 4
    return versions, payload[4:]


@pytest.mark.parametrize("version", [TlsVersion.TLS10, TlsVersion.TLS11, TlsVersion.TLS12])
def test_legacy_hello_offers_every_suite_and_extension(version: TlsVersion) -> None:
    offer = suites.tls_suites(version)
    data = hello.client_hello(version, offer, sni="www.example.com", heartbeat=True)
    versions, body = unwrap(data)
    parsed = parse_client_hello(body, versions[0])
    assert parsed.version == version.code
    assert parsed.suites == tuple(offer)
    assert versions[0] == 0x0301
    assert parsed.extension(hello.EXT_SERVER_NAME) == b"\x00\x12\x00\x00\x0fwww.example.com"
    assert parsed.extension(hello.EXT_RENEGOTIATION_INFO) == b"\x00"
    assert parsed.extension(hello.EXT_HEARTBEAT) == b"\x01"
    groups = parsed.extension(hello.EXT_SUPPORTED_GROUPS)
    assert groups is not None and groups[2:4] == b"\x00\x1d"  # x25519 first
    has_sigalgs = parsed.extension(hello.EXT_SIGNATURE_ALGORITHMS) is not None
    assert has_sigalgs is (version is TlsVersion.TLS12)
    assert parsed.extension(hello.EXT_SUPPORTED_VERSIONS) is None


def test_sslv3_hello_has_no_extensions() -> None:
    data = hello.client_hello(TlsVersion.SSL3, [0x0005, 0x000A], sni="example.com")
    versions, body = unwrap(data)
    parsed = parse_client_hello(body, versions[0])
    assert versions == [0x0300]
    assert parsed.version == 0x0300
    assert parsed.extensions == ()


def test_tls13_hello_without_shares_asks_for_a_retry() -> None:
    data = hello.client_hello(TlsVersion.TLS13, suites.tls_suites(TlsVersion.TLS13), sni="a.b")
    _, body = unwrap(data)
    parsed = parse_client_hello(body)
    assert parsed.version == 0x0303
    assert parsed.extension(hello.EXT_SUPPORTED_VERSIONS) == b"\x02\x03\x04"
    assert parsed.extension(hello.EXT_KEY_SHARE) == b"\x00\x00"
    assert parsed.extension(hello.EXT_PSK_KEY_EXCHANGE_MODES) == b"\x01\x01"
    assert len(body[34 : 35 + body[34]]) == 33  # 32-byte legacy session id (middlebox compat)


def test_tls13_hello_carries_a_real_key_share() -> None:
    share, _private = hello.make_key_share(hello.X25519)
    p256, _ = hello.make_key_share(hello.SECP256R1)
    assert len(share.public) == 32 and len(p256.public) == 65 and p256.public[0] == 4
    data = hello.client_hello(TlsVersion.TLS13, [0x1301], key_shares=[share], cookie=b"abc")
    parsed = parse_client_hello(unwrap(data)[1])
    assert parsed.extension(hello.EXT_KEY_SHARE) == b"\x00\x24\x00\x1d\x00\x20" + share.public
    assert parsed.extension(hello.EXT_COOKIE) == b"\x00\x03abc"
    with pytest.raises(ValueError, match="no key share support"):
        hello.make_key_share(0x0100)


def test_every_iana_suite_in_one_hello_and_huge_offers_are_fragmented() -> None:
    offer = suites.tls_suites(TlsVersion.TLS12)
    assert len(offer) > 300
    versions, body = unwrap(hello.client_hello(TlsVersion.TLS12, offer))
    assert len(versions) == 1 and parse_client_hello(body).suites == tuple(offer)
    huge = list(range(1, 9000))  # 18 kB of suites: more than one record
    versions, body = unwrap(hello.client_hello(TlsVersion.TLS12, huge))
    assert len(versions) == 2
    assert parse_client_hello(body).suites == tuple(huge)


@pytest.mark.parametrize("count", range(60, 140, 3))
def test_hellos_of_256_to_511_bytes_are_padded_to_512(count: int) -> None:
    data = hello.client_hello(TlsVersion.TLS12, list(range(1, count)))
    _, body = unwrap(data)
    assert not 256 <= len(body) + 4 < 512
    padded = parse_client_hello(body).extension(hello.EXT_PADDING)
    unpadded = len(body) + 4 - (0 if padded is None else 4 + len(padded))
    assert (padded is not None) is (256 <= unpadded < 512)


def test_sni_is_a_dns_name_never_an_address_and_garbage_is_refused() -> None:
    assert hello.server_name("127.0.0.1") is None
    assert hello.server_name("::1") is None
    assert hello.server_name("Example.COM.") == b"example.com"
    assert hello.server_name("bücher.example") == b"xn--bcher-kva.example"
    for bad in ("bad name", "a..b", "-x.example", "x" * 64 + ".example", "a/b", "\x1b[31m"):
        with pytest.raises(ValueError, match="not a valid DNS name"):
            hello.server_name(bad)
    data = hello.client_hello(TlsVersion.TLS12, [0x002F], sni="10.1.2.3")
    assert parse_client_hello(unwrap(data)[1]).extension(hello.EXT_SERVER_NAME) is None


def test_sslv2_hello_parses_as_sslv2() -> None:
    data = hello.sslv2_client_hello(suites.sslv2_specs())
    assert data[0] & 0x80
    length = ((data[0] & 0x7F) << 8) | data[1]
    assert length == len(data) - 2
    parsed = parse_sslv2_client_hello(data[2:])
    assert parsed.version == 0x0002
    assert parsed.sslv2_ciphers == suites.sslv2_specs()


def test_heartbeat_probe_claims_no_more_than_it_sends() -> None:
    data = hello.heartbeat_request(16, b"posture", TlsVersion.TLS12)
    assert data[:3] == b"\x18\x03\x03"
    assert data[5:8] == b"\x01\x00\x10"
    assert len(data) == 5 + 3 + 7 + 16
    with pytest.raises(ValueError):
        hello.heartbeat_request(64, b"posture", TlsVersion.TLS12)  # would leak memory


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        hello.client_hello(TlsVersion.TLS12, [])
    with pytest.raises(ValueError):
        hello.client_hello(TlsVersion.SSL2, [1])
    with pytest.raises(ValueError):
        hello.client_hello(TlsVersion.TLS12, [1], random=b"short")
