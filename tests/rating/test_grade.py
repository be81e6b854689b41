"""The SSL Labs-style grade on hand-built endpoints, each expectation computed by hand from the
rating guide: score = 0.3 protocol + 0.3 key exchange + 0.4 cipher, then caps."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from scanner.probes.tls.model import (
    CertificateFacts,
    ChainFacts,
    HstsPolicy,
    KeyExchangeGroup,
    ProtocolSupport,
    TlsEndpoint,
    TlsVersion,
)
from scanner.rating.grade import Grade, band, grade

V = TlsVersion
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
MODERN_12 = (
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
MODERN_13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
BOTH = (V.TLS12, V.TLS13)
ONE_YEAR = 31_536_000


def make_chain(key_type: str = "rsa", key_bits: int = 2048, **changes: object) -> ChainFacts:
    leaf = CertificateFacts(
        subject="CN=www.example.test",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=60),
        dns_names=("www.example.test",),
        ip_addresses=(),
        common_name="www.example.test",
        key_type=key_type,
        key_bits=key_bits,
        curve="secp256r1" if key_type == "ecdsa" else None,
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        self_signed=False,
        is_ca=False,
        sha256="00" * 32,
    )
    chain = ChainFacts(
        certificates=(leaf,),
        trusted=True,
        trust_error=None,
        hostname="www.example.test",
        hostname_matches=True,
        expired=False,
        not_yet_valid=False,
        days_left=60,
        expiring_soon=False,
        self_signed=False,
        incomplete=False,
        weak_signature=None,
        key_type=key_type,
        key_bits=key_bits,
    )
    return replace(chain, **changes)  # type: ignore[arg-type]


def make_endpoint(
    suites_by_version: dict[TlsVersion, tuple[str, ...]] | None = None, **changes: object
) -> TlsEndpoint:
    """A clean TLS 1.2 + 1.3 server (ECDHE-RSA AEAD, RSA 2048, X25519 and P-256) unless told
    otherwise; versions not given are probed and refused, as a real assessment records them."""
    if suites_by_version is None:
        suites_by_version = {V.TLS12: MODERN_12, V.TLS13: MODERN_13}
    protocols = tuple(
        ProtocolSupport(v, supported=v in suites_by_version, suites=suites_by_version.get(v, ()))
        for v in TlsVersion
    )
    endpoint = TlsEndpoint(
        host="192.0.2.10",
        port=443,
        sni="www.example.test",
        starttls=None,
        protocols=protocols,
        groups=(
            KeyExchangeGroup("x25519", 256, BOTH),
            KeyExchangeGroup("secp256r1", 256, BOTH),
        ),
        chain=make_chain(),
        secure_renegotiation=True,
        compression=False,
        fallback_scsv=True,
        heartbleed=False,
        heartbeat=False,
    )
    return replace(endpoint, **changes)  # type: ignore[arg-type]


def graded(endpoint: TlsEndpoint) -> Grade:
    result = grade(endpoint)
    assert result is not None
    return result


def cap_for(result: Grade, letter: str, cause: str) -> str:
    """The reason of the cap with this letter that names the cause (fails when none does)."""
    reasons = [c.reason for c in result.caps if c.letter == letter]
    matching = [r for r in reasons if cause.lower() in r.lower()]
    assert matching, f"no {letter} cap mentioning {cause!r} in {result.caps}"
    return matching[0]


def test_clean_modern_server_is_a() -> None:
    result = graded(make_endpoint())
    # protocol (100+100)/2; key exchange min(RSA 2048 -> 90, X25519 ~ RSA 3072 -> 90);
    # cipher (AES-128 -> 80 + 256-bit -> 100)/2 = 90; 30 + 27 + 36 = 93
    assert (result.protocol_score, result.key_exchange_score, result.cipher_score) == (100, 90, 90)
    assert result.score == 93
    assert (result.letter, result.letter_ignoring_trust) == ("A", "A")
    assert result.caps == () and result.warnings == ()


@pytest.mark.parametrize(
    ("score", "letter"),
    [(100, "A"), (80, "A"), (79, "B"), (65, "B"), (64, "C"), (50, "C"), (49, "D"), (35, "D"),
     (34, "E"), (20, "E"), (19, "F"), (0, "F")],
)  # fmt: skip
def test_bands(score: int, letter: str) -> None:
    assert band(score) == letter


def test_long_hsts_makes_a_plus() -> None:
    result = graded(make_endpoint(hsts=HstsPolicy(present=True, max_age=ONE_YEAR)))
    assert result.letter == "A+"
    six_months = graded(make_endpoint(hsts=HstsPolicy(present=True, max_age=15_552_000)))
    assert six_months.letter == "A+"


@pytest.mark.parametrize(
    "hsts",
    [
        HstsPolicy(present=True, max_age=15_551_999),
        HstsPolicy(present=False),
        HstsPolicy(present=True, max_age=None),
    ],
)
def test_short_or_missing_hsts_stays_a(hsts: HstsPolicy) -> None:
    assert graded(make_endpoint(hsts=hsts)).letter == "A"


def test_a_plus_needs_no_warnings() -> None:
    endpoint = make_endpoint(hsts=HstsPolicy(present=True, max_age=ONE_YEAR), heartbleed=None)
    result = graded(endpoint)
    assert result.letter == "A" and result.caps == ()
    assert any("Heartbleed" in w for w in result.warnings)


def test_tls10_caps_at_b() -> None:
    result = graded(
        make_endpoint(
            {
                V.TLS10: ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",),
                V.TLS12: MODERN_12,
                V.TLS13: MODERN_13,
            }
        )
    )
    # protocol (100+90)/2 = 95: 28.5 + 27 + 36 = 91.5, rounded half up
    assert result.protocol_score == 95 and result.score == 92
    assert result.letter == "B"
    assert "TLSv1.0" in cap_for(result, "B", "TLSv1.0")
    assert all(c.letter == "B" for c in result.caps)


def test_sslv2_is_f() -> None:
    result = graded(
        make_endpoint(
            {V.SSL2: ("SSL_CK_RC4_128_WITH_MD5",), V.TLS12: MODERN_12, V.TLS13: MODERN_13}
        )
    )
    # protocol (100+0)/2 = 50; key 90; cipher (100+80)/2 = 90: 15 + 27 + 36 = 78
    assert result.score == 78 and result.letter == "F"
    cap_for(result, "F", "SSLv2")


def test_sslv3_only_is_f() -> None:
    result = graded(make_endpoint({V.SSL3: ("TLS_RSA_WITH_AES_128_CBC_SHA",)}))
    cap_for(result, "F", "SSLv3")
    cap_for(result, "C", "TLSv1.2")
    assert result.letter == "F"


def test_sslv3_beside_tls12_caps_at_c() -> None:
    result = graded(make_endpoint({V.SSL3: ("TLS_RSA_WITH_AES_128_CBC_SHA",), V.TLS12: MODERN_12}))
    cap_for(result, "C", "SSLv3")
    assert result.letter == "C"


def test_rc4_on_tls12_caps_at_c() -> None:
    result = graded(
        make_endpoint({V.TLS12: (*MODERN_12, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"), V.TLS13: MODERN_13})
    )
    assert result.score == 93  # RC4 is 128 bits: the cipher score does not move
    assert result.letter == "C"
    assert "TLS_ECDHE_RSA_WITH_RC4_128_SHA" in cap_for(result, "C", "RC4")
    cap_for(result, "B", "RC4")


def test_rc4_only_on_tls10_caps_at_b() -> None:
    result = graded(
        make_endpoint(
            {V.TLS10: ("TLS_RSA_WITH_RC4_128_SHA",), V.TLS12: MODERN_12, V.TLS13: MODERN_13}
        )
    )
    assert not [c for c in result.caps if c.letter == "C"]
    cap_for(result, "B", "RC4")
    assert result.letter == "B"


def test_3des_on_tls12_caps_at_c() -> None:
    result = graded(
        make_endpoint({V.TLS12: (*MODERN_12, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"), V.TLS13: MODERN_13})
    )
    # cipher (100 + 3DES 112 bits -> 20)/2 = 60: 30 + 27 + 24 = 81
    assert (result.cipher_score, result.score) == (60, 81)
    assert result.letter == "C"
    cap_for(result, "C", "3DES")


def test_self_signed_is_t_with_the_grade_behind_it() -> None:
    chain = make_chain(self_signed=True, trusted=False, trust_error="self-signed certificate")
    result = graded(make_endpoint(chain=chain))
    assert (result.letter, result.letter_ignoring_trust, result.score) == ("T", "A", 93)
    cap_for(result, "T", "self-signed")


@pytest.mark.parametrize(
    ("changes", "cause"),
    [
        ({"trusted": False, "trust_error": "unable to get local issuer"}, "local issuer"),
        ({"expired": True, "days_left": -3}, "expired 3 day"),
        ({"not_yet_valid": True}, "not yet valid"),
        ({"weak_signature": "sha1"}, "SHA-1"),
    ],
)
def test_trust_problems_are_t(changes: dict[str, object], cause: str) -> None:
    result = graded(make_endpoint(chain=make_chain(**changes)))
    assert (result.letter, result.letter_ignoring_trust) == ("T", "A")
    cap_for(result, "T", cause)


def test_name_mismatch_is_m() -> None:
    chain = make_chain(hostname="mail.example.test", hostname_matches=False)
    result = graded(make_endpoint(chain=chain))
    assert (result.letter, result.letter_ignoring_trust) == ("M", "A")
    cap_for(result, "M", "mail.example.test")


def test_untrusted_and_mismatched_shows_t() -> None:
    chain = make_chain(trusted=False, hostname_matches=False)
    assert graded(make_endpoint(chain=chain)).letter == "T"


def test_f_beats_t() -> None:
    chain = make_chain(self_signed=True, trusted=False)
    result = graded(make_endpoint(chain=chain, heartbleed=True))
    assert (result.letter, result.letter_ignoring_trust) == ("F", "F")


def test_heartbleed_is_f() -> None:
    result = graded(make_endpoint(heartbleed=True))
    assert result.letter == "F" and result.score == 93
    cap_for(result, "F", "Heartbleed")


def test_insecure_renegotiation_is_f_and_unknown_is_a_warning() -> None:
    result = graded(make_endpoint(secure_renegotiation=False))
    assert result.letter == "F"
    cap_for(result, "F", "renegotiation")
    unknown = graded(make_endpoint(secure_renegotiation=None))
    assert unknown.letter == "A" and unknown.caps == ()
    assert any("renegotiation" in w for w in unknown.warnings)


def test_compression_caps_at_b() -> None:
    result = graded(make_endpoint(compression=True))
    assert result.letter == "B"
    cap_for(result, "B", "compression")


def test_rsa_1024_caps_at_b() -> None:
    result = graded(make_endpoint(chain=make_chain(key_bits=1024)))
    # key exchange: 1024 is under 2048 -> 80: 30 + 24 + 36 = 90
    assert (result.key_exchange_score, result.score) == (80, 90)
    assert result.letter == "B"
    assert "1024" in cap_for(result, "B", "certificate key")


def test_rsa_512_is_f() -> None:
    result = graded(make_endpoint(chain=make_chain(key_bits=512)))
    assert result.key_exchange_score == 40  # 512 is under 1024
    cap_for(result, "F", "certificate key")


def test_rsa_4096_with_p384_only_scores_full_key_exchange() -> None:
    endpoint = make_endpoint(
        chain=make_chain(key_bits=4096), groups=(KeyExchangeGroup("secp384r1", 384, BOTH),)
    )
    result = graded(endpoint)
    # P-384 ~ RSA 7680 -> 100; RSA 4096 -> 100: 30 + 30 + 36 = 96
    assert (result.key_exchange_score, result.score) == (100, 96)


def test_export_suite_is_f() -> None:
    result = graded(
        make_endpoint(
            {V.TLS10: ("TLS_RSA_EXPORT_WITH_RC4_40_MD5",), V.TLS12: MODERN_12, V.TLS13: MODERN_13}
        )
    )
    # protocol 95; key exchange: export -> 40; cipher (100 + 40 bits -> 20)/2 = 60
    # 28.5 + 12 + 24 = 64.5 -> 65
    assert (result.key_exchange_score, result.cipher_score, result.score) == (40, 60, 65)
    assert "TLS_RSA_EXPORT_WITH_RC4_40_MD5" in cap_for(result, "F", "EXPORT")
    assert result.letter == "F"


def test_anonymous_and_null_suites_are_f() -> None:
    result = graded(
        make_endpoint(
            {
                V.TLS12: (
                    *MODERN_12,
                    "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
                    "TLS_RSA_WITH_NULL_SHA256",
                ),
                V.TLS13: MODERN_13,
            },
            dh_bits=2048,
        )
    )
    assert result.key_exchange_score == 0 and result.cipher_score == 50
    cap_for(result, "F", "anonymous")
    cap_for(result, "F", "NULL")


def test_no_tls12_caps_at_c() -> None:
    cbc = ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",)
    result = graded(make_endpoint({V.TLS10: cbc, V.TLS11: cbc}))
    cap_for(result, "C", "TLSv1.2")
    assert "TLSv1.0 and TLSv1.1" in cap_for(result, "B", "TLSv1.1")
    cap_for(result, "B", "AEAD")
    assert result.letter == "C"


def test_tls13_only_is_not_capped() -> None:
    result = graded(make_endpoint({V.TLS13: MODERN_13}))
    assert result.letter == "A" and result.caps == ()


def test_no_forward_secrecy_caps_at_b() -> None:
    result = graded(make_endpoint({V.TLS12: ("TLS_RSA_WITH_AES_128_GCM_SHA256",)}))
    assert result.letter == "B"
    cap_for(result, "B", "forward secrecy")


def test_no_aead_caps_at_b() -> None:
    result = graded(make_endpoint({V.TLS12: ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",)}))
    assert result.letter == "B"
    cap_for(result, "B", "AEAD")


def test_weak_dh_caps_at_b() -> None:
    suites = (*MODERN_12, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")
    result = graded(make_endpoint({V.TLS12: suites, V.TLS13: MODERN_13}, dh_bits=1024))
    assert result.key_exchange_score == 80
    assert "1024" in cap_for(result, "B", "DH parameters")
    unknown = graded(make_endpoint({V.TLS12: suites, V.TLS13: MODERN_13}))
    assert any("DH parameter size" in w for w in unknown.warnings)


def test_weak_curve_caps_at_b() -> None:
    groups = (
        KeyExchangeGroup("x25519", 256, BOTH),
        KeyExchangeGroup("secp192r1", 192, (V.TLS12,)),
    )
    result = graded(make_endpoint(groups=groups))
    # secp192r1 ~ RSA 1024 -> 80
    assert result.key_exchange_score == 80
    assert "secp192r1" in cap_for(result, "B", "groups")


def test_incomplete_chain_caps_at_b_and_md5_is_f() -> None:
    assert graded(make_endpoint(chain=make_chain(incomplete=True))).letter == "B"
    result = graded(make_endpoint(chain=make_chain(weak_signature="md5")))
    cap_for(result, "F", "MD5")


def test_ecdsa_modern_server() -> None:
    result = graded(make_endpoint({V.TLS13: MODERN_13}, chain=make_chain("ecdsa", 256)))
    assert (result.key_exchange_score, result.score, result.letter) == (90, 93, "A")


def test_missing_facts_are_warnings_not_caps() -> None:
    endpoint = make_endpoint(
        compression=None,
        heartbleed=None,
        fallback_scsv=None,
        groups=(),
        chain=make_chain(hostname=None, hostname_matches=None),
    )
    result = graded(endpoint)
    assert result.caps == () and result.letter == "A"
    text = " | ".join(result.warnings)
    for expected in ("compression", "Heartbleed", "FALLBACK_SCSV", "groups", "host name"):
        assert expected in text


def test_no_fallback_scsv_is_a_warning() -> None:
    endpoint = make_endpoint(fallback_scsv=False, hsts=HstsPolicy(present=True, max_age=ONE_YEAR))
    result = graded(endpoint)
    assert result.letter == "A"
    assert any("FALLBACK_SCSV" in w for w in result.warnings)


def test_untested_protocol_is_a_warning() -> None:
    endpoint = make_endpoint()
    protocols = tuple(
        ProtocolSupport(V.TLS10, None, error="connection reset") if p.version is V.TLS10 else p
        for p in endpoint.protocols
    )
    result = graded(replace(endpoint, protocols=protocols))
    assert result.letter == "A"
    assert any("TLSv1.0" in w and "connection reset" in w for w in result.warnings)


def test_unknown_suite_names_are_ignored_with_a_warning() -> None:
    result = graded(make_endpoint({V.TLS12: (*MODERN_12, "UNKNOWN_0x7A7A"), V.TLS13: MODERN_13}))
    assert result.score == 93
    assert any("UNKNOWN_0x7A7A" in w for w in result.warnings)


def test_no_grade_without_an_assessment() -> None:
    assert grade(make_endpoint(error="connection refused")) is None
    assert grade(make_endpoint({})) is None
    # TLS 1.3 only, with neither the groups nor the certificate known: no key exchange to rate
    assert grade(make_endpoint({V.TLS13: MODERN_13}, groups=(), chain=None)) is None
