"""A TLS assessment as the flat `tls.*` facts rules match on (Service.checks["tls"]): versions,
suite classes, key exchange, extras, certificate, grade and Mozilla conformance."""

from __future__ import annotations

from typing import Any

from scanner.probes.tls import suites
from scanner.probes.tls.model import TlsEndpoint, TlsVersion
from scanner.rating.grade import Grade, grade
from scanner.rating.mozilla import best_profile, check_profile

_VERSION_FACT = {
    TlsVersion.SSL2: "sslv2",
    TlsVersion.SSL3: "sslv3",
    TlsVersion.TLS10: "tls10",
    TlsVersion.TLS11: "tls11",
    TlsVersion.TLS12: "tls12",
    TlsVersion.TLS13: "tls13",
}
MAX_LISTED = 64  # suites named in one fact; the rest are counted in the full list


def _known(name: str) -> suites.CipherSuite | None:
    try:
        return suites.suite(name)
    except KeyError:
        return None


def tls_facts(endpoint: TlsEndpoint, endpoint_grade: Grade | None = None) -> dict[str, Any]:
    """The facts of one assessment; an assessment that failed has none (the check applied and
    could not tell, so rules that need them are undetermined rather than passed)."""
    if endpoint.error is not None or not endpoint.supported_versions:
        return {}
    facts: dict[str, Any] = {}
    if endpoint.starttls is not None:
        facts["starttls"] = endpoint.starttls.value
    if endpoint.sni:
        facts["sni"] = endpoint.sni
    facts["versions"] = [v.value for v in endpoint.supported_versions]
    for support in endpoint.protocols:
        if support.supported is not None:
            facts[_VERSION_FACT[support.version]] = support.supported
    _suite_facts(endpoint, facts)
    _key_exchange_facts(endpoint, facts)
    for name in ("secure_renegotiation", "compression", "fallback_scsv", "heartbeat", "heartbleed"):
        value = getattr(endpoint, name)
        if value is not None:
            facts[name] = value
    if endpoint.hsts is not None:
        facts["hsts"] = endpoint.hsts.present
        if endpoint.hsts.max_age is not None:
            facts["hsts_max_age"] = endpoint.hsts.max_age
        facts["hsts_include_subdomains"] = endpoint.hsts.include_subdomains
    _certificate_facts(endpoint, facts)
    _judgement_facts(endpoint, endpoint_grade or grade(endpoint), facts)
    return facts


def _suite_facts(endpoint: TlsEndpoint, facts: dict[str, Any]) -> None:
    accepted = endpoint.accepted_suites
    facts["suites"] = list(accepted[: MAX_LISTED * 4])
    known = [s for s in (_known(name) for name in accepted) if s is not None]
    classes = {
        "rc4_suites": [s.name for s in known if s.rc4],
        "des3_suites": [s.name for s in known if s.des3],
        "des_suites": [s.name for s in known if s.cipher in ("DES_CBC", "DES40_CBC")],
        "export_suites": [s.name for s in known if s.export],
        "null_suites": [s.name for s in known if s.null_cipher],
        "anonymous_suites": [s.name for s in known if s.anonymous],
        "weak_suites": [s.name for s in known if 0 < s.cipher_bits < 128 or s.export],
        "non_pfs_suites": [s.name for s in known if not s.pfs],
    }
    early = {TlsVersion.SSL3, TlsVersion.TLS10}
    classes["cbc_tls10_suites"] = list(
        dict.fromkeys(
            name
            for support in endpoint.protocols
            if support.version in early and support.supported
            for name in support.suites
            if (s := _known(name)) is not None and s.cbc
        )
    )
    for fact, names in classes.items():
        if names:
            facts[fact] = names[:MAX_LISTED]
    if known:
        facts["forward_secrecy"] = any(s.pfs for s in known)
        facts["only_forward_secrecy"] = all(s.pfs for s in known)
        facts["aead"] = any(s.aead for s in known)


def _key_exchange_facts(endpoint: TlsEndpoint, facts: dict[str, Any]) -> None:
    if endpoint.groups:
        facts["groups"] = [g.name for g in endpoint.groups]
        ec_bits = [g.bits for g in endpoint.groups if not g.name.startswith("ffdhe")]
        if ec_bits:
            facts["ecdh_bits"] = min(ec_bits)
    if endpoint.dh_bits is not None:
        facts["dh_bits"] = endpoint.dh_bits


def _certificate_facts(endpoint: TlsEndpoint, facts: dict[str, Any]) -> None:
    chain = endpoint.chain
    if chain is None or not chain.certificates:
        return
    leaf = chain.leaf
    facts.update(
        {
            "cert.subject": leaf.subject,
            "cert.issuer": leaf.issuer,
            "cert.not_after": leaf.not_after.isoformat(),
            "cert.days_left": chain.days_left,
            "cert.expired": chain.expired,
            "cert.not_yet_valid": chain.not_yet_valid,
            "cert.expiring_soon": chain.expiring_soon,
            "cert.trusted": chain.trusted,
            "cert.self_signed": chain.self_signed,
            "cert.incomplete_chain": chain.incomplete,
            "cert.key_type": chain.key_type,
            "cert.key_bits": chain.key_bits,
            "cert.signature_algorithm": leaf.signature_algorithm,
        }
    )
    if chain.trust_error:
        facts["cert.trust_error"] = chain.trust_error
    if chain.hostname is not None:
        facts["cert.hostname"] = chain.hostname
    if chain.hostname_matches is not None:
        facts["cert.hostname_matches"] = chain.hostname_matches
    if chain.weak_signature:
        facts["cert.weak_signature"] = chain.weak_signature


def _judgement_facts(endpoint: TlsEndpoint, verdict: Grade | None, facts: dict[str, Any]) -> None:
    if verdict is not None:
        facts["grade"] = verdict.letter
        facts["grade_ignoring_trust"] = verdict.letter_ignoring_trust
        facts["score"] = verdict.score
        if verdict.caps:
            facts["grade_caps"] = [cap.reason for cap in verdict.caps]
    facts["mozilla_profile"] = best_profile(endpoint) or "none"
    intermediate = check_profile(endpoint, "intermediate")
    facts["mozilla_intermediate"] = intermediate.conforms
    if intermediate.deviations:
        facts["mozilla_intermediate_deviations"] = [d.message for d in intermediate.deviations][
            :MAX_LISTED
        ]
