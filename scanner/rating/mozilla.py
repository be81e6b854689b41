"""Conformance of one TLS endpoint to Mozilla's Server Side TLS guidelines 5.7 (modern,
intermediate, old), read from the guidelines' own JSON shipped with posture.

OCSP stapling (`ocsp_staple`) is not checked: posture does not probe for it, so every
conformance carries a note saying so instead of a deviation. Facts the assessment could not
establish (None) are never deviations either.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from scanner.probes.tls import suites
from scanner.probes.tls.model import CertificateFacts, TlsEndpoint, TlsVersion

GUIDELINES_FILE = "mozilla-server-side-tls-5.7.json"
PROFILES = ("modern", "intermediate", "old")  # strictest first

_VERSIONS = {
    "SSLv2": TlsVersion.SSL2,
    "SSLv3": TlsVersion.SSL3,
    "TLSv1": TlsVersion.TLS10,
    "TLSv1.1": TlsVersion.TLS11,
    "TLSv1.2": TlsVersion.TLS12,
    "TLSv1.3": TlsVersion.TLS13,
}
# The guidelines name curves as OpenSSL does; posture's facts use the IANA names.
_CURVE_ALIASES = {
    "X25519": "x25519",
    "X448": "x448",
    "prime256v1": "secp256r1",
    "prime192v1": "secp192r1",
}


class GuidelinesError(RuntimeError):
    """The bundled guidelines file is missing or not in the expected shape."""


@dataclass(frozen=True)
class Profile:
    """One configuration of the guidelines, with curve names in IANA spelling."""

    name: str
    tls_versions: tuple[TlsVersion, ...]
    ciphers: tuple[str, ...]  # IANA names, TLS 1.2 and older
    ciphersuites: tuple[str, ...]  # TLS 1.3
    tls_curves: tuple[str, ...]
    certificate_types: tuple[str, ...]
    certificate_curves: tuple[str, ...]
    certificate_signatures: tuple[str, ...]
    rsa_key_size: int | None
    dh_param_size: int | None
    ecdh_param_size: int | None
    hsts_min_age: int | None
    maximum_certificate_lifespan: int | None
    server_preferred_order: bool
    ocsp_staple: bool


@dataclass(frozen=True)
class Deviation:
    """One way the endpoint departs from a profile. `kind` is one of protocol, cipher, group,
    certificate_type, certificate_curve, certificate_signature, certificate_lifespan,
    rsa_key_size, dh_param_size, hsts, server_order."""

    kind: str
    message: str


@dataclass(frozen=True)
class Conformance:
    profile: str
    conforms: bool
    deviations: tuple[Deviation, ...]
    notes: tuple[str, ...] = ()  # what was not checked or is only advice


@cache
def guidelines() -> Mapping[str, Profile]:
    """The profiles of the bundled guidelines, by name."""
    try:
        text = resources.files("scanner.rating").joinpath(GUIDELINES_FILE).read_text("utf-8")
        configurations = json.loads(text)["configurations"]
        return {name: _profile(name, configurations[name]) for name in PROFILES}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GuidelinesError(
            f"Mozilla guidelines {GUIDELINES_FILE} in scanner/rating could not be read ({exc}); "
            "reinstall posture"
        ) from exc


def _profile(name: str, raw: Mapping[str, Any]) -> Profile:
    def curves(key: str) -> tuple[str, ...]:
        return tuple(_CURVE_ALIASES.get(c, c) for c in raw[key])

    return Profile(
        name=name,
        tls_versions=tuple(_VERSIONS[v] for v in raw["tls_versions"]),
        ciphers=tuple(raw["ciphers_iana"]),
        ciphersuites=tuple(raw["ciphersuites"]),
        tls_curves=curves("tls_curves"),
        certificate_types=tuple(raw["certificate_types"]),
        certificate_curves=curves("certificate_curves"),
        certificate_signatures=tuple(raw["certificate_signatures"]),
        rsa_key_size=raw["rsa_key_size"],
        dh_param_size=raw["dh_param_size"],
        ecdh_param_size=raw["ecdh_param_size"],
        hsts_min_age=raw["hsts_min_age"],
        maximum_certificate_lifespan=raw["maximum_certificate_lifespan"],
        server_preferred_order=bool(raw["server_preferred_order"]),
        ocsp_staple=bool(raw["ocsp_staple"]),
    )


def check_profile(endpoint: TlsEndpoint, profile: str) -> Conformance:
    """How the endpoint measures against one profile (modern, intermediate or old)."""
    profiles = guidelines()
    if profile not in profiles:
        raise ValueError(f"unknown Mozilla profile {profile!r}; use one of {', '.join(PROFILES)}")
    spec = profiles[profile]
    deviations: list[Deviation] = []
    notes: list[str] = []
    if endpoint.error is not None or not endpoint.supported_versions:
        why = endpoint.error or "no protocol version was found enabled"
        deviations.append(Deviation("protocol", f"no TLS could be assessed: {why}"))
        return Conformance(profile, False, tuple(deviations), ())
    _protocols(endpoint, spec, deviations, notes)
    _ciphers(endpoint, spec, deviations)
    _groups(endpoint, spec, deviations, notes)
    _certificate(endpoint, spec, deviations, notes)
    _hsts(endpoint, spec, deviations)
    _server_order(endpoint, spec, deviations, notes)
    if spec.ocsp_staple:
        notes.append(f"{profile} asks for OCSP stapling, which posture does not probe")
    return Conformance(profile, not deviations, tuple(deviations), tuple(notes))


def check_all(endpoint: TlsEndpoint) -> tuple[Conformance, ...]:
    """Conformance to every profile, strictest first."""
    return tuple(check_profile(endpoint, name) for name in PROFILES)


def best_profile(endpoint: TlsEndpoint) -> str | None:
    """The strictest profile the endpoint conforms to, None when it conforms to none."""
    return next((c.profile for c in check_all(endpoint) if c.conforms), None)


def _names(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def _protocols(
    endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation], notes: list[str]
) -> None:
    allowed = [v.value for v in spec.tls_versions]
    for version in endpoint.supported_versions:
        if version not in spec.tls_versions:
            deviations.append(
                Deviation(
                    "protocol",
                    f"{version.value} is enabled; {spec.name} allows only {_names(allowed)}",
                )
            )
    missing = [
        v.value
        for v in spec.tls_versions
        if (support := endpoint.protocol(v)) is not None and support.supported is False
    ]
    if missing and len(missing) < len(spec.tls_versions):
        # A subset of the profile's versions is stricter, not a departure from it.
        notes.append(f"{_names(missing)} not enabled; {spec.name} includes it")


def _ciphers(endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation]) -> None:
    for support in endpoint.protocols:
        if not support.supported:
            continue
        tls13 = support.version is TlsVersion.TLS13
        allowed = spec.ciphersuites if tls13 else spec.ciphers
        for name in support.suites:
            if name not in allowed:
                deviations.append(
                    Deviation(
                        "cipher",
                        f"{name} is accepted on {support.version.value}; not in {spec.name}",
                    )
                )


def _groups(
    endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation], notes: list[str]
) -> None:
    for accepted in endpoint.groups:
        known = suites.group(accepted.name)
        kind = known.kind if known is not None else None
        if kind in ("hybrid", "pq"):
            # Post-quantum groups postdate 5.7; they add strength, so they are not held against
            # the server.
            notes.append(f"{accepted.name} is accepted; the {spec.name} profile predates it")
            continue
        if kind == "ff":
            # Finite-field groups are DH parameters: the profile bounds them by dh_param_size,
            # and a profile without DHE (modern) allows none.
            if spec.dh_param_size is None:
                deviations.append(
                    Deviation(
                        "group",
                        f"{accepted.name} is accepted; {spec.name} allows no finite-field DH",
                    )
                )
            elif accepted.bits < spec.dh_param_size:
                deviations.append(
                    Deviation(
                        "dh_param_size",
                        f"{accepted.name} is accepted; {spec.name} asks for DH groups of at "
                        f"least {spec.dh_param_size} bits",
                    )
                )
            continue
        if accepted.name not in spec.tls_curves:
            small = ""
            if spec.ecdh_param_size and 0 < accepted.bits < spec.ecdh_param_size:
                small = f" ({accepted.bits} bits, under {spec.ecdh_param_size})"
            deviations.append(
                Deviation(
                    "group",
                    f"{accepted.name} is accepted{small}; {spec.name} allows only "
                    f"{_names(spec.tls_curves)}",
                )
            )
    dh_bits, dh_floor = endpoint.dh_bits, spec.dh_param_size
    if dh_bits is not None and dh_floor is not None and dh_bits < dh_floor:
        deviations.append(
            Deviation(
                "dh_param_size",
                f"DHE uses {dh_bits}-bit parameters; {spec.name} asks for at least {dh_floor}",
            )
        )


def lifespan_days(leaf: CertificateFacts) -> float:
    """Validity period in days; both bounds are inclusive (RFC 5280 4.1.2.5), hence the
    extra second: a 90-day Let's Encrypt certificate ends 1 s before day 90."""
    return (leaf.not_after - leaf.not_before + dt.timedelta(seconds=1)).total_seconds() / 86400


def _certificate(
    endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation], notes: list[str]
) -> None:
    chain = endpoint.chain
    if chain is None or not chain.certificates:
        notes.append("the certificate could not be read and was not checked")
        return
    leaf = chain.leaf
    if leaf.key_type not in spec.certificate_types:
        deviations.append(
            Deviation(
                "certificate_type",
                f"the certificate key is {leaf.key_type}; {spec.name} allows "
                f"{_names(spec.certificate_types)}",
            )
        )
    elif leaf.key_type == "ecdsa" and leaf.curve and leaf.curve not in spec.certificate_curves:
        deviations.append(
            Deviation(
                "certificate_curve",
                f"the certificate key is on {leaf.curve}; {spec.name} allows "
                f"{_names(spec.certificate_curves)}",
            )
        )
    if leaf.signature_algorithm not in spec.certificate_signatures:
        deviations.append(
            Deviation(
                "certificate_signature",
                f"the certificate is signed with {leaf.signature_algorithm}; {spec.name} allows "
                f"{_names(spec.certificate_signatures)}",
            )
        )
    if spec.maximum_certificate_lifespan is not None:
        days = lifespan_days(leaf)
        if days > spec.maximum_certificate_lifespan:
            deviations.append(
                Deviation(
                    "certificate_lifespan",
                    f"the certificate is valid for {_days(days)} days; {spec.name} allows at most "
                    f"{spec.maximum_certificate_lifespan}",
                )
            )
    if leaf.key_type == "rsa" and spec.rsa_key_size and leaf.key_bits < spec.rsa_key_size:
        deviations.append(
            Deviation(
                "rsa_key_size",
                f"the certificate's RSA key has {leaf.key_bits} bits; {spec.name} asks for "
                f"{spec.rsa_key_size}",
            )
        )


def _days(days: float) -> str:
    return f"{days:.0f}" if abs(days - round(days)) < 0.005 else f"{days:.2f}"


def _hsts(endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation]) -> None:
    hsts = endpoint.hsts
    if hsts is None or spec.hsts_min_age is None:
        return  # not an HTTPS endpoint, or HSTS was not looked for
    wanted = f"{spec.name} asks for max-age of at least {spec.hsts_min_age} s"
    if not hsts.present:
        message = f"no Strict-Transport-Security header; {wanted}"
    elif hsts.max_age is None:
        message = f"the Strict-Transport-Security header has no valid max-age; {wanted}"
    elif hsts.max_age < spec.hsts_min_age:
        message = f"HSTS max-age is {hsts.max_age} s; {wanted}"
    else:
        return
    deviations.append(Deviation("hsts", message))


def _server_order(
    endpoint: TlsEndpoint, spec: Profile, deviations: list[Deviation], notes: list[str]
) -> None:
    # Modern and intermediate say server_preferred_order False: every suite they allow is
    # strong, so letting the client choose (it knows whether it has AES hardware) is advice,
    # not a requirement, and Mozilla's own checker only warns. Old needs the server's order to
    # keep legacy suites (3DES, CBC) for the clients that have nothing better; TLS 1.3 is
    # left out of that, its suites are all AEAD.
    legacy = [
        p
        for p in endpoint.protocols
        if p.supported and p.version is not TlsVersion.TLS13 and len(p.suites) > 1
    ]
    if spec.server_preferred_order:
        for support in legacy:
            if support.server_preference is False:
                deviations.append(
                    Deviation(
                        "server_order",
                        f"the client chooses the suite on {support.version.value}; "
                        f"{spec.name} asks for the server's order",
                    )
                )
    elif any(p.server_preference for p in legacy):
        notes.append(f"the server enforces its suite order; {spec.name} lets the client choose")
