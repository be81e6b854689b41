"""The cipher-suite, group and signature-scheme registry: names parse, properties are right,
offers per version are right, and OpenSSL's names agree with the local openssl."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.probes.tls import suites
from scanner.probes.tls.model import TlsVersion
from scanner.probes.tls.suites import UnknownSuiteNameError, parse_name


def test_every_registry_name_parses_back_to_its_entry() -> None:
    assert len(suites.BY_CODE) == len(suites.BY_NAME)  # no code or name twice
    for entry in suites.BY_CODE.values():
        parsed = parse_name(entry.code, entry.name, entry.openssl_name)
        assert replace(parsed, iana=entry.iana) == entry


def test_registry_covers_the_iana_ranges() -> None:
    iana = {s.code for s in suites.BY_CODE.values() if s.iana}
    assert set(range(0x0000, 0x001C)) <= iana
    assert set(range(0x001E, 0x0047)) <= iana
    assert set(range(0x0067, 0x006E)) <= iana
    assert set(range(0x0084, 0x00C8)) <= iana
    assert set(range(0xC001, 0xC0B6)) <= iana
    assert set(range(0xCCA8, 0xCCAF)) <= iana
    assert set(range(0x1301, 0x1306)) <= iana
    assert {0x00FF, 0x5600, 0xD001, 0xD002, 0xD003, 0xD005} <= iana
    assert 0xD004 not in suites.BY_CODE  # unassigned
    assert {0x001C, 0x001D, 0x0047} & set(suites.BY_CODE) == set()  # reserved
    legacy = {s.code for s in suites.BY_CODE.values() if not s.iana and s.protocol == "tls"}
    assert legacy == set(range(0x0060, 0x0067)) | set(range(0x0080, 0x0084))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            0xC02F,
            dict(kex="ECDHE", auth="RSA", cipher="AES_128_GCM", cipher_bits=128, mac="AEAD",
                 aead=True, pfs=True, export=False, cbc=False, min_version=TlsVersion.TLS12),
        ),
        (
            0x000A,
            dict(kex="RSA", auth="RSA", cipher="3DES_EDE_CBC", cipher_bits=112, mac="SHA",
                 des3=True, cbc=True, pfs=False, aead=False, min_version=TlsVersion.SSL3),
        ),
        (
            0x0003,
            dict(kex="RSA", cipher="RC4_40", cipher_bits=40, export=True, rc4=True, mac="MD5"),
        ),
        (0x0018, dict(kex="DH", auth="anon", anonymous=True, rc4=True, pfs=False)),
        (0x0000, dict(kex="NULL", null_cipher=True, anonymous=True, cipher_bits=0)),
        (0x0002, dict(null_cipher=True, anonymous=False, cipher_bits=0, mac="SHA")),
        (
            0x0039,
            dict(kex="DHE", auth="RSA", cipher="AES_256_CBC", cipher_bits=256, pfs=True,
                 cbc=True, min_version=TlsVersion.SSL3),
        ),
        (0x003C, dict(kex="RSA", cipher="AES_128_CBC", mac="SHA256", min_version=TlsVersion.TLS12)),
        (
            0x1301,
            dict(protocol="tls13", kex="any", auth="any", cipher="AES_128_GCM", pfs=True,
                 aead=True, min_version=TlsVersion.TLS13),
        ),
        (0x1305, dict(protocol="tls13", cipher="AES_128_CCM_8", cipher_bits=128, aead=True)),
        (0xCCA9, dict(kex="ECDHE", auth="ECDSA", cipher="CHACHA20_POLY1305", cipher_bits=256)),
        (0x0026, dict(kex="KRB5", cipher="DES40_CBC", cipher_bits=40, export=True)),
        (0xC0AA, dict(kex="DHE_PSK", auth="PSK", cipher="AES_128_CCM_8", pfs=True)),
        (0x008B, dict(kex="PSK", auth="PSK", des3=True, pfs=False)),
        (0xC01B, dict(kex="SRP", auth="RSA", des3=True)),
        (0xC015, dict(kex="ECDH", auth="anon", anonymous=True, null_cipher=True)),
        (0xC03C, dict(cipher="ARIA_128_CBC", min_version=TlsVersion.TLS12, cbc=True)),
        (0xC0B4, dict(protocol="tls13", cipher="NULL", null_cipher=True, mac="SHA256")),
        (0x0062, dict(export=True, cipher="DES_CBC", cipher_bits=56, iana=False)),
        (0xC103, dict(protocol="tls13", aead=True, cipher="KUZNYECHIK_MGM_L")),
        (0x00FF, dict(signaling=True, null_cipher=False, anonymous=False)),
        (
            0x0700C0,
            dict(protocol="sslv2", cipher="3DES_EDE_CBC", cipher_bits=112, des3=True,
                 min_version=TlsVersion.SSL2, openssl_name="DES-CBC3-MD5"),
        ),
        (0x020080, dict(protocol="sslv2", cipher="RC4_40", export=True, cipher_bits=40)),
    ],
)  # fmt: skip
def test_properties(code: int, expected: dict[str, object]) -> None:
    entry = suites.suite(code)
    assert {key: getattr(entry, key) for key in expected} == expected


def test_tls13_offer_is_the_five_rfc8446_suites() -> None:
    assert suites.tls_suites(TlsVersion.TLS13) == (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)


def test_older_versions_are_not_offered_tls12_only_suites() -> None:
    tls10 = set(suites.tls_suites(TlsVersion.TLS10))
    tls12 = set(suites.tls_suites(TlsVersion.TLS12))
    assert 0x002F in tls10 and 0xC013 in tls10 and 0x0003 in tls10
    assert 0xC02F not in tls10 and 0x003C not in tls10 and 0xCCA8 not in tls10
    assert tls10 < tls12 and {0xC02F, 0x003C, 0xCCA8} <= tls12
    assert (
        set(suites.tls_suites(TlsVersion.SSL3)) == tls10 == set(suites.tls_suites(TlsVersion.TLS11))
    )
    for version in (TlsVersion.SSL3, TlsVersion.TLS12):
        offer = suites.tls_suites(version)
        assert 0x00FF not in offer and 0x5600 not in offer  # SCSVs are flags, added by callers
        assert all(suites.suite(c).protocol == "tls" for c in offer)
        assert len(offer) == len(set(offer))
    with pytest.raises(ValueError, match="sslv2_specs"):
        suites.tls_suites(TlsVersion.SSL2)


def test_sslv2_specs() -> None:
    specs = suites.sslv2_specs()
    assert len(specs) == 7 and all(0xFFFF < c <= 0xFFFFFF for c in specs)
    assert suites.name(0x010080) == "SSL_CK_RC4_128_WITH_MD5"


def test_names_and_codes() -> None:
    assert suites.name(0xC02B) == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert suites.code("TLS_RSA_WITH_AES_128_CBC_SHA") == 0x002F
    assert suites.name(0xD004) == "UNKNOWN_0xD004"
    assert suites.name(0x7A7A00) == "UNKNOWN_0x7A7A00"
    with pytest.raises(KeyError):
        suites.suite("TLS_NOT_A_SUITE")
    with pytest.raises(KeyError):
        suites.code("AES128-SHA")  # OpenSSL's name, not IANA's


@given(st.integers(min_value=0, max_value=0xFFFFFF))
def test_name_of_any_code_a_server_may_send(code: int) -> None:
    assert suites.name(code)
    assert isinstance(suites.group_name(code & 0xFFFF), str)
    assert suites.group_bits(code & 0xFFFF) >= 0


@pytest.mark.parametrize(
    "bad",
    [
        "TLS_FOO_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_WHIRLPOOL",
        "TLS_RSA_WITH_BLOWFISH_CBC_SHA",
        "TLS_AES_128_CBC_SHA256",  # TLS 1.3 suites are AEAD
        "SSL_CK_RC5_WITH_MD5",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ],
)
def test_malformed_names_are_refused(bad: str) -> None:
    with pytest.raises(UnknownSuiteNameError):
        parse_name(0x1234, bad)


def test_groups() -> None:
    assert (suites.group_name(29), suites.group_bits(29), suites.group_kind(29)) == (
        "x25519",
        256,
        "ec",
    )
    assert (suites.group_name(23), suites.group_bits(23)) == ("secp256r1", 256)
    assert (suites.group_name(25), suites.group_bits(25)) == ("secp521r1", 521)
    assert (suites.group_name(258), suites.group_bits(258), suites.group_kind(258)) == (
        "ffdhe4096",
        4096,
        "ff",
    )
    assert suites.group_kind(0x11EC) == "hybrid" and suites.group_name(0x11EC) == "X25519MLKEM768"
    assert suites.group_bits(1) == 163 and suites.group_name(22) == "secp256k1"
    assert (suites.group_name(0x7777), suites.group_bits(0x7777)) == ("unknown_0x7777", 0)
    assert suites.group_kind(0x7777) is None
    assert suites.group("brainpoolP384r1") == suites.GROUPS[27]


def test_signature_schemes() -> None:
    assert suites.signature_scheme_name(0x0804) == "rsa_pss_rsae_sha256"
    assert suites.signature_scheme_name(0x0403) == "ecdsa_secp256r1_sha256"
    assert suites.signature_scheme_name(0x0807) == "ed25519"
    assert suites.signature_scheme_name(0x0201) == "rsa_pkcs1_sha1"
    assert suites.signature_scheme_name(0xFEFE) == "unknown_0xfefe"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
def test_openssl_names_agree_with_local_openssl() -> None:
    listing = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:eNULL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    checked = 0
    for line in listing.splitlines():
        # "0xC0,0x2F - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 - ECDHE-RSA-AES128-GCM-SHA256 ..."
        fields = line.split()
        high, low = fields[0].split(",")
        entry = suites.suite(int(high, 16) << 8 | int(low, 16))
        assert (entry.name, entry.openssl_name) == (fields[2], fields[4])
        checked += 1
    assert checked > 50
