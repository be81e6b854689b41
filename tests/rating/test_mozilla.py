"""Conformance to Mozilla Server Side TLS 5.7 on hand-built endpoints: the configurations
Mozilla's generator produces conform to their own profile and not to stricter ones."""

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
from scanner.rating.mozilla import (
    PROFILES,
    Conformance,
    best_profile,
    check_all,
    check_profile,
    guidelines,
    lifespan_days,
)

V = TlsVersion
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
TWO_YEARS = 63_072_000
TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
# Mozilla's nginx "intermediate" for an RSA certificate: the RSA half of ciphers_iana.
INTERMEDIATE_RSA = (
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)
OLD_LEGACY = (
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
)
MOZILLA_CURVES = (
    KeyExchangeGroup("x25519", 256, (V.TLS12, V.TLS13)),
    KeyExchangeGroup("secp256r1", 256, (V.TLS12, V.TLS13)),
    KeyExchangeGroup("secp384r1", 384, (V.TLS12, V.TLS13)),
)


def make_chain(
    key_type: str = "rsa",
    key_bits: int = 2048,
    *,
    curve: str | None = None,
    signature: str = "sha256WithRSAEncryption",
    lifespan: dt.timedelta = dt.timedelta(days=90, seconds=-1),
) -> ChainFacts:
    leaf = CertificateFacts(
        subject="CN=www.example.test",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - dt.timedelta(days=10),
        not_after=NOW - dt.timedelta(days=10) + lifespan,
        dns_names=("www.example.test",),
        ip_addresses=(),
        common_name="www.example.test",
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=signature,
        signature_hash="sha256",
        self_signed=False,
        is_ca=False,
        sha256="00" * 32,
    )
    return ChainFacts(
        certificates=(leaf,),
        trusted=True,
        trust_error=None,
        hostname="www.example.test",
        hostname_matches=True,
        expired=False,
        not_yet_valid=False,
        days_left=80,
        expiring_soon=False,
        self_signed=False,
        incomplete=False,
        weak_signature=None,
        key_type=key_type,
        key_bits=key_bits,
    )


ECDSA_CHAIN = make_chain("ecdsa", 256, curve="secp256r1", signature="ecdsa-with-SHA256")


def make_endpoint(
    suites_by_version: dict[TlsVersion, tuple[str, ...]],
    *,
    server_preference: bool = False,
    **changes: object,
) -> TlsEndpoint:
    protocols = tuple(
        ProtocolSupport(
            v,
            supported=v in suites_by_version,
            suites=suites_by_version.get(v, ()),
            server_preference=server_preference if v in suites_by_version else None,
        )
        for v in TlsVersion
    )
    endpoint = TlsEndpoint(
        host="192.0.2.10",
        port=443,
        sni="www.example.test",
        starttls=None,
        protocols=protocols,
        groups=MOZILLA_CURVES,
        chain=make_chain(),
        secure_renegotiation=True,
        compression=False,
        hsts=HstsPolicy(present=True, max_age=TWO_YEARS),
    )
    return replace(endpoint, **changes)  # type: ignore[arg-type]


def modern() -> TlsEndpoint:
    return make_endpoint({V.TLS13: TLS13}, chain=ECDSA_CHAIN)


def nginx_intermediate() -> TlsEndpoint:
    return make_endpoint({V.TLS12: INTERMEDIATE_RSA, V.TLS13: TLS13}, dh_bits=2048)


def old() -> TlsEndpoint:
    legacy = (*INTERMEDIATE_RSA, *OLD_LEGACY)
    return make_endpoint(
        {V.TLS10: OLD_LEGACY, V.TLS11: OLD_LEGACY, V.TLS12: legacy, V.TLS13: TLS13},
        server_preference=True,
        dh_bits=1024,
    )


def kinds(conformance: Conformance) -> list[str]:
    return [d.kind for d in conformance.deviations]


def messages(conformance: Conformance) -> list[str]:
    return [d.message for d in conformance.deviations]


def test_guidelines_load_from_package_data() -> None:
    profiles = guidelines()
    assert tuple(profiles) == PROFILES
    assert profiles["modern"].tls_versions == (V.TLS13,)
    assert profiles["intermediate"].tls_curves == ("x25519", "secp256r1", "secp384r1")
    assert profiles["old"].dh_param_size == 1024 and profiles["old"].server_preferred_order
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in profiles["old"].ciphers
    with pytest.raises(ValueError, match="modern, intermediate, old"):
        check_profile(modern(), "paranoid")


def test_modern_tls13_ecdsa_endpoint_conforms_to_modern() -> None:
    endpoint = modern()
    result = check_profile(endpoint, "modern")
    assert result.conforms, result.deviations
    assert any("OCSP" in note for note in result.notes)
    assert best_profile(endpoint) == "modern"
    # old allows only RSA certificates signed with sha256WithRSAEncryption
    assert [c.conforms for c in check_all(endpoint)] == [True, True, False]
    assert kinds(check_profile(endpoint, "old")) == ["certificate_type", "certificate_signature"]


def test_nginx_intermediate_conforms_to_intermediate_not_modern() -> None:
    endpoint = nginx_intermediate()
    assert check_profile(endpoint, "intermediate").conforms
    assert best_profile(endpoint) == "intermediate"
    result = check_profile(endpoint, "modern")
    assert not result.conforms
    assert messages(result) == [
        "TLSv1.2 is enabled; modern allows only TLSv1.3",
        *(f"{name} is accepted on TLSv1.2; not in modern" for name in INTERMEDIATE_RSA),
        "the certificate key is rsa; modern allows ecdsa",
        "the certificate is signed with sha256WithRSAEncryption; modern allows "
        "ecdsa-with-SHA256, ecdsa-with-SHA384, ecdsa-with-SHA512",
    ]
    # old wants the server to choose; nginx's intermediate lets the client choose
    assert messages(check_profile(endpoint, "old")) == [
        "the client chooses the suite on TLSv1.2; old asks for the server's order"
    ]


def test_old_config_conforms_to_old_only() -> None:
    endpoint = old()
    assert [c.conforms for c in check_all(endpoint)] == [False, False, True]
    assert best_profile(endpoint) == "old"
    intermediate = check_profile(endpoint, "intermediate")
    found = messages(intermediate)
    assert "TLSv1.0 is enabled; intermediate allows only TLSv1.2, TLSv1.3" in found
    assert "TLSv1.1 is enabled; intermediate allows only TLSv1.2, TLSv1.3" in found
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA is accepted on TLSv1.0; not in intermediate" in found
    assert "TLS_RSA_WITH_AES_128_CBC_SHA is accepted on TLSv1.2; not in intermediate" in found
    assert "DHE uses 1024-bit parameters; intermediate asks for at least 2048" in found
    assert set(kinds(intermediate)) == {"protocol", "cipher", "dh_param_size"}
    # server order is what old asks for, and intermediate does not hold it against a server
    assert not any(d.kind == "server_order" for d in intermediate.deviations)
    assert any("enforces its suite order" in note for note in intermediate.notes)


def test_old_config_with_client_order_does_not_conform_to_old() -> None:
    endpoint = replace(
        old(), protocols=tuple(replace(p, server_preference=False) for p in old().protocols)
    )
    assert messages(check_profile(endpoint, "old")) == [
        f"the client chooses the suite on {v}; old asks for the server's order"
        for v in ("TLSv1.0", "TLSv1.1", "TLSv1.2")
    ]


def test_sslv3_and_unlisted_suites_do_not_conform_to_old() -> None:
    endpoint = make_endpoint(
        {V.SSL3: ("TLS_RSA_WITH_RC4_128_SHA",), V.TLS12: INTERMEDIATE_RSA},
        server_preference=True,
        dh_bits=2048,
    )
    result = check_profile(endpoint, "old")
    assert messages(result) == [
        "SSLv3 is enabled; old allows only TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3",
        "TLS_RSA_WITH_RC4_128_SHA is accepted on SSLv3; not in old",
    ]
    assert best_profile(endpoint) is None


@pytest.mark.parametrize(
    ("chain", "profile", "kind", "text"),
    [
        (
            make_chain(lifespan=dt.timedelta(days=398)),
            "intermediate",
            "certificate_lifespan",
            "valid for 398 days; intermediate allows at most 366",
        ),
        (
            make_chain("ecdsa", 256, curve="secp256r1", signature="ecdsa-with-SHA256",
                       lifespan=dt.timedelta(days=90, hours=1)),
            "modern",
            "certificate_lifespan",
            "valid for 90.04 days; modern allows at most 90",
        ),
        (
            make_chain(key_bits=1024),
            "intermediate",
            "rsa_key_size",
            "RSA key has 1024 bits; intermediate asks for 2048",
        ),
        (
            make_chain("ecdsa", 521, curve="secp521r1", signature="ecdsa-with-SHA512"),
            "intermediate",
            "certificate_curve",
            "on secp521r1; intermediate allows secp256r1, secp384r1",
        ),
        (
            make_chain(signature="sha1WithRSAEncryption"),
            "old",
            "certificate_signature",
            "signed with sha1WithRSAEncryption; old allows sha256WithRSAEncryption",
        ),
        (
            make_chain("ed25519", 256, signature="ed25519"),
            "intermediate",
            "certificate_type",
            "key is ed25519; intermediate allows ecdsa, rsa",
        ),
    ],
)  # fmt: skip
def test_certificate_deviations(chain: ChainFacts, profile: str, kind: str, text: str) -> None:
    base = {"modern": modern, "intermediate": nginx_intermediate, "old": old}[profile]()
    result = check_profile(replace(base, chain=chain), profile)
    # an Ed25519 certificate is also signed with Ed25519, which no profile lists
    extra = ["certificate_signature"] if chain.key_type == "ed25519" else []
    assert kinds(result) == [kind, *extra], result.deviations
    assert text in result.deviations[0].message


def test_lets_encrypt_lifespan_is_ninety_days() -> None:
    assert lifespan_days(ECDSA_CHAIN.leaf) == 90
    assert check_profile(modern(), "modern").conforms


def test_unknown_facts_are_not_deviations() -> None:
    endpoint = replace(nginx_intermediate(), chain=None, hsts=None, groups=(), dh_bits=None)
    result = check_profile(endpoint, "intermediate")
    assert result.conforms
    assert any("certificate could not be read" in note for note in result.notes)
    unknown_order = replace(
        old(), protocols=tuple(replace(p, server_preference=None) for p in old().protocols)
    )
    assert check_profile(unknown_order, "old").conforms


@pytest.mark.parametrize(
    ("hsts", "text"),
    [
        (HstsPolicy(present=False), "no Strict-Transport-Security header"),
        (HstsPolicy(present=True, max_age=31_536_000), "HSTS max-age is 31536000 s"),
        (HstsPolicy(present=True, max_age=None), "no valid max-age"),
    ],
)
def test_hsts_deviations(hsts: HstsPolicy, text: str) -> None:
    result = check_profile(replace(modern(), hsts=hsts), "modern")
    assert kinds(result) == ["hsts"]
    assert text in result.deviations[0].message and "63072000" in result.deviations[0].message


def test_group_deviations() -> None:
    groups = (
        *MOZILLA_CURVES,
        KeyExchangeGroup("secp521r1", 521, (V.TLS13,)),
        KeyExchangeGroup("secp224r1", 224, (V.TLS12,)),
        KeyExchangeGroup("ffdhe2048", 2048, (V.TLS13,)),
        KeyExchangeGroup("X25519MLKEM768", 256, (V.TLS13,)),
    )
    intermediate = check_profile(replace(nginx_intermediate(), groups=groups), "intermediate")
    assert messages(intermediate) == [
        "secp521r1 is accepted; intermediate allows only x25519, secp256r1, secp384r1",
        "secp224r1 is accepted (224 bits, under 256); intermediate allows only x25519, "
        "secp256r1, secp384r1",
    ]
    assert any("X25519MLKEM768" in note for note in intermediate.notes)
    modern_result = check_profile(replace(modern(), groups=groups), "modern")
    assert "ffdhe2048 is accepted; modern allows no finite-field DH" in messages(modern_result)
    small = (KeyExchangeGroup("ffdhe2048", 2048, (V.TLS13,)),)
    assert check_profile(replace(old(), groups=small), "old").conforms


def test_client_order_is_not_a_deviation_for_modern() -> None:
    endpoint = make_endpoint({V.TLS13: TLS13}, chain=ECDSA_CHAIN, server_preference=True)
    assert check_profile(endpoint, "modern").conforms


def test_failed_assessment_conforms_to_nothing() -> None:
    endpoint = replace(modern(), error="connection refused")
    results = check_all(endpoint)
    assert [c.conforms for c in results] == [False, False, False]
    assert "connection refused" in results[0].deviations[0].message
    assert best_profile(make_endpoint({})) is None
