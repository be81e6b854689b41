"""The SSL Labs-style letter grade of one TLS endpoint: the SSL Server Rating Guide (2009r) score
from protocol, key exchange and cipher strength, then the caps of its 2013-2020 updates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from scanner.probes.tls import suites
from scanner.probes.tls.model import ChainFacts, KeyExchangeGroup, TlsEndpoint, TlsVersion
from scanner.probes.tls.suites import CipherSuite

LETTERS = ("A+", "A", "A-", "B", "C", "D", "E", "F")  # best first
TRUST_LETTER = "T"  # untrusted, self-signed or expired certificate
MISMATCH_LETTER = "M"  # the certificate does not name the host
LONG_HSTS = 15_552_000  # 180 days: SSL Labs asks at least this much max-age for A+

_PROTOCOL_SCORES = {
    TlsVersion.SSL2: 0,
    TlsVersion.SSL3: 80,
    TlsVersion.TLS10: 90,
    TlsVersion.TLS11: 95,
    TlsVersion.TLS12: 100,
    TlsVersion.TLS13: 100,
}
_BANDS = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))
_EXPORT_KEY_SCORE = 40  # the guide's "exportable key exchange (limited to 512 bits)"
_LISTED = 3  # suites named in one reason


@dataclass(frozen=True)
class Cap:
    """A limit on the grade, with why it applied."""

    letter: str  # one of LETTERS, or T / M
    reason: str


@dataclass(frozen=True)
class Grade:
    """An endpoint's grade. `letter` is what to show: F when an F cap applied, else T or M when
    the certificate fails, else `letter_ignoring_trust`. Sub-scores are 0-100, in halves."""

    letter: str
    letter_ignoring_trust: str
    score: int
    protocol_score: float
    key_exchange_score: float
    cipher_score: float
    caps: tuple[Cap, ...]
    warnings: tuple[str, ...]  # what could not be told or is not quite right; none for A+


def grade(endpoint: TlsEndpoint) -> Grade | None:
    """The grade of an assessed endpoint; None when it could not be assessed, supports no
    protocol, or when none of its accepted suites or key-exchange strengths is known."""
    if endpoint.error is not None or not endpoint.supported_versions:
        return None
    warnings: list[str] = []
    accepted = _accepted(endpoint, warnings)
    if not accepted:
        return None
    key_exchange = _key_exchange_score(endpoint, accepted, warnings)
    if key_exchange is None:
        return None
    versions = endpoint.supported_versions
    protocol = Fraction(
        max(_PROTOCOL_SCORES[v] for v in versions) + min(_PROTOCOL_SCORES[v] for v in versions), 2
    )
    bits = [s.cipher_bits for _, s in accepted]
    cipher = Fraction(_cipher_strength_score(max(bits)) + _cipher_strength_score(min(bits)), 2)
    total = (3 * protocol + 3 * key_exchange + 4 * cipher) / 10
    score = int(total + Fraction(1, 2))  # round half up, not Python's half to even
    caps = [*_protocol_caps(endpoint), *_suite_caps(accepted), *_key_caps(endpoint, accepted)]
    caps += _extra_caps(endpoint)
    _unknown_fact_warnings(endpoint, warnings)
    letter = _worst([band(score), *(c.letter for c in caps if c.letter in LETTERS)])
    if letter == "A" and _long_hsts(endpoint) and not warnings:
        letter = "A+"
    shown = letter
    if letter != "F":
        trust = [c.letter for c in caps if c.letter in (TRUST_LETTER, MISMATCH_LETTER)]
        if trust:
            shown = TRUST_LETTER if TRUST_LETTER in trust else MISMATCH_LETTER
    return Grade(
        letter=shown,
        letter_ignoring_trust=letter,
        score=score,
        protocol_score=float(protocol),
        key_exchange_score=float(key_exchange),
        cipher_score=float(cipher),
        caps=tuple(caps),
        warnings=tuple(warnings),
    )


# --- scores ------------------------------------------------------------------------------


def _accepted(endpoint: TlsEndpoint, warnings: list[str]) -> list[tuple[TlsVersion, CipherSuite]]:
    """(version, suite) for every accepted suite the registry knows."""
    found = []
    unknown: dict[str, None] = {}
    for support in endpoint.protocols:
        if not support.supported:
            continue
        for name in support.suites:
            known = suites.BY_NAME.get(name)
            if known is None or known.signaling:
                unknown[name] = None
            else:
                found.append((support.version, known))
    if unknown:
        warnings.append(f"suites posture does not know were not graded: {_listed(unknown)}")
    return found


def _cipher_strength_score(bits: int) -> int:
    if bits == 0:
        return 0
    if bits < 128:
        return 20
    return 80 if bits < 256 else 100


def key_strength_score(rsa_equivalent_bits: int) -> int:
    """The guide's key-exchange score for a key or group of this RSA-equivalent size."""
    for limit, points in ((512, 20), (1024, 40), (2048, 80), (4096, 90)):
        if rsa_equivalent_bits < limit:
            return points
    return 100


def ec_rsa_equivalent(bits: int) -> int:
    """RSA modulus of the same strength as an elliptic curve of this size (NIST SP 800-57
    part 1, table 2): P-256 and X25519 ~ 3072, P-384 ~ 7680."""
    for limit, rsa in ((160, 512), (224, 1024), (256, 2048), (384, 3072), (512, 7680)):
        if bits < limit:
            return rsa
    return 15360


_ML_KEM_RSA_EQUIVALENT = {512: 3072, 768: 7680, 1024: 15360}  # NIST categories 1, 3, 5


def group_rsa_equivalent(group: KeyExchangeGroup) -> int | None:
    """RSA-equivalent size of a key-exchange group; None when its size is not known."""
    known = suites.group(group.name)
    kind = known.kind if known is not None else ("ff" if group.name.startswith("ffdhe") else "ec")
    if group.bits <= 0:
        return None
    if kind == "ff":
        return group.bits
    if kind == "pq":
        return _ML_KEM_RSA_EQUIVALENT.get(group.bits, 3072)
    return ec_rsa_equivalent(group.bits)  # ec, and hybrids by their classical half


def certificate_rsa_equivalent(chain: ChainFacts) -> int:
    if chain.key_type == "ecdsa":
        return ec_rsa_equivalent(chain.key_bits)
    if chain.key_type == "ed25519":
        return ec_rsa_equivalent(256)
    if chain.key_type == "ed448":
        return ec_rsa_equivalent(448)
    return chain.key_bits  # rsa, dsa


_CERT_AUTH = frozenset({"RSA", "DSS", "ECDSA", "any"})
_DH_EPHEMERAL = frozenset({"DHE", "DHE_PSK"})
_ECDH_EPHEMERAL = frozenset({"ECDHE", "ECDHE_PSK"})


def _key_exchange_score(
    endpoint: TlsEndpoint, accepted: Sequence[tuple[TlsVersion, CipherSuite]], warnings: list[str]
) -> int | None:
    """The weakest of the certificate key and every key-exchange parameter the accepted suites
    use (the guide rates the weakest key exchange; authentication is part of it)."""
    scores: list[int] = []
    legacy = [s for v, s in accepted if v is not TlsVersion.TLS13]
    if any(s.anonymous for _, s in accepted):
        scores.append(0)
    if any(s.export for _, s in accepted):
        scores.append(_EXPORT_KEY_SCORE)
    if any(s.auth in _CERT_AUTH or s.protocol == "sslv2" for _, s in accepted):
        if endpoint.chain is None:
            warnings.append(
                "the certificate could not be read: its key, trust and name are not graded"
            )
        else:
            scores.append(key_strength_score(certificate_rsa_equivalent(endpoint.chain)))
    if any(_uses_dh_params(s) for s in legacy):
        if endpoint.dh_bits is None:
            warnings.append("DHE suites are accepted but the DH parameter size is not known")
        else:
            scores.append(key_strength_score(endpoint.dh_bits))
    if any(_uses_ecdh_params(s) for s in legacy):
        scores += _group_scores(endpoint, TlsVersion.TLS12, "ECDHE", warnings)
    if any(v is TlsVersion.TLS13 for v, _ in accepted):
        scores += _group_scores(endpoint, TlsVersion.TLS13, "TLSv1.3", warnings)
    return min(scores) if scores else None


def _uses_dh_params(suite: CipherSuite) -> bool:
    return suite.kex in _DH_EPHEMERAL or (suite.kex == "DH" and suite.anonymous)


def _uses_ecdh_params(suite: CipherSuite) -> bool:
    return suite.kex in _ECDH_EPHEMERAL or (suite.kex == "ECDH" and suite.anonymous)


def _groups_for(endpoint: TlsEndpoint, version: TlsVersion) -> list[KeyExchangeGroup]:
    # A group seen with no version recorded is taken to apply to every version.
    return [g for g in endpoint.groups if not g.versions or version in g.versions]


def _group_scores(
    endpoint: TlsEndpoint, version: TlsVersion, what: str, warnings: list[str]
) -> list[int]:
    groups = _groups_for(endpoint, version)
    if not groups:
        warnings.append(f"{what} is accepted but its key-exchange groups are not known")
        return []
    scores = []
    for group in groups:
        strength = group_rsa_equivalent(group)
        if strength is None:
            warnings.append(f"group {group.name} is of unknown strength and was not graded")
        else:
            scores.append(key_strength_score(strength))
    return scores


def band(score: int) -> str:
    """The letter of a score before any cap."""
    return next((letter for floor, letter in _BANDS if score >= floor), "F")


def _worst(letters: Iterable[str]) -> str:
    return max(letters, key=LETTERS.index)


def _long_hsts(endpoint: TlsEndpoint) -> bool:
    hsts = endpoint.hsts
    return hsts is not None and hsts.present and (hsts.max_age or 0) >= LONG_HSTS


# --- caps --------------------------------------------------------------------------------


def _protocol_caps(endpoint: TlsEndpoint) -> list[Cap]:
    versions = set(endpoint.supported_versions)
    newest = max(versions, key=lambda v: v.rank)
    caps = []
    if TlsVersion.SSL2 in versions:
        caps.append(Cap("F", "SSLv2 is supported (DROWN; broken since 1996)"))
    if newest is TlsVersion.SSL3:
        caps.append(Cap("F", "SSLv3 is the newest protocol supported"))
    elif TlsVersion.SSL3 in versions:
        caps.append(Cap("C", "SSLv3 is supported (POODLE)"))
    if not versions & {TlsVersion.TLS12, TlsVersion.TLS13}:
        caps.append(Cap("C", "TLSv1.2 is not supported (nor TLSv1.3)"))
    old = [v.value for v in (TlsVersion.TLS10, TlsVersion.TLS11) if v in versions]
    if old:
        verb = "is" if len(old) == 1 else "are"
        caps.append(Cap("B", f"{' and '.join(old)} {verb} supported (deprecated by RFC 8996)"))
    return caps


def _suite_caps(accepted: Sequence[tuple[TlsVersion, CipherSuite]]) -> list[Cap]:
    caps = []
    names = {
        "export": [s.name for _, s in accepted if s.export],
        "anonymous": [s.name for _, s in accepted if s.anonymous],
        "null": [s.name for _, s in accepted if s.null_cipher],
        "modern_rc4": [s.name for v, s in accepted if s.rc4 and v.rank >= TlsVersion.TLS11.rank],
        "modern_3des": [s.name for v, s in accepted if s.des3 and v.rank >= TlsVersion.TLS11.rank],
        "rc4": [s.name for _, s in accepted if s.rc4],
    }
    if names["export"]:
        caps.append(Cap("F", f"EXPORT suites are accepted: {_listed(names['export'])}"))
    if names["anonymous"]:
        caps.append(
            Cap(
                "F",
                f"anonymous (unauthenticated) suites are accepted: {_listed(names['anonymous'])}",
            )
        )
    if names["null"]:
        caps.append(Cap("F", f"NULL suites (no encryption) are accepted: {_listed(names['null'])}"))
    if names["modern_rc4"]:
        caps.append(
            Cap("C", f"RC4 is accepted on TLSv1.1 or newer: {_listed(names['modern_rc4'])}")
        )
    if names["modern_3des"]:
        caps.append(
            Cap("C", f"3DES is accepted on TLSv1.1 or newer: {_listed(names['modern_3des'])}")
        )
    if names["rc4"]:
        caps.append(Cap("B", f"RC4 is accepted: {_listed(names['rc4'])}"))
    if not any(s.pfs for _, s in accepted):
        caps.append(
            Cap("B", "no forward secrecy: no accepted suite uses an ephemeral key exchange")
        )
    if not any(s.aead for _, s in accepted):
        caps.append(Cap("B", "no AEAD suite (GCM, CCM, ChaCha20-Poly1305) is accepted"))
    return caps


def _key_caps(
    endpoint: TlsEndpoint, accepted: Sequence[tuple[TlsVersion, CipherSuite]]
) -> list[Cap]:
    caps = []
    chain = endpoint.chain
    if chain is not None:
        strength = certificate_rsa_equivalent(chain)
        what = f"the certificate key is {chain.key_type.upper()} {chain.key_bits} bits"
        if strength < 1024:
            caps.append(Cap("F", f"{what}, under 1024-bit RSA strength"))
        elif strength < 2048:
            caps.append(Cap("B", f"{what}, under 2048-bit RSA strength"))
    legacy = [s for v, s in accepted if v is not TlsVersion.TLS13]
    if endpoint.dh_bits is not None and any(_uses_dh_params(s) for s in legacy):
        if endpoint.dh_bits < 1024:
            caps.append(Cap("F", f"DHE uses {endpoint.dh_bits}-bit DH parameters, under 1024"))
        elif endpoint.dh_bits < 2048:
            caps.append(Cap("B", f"DHE uses {endpoint.dh_bits}-bit DH parameters, under 2048"))
    weak = [
        g.name
        for g in endpoint.groups
        if (group_strength := group_rsa_equivalent(g)) is not None and group_strength < 2048
    ]
    if weak:
        caps.append(
            Cap(
                "B",
                f"key-exchange groups under 2048-bit RSA strength are accepted: {_listed(weak)}",
            )
        )
    return caps


def _extra_caps(endpoint: TlsEndpoint) -> list[Cap]:
    """Vulnerabilities, compression and the certificate's trust and name."""
    caps = []
    if endpoint.heartbleed:
        caps.append(Cap("F", "vulnerable to Heartbleed (CVE-2014-0160)"))
    if endpoint.secure_renegotiation is False:
        caps.append(
            Cap("F", "insecure renegotiation: secure renegotiation (RFC 5746) is not supported")
        )
    if endpoint.compression:
        caps.append(Cap("B", "TLS compression is enabled (CRIME)"))
    chain = endpoint.chain
    if chain is None:
        return caps
    if chain.weak_signature == "md5":
        caps.append(Cap("F", "a certificate in the chain is signed with MD5"))
    if chain.incomplete:
        caps.append(Cap("B", "the certificate chain is incomplete (an intermediate is missing)"))
    if chain.self_signed:
        caps.append(Cap(TRUST_LETTER, "the certificate is self-signed"))
    elif not chain.trusted:
        why = f": {chain.trust_error}" if chain.trust_error else ""
        caps.append(Cap(TRUST_LETTER, f"the certificate is not trusted{why}"))
    if chain.expired:
        caps.append(Cap(TRUST_LETTER, f"the certificate expired {-chain.days_left} day(s) ago"))
    if chain.not_yet_valid:
        caps.append(Cap(TRUST_LETTER, "the certificate is not yet valid"))
    if chain.weak_signature == "sha1":
        caps.append(Cap(TRUST_LETTER, "a certificate in the chain is signed with SHA-1"))
    if chain.hostname_matches is False:
        caps.append(
            Cap(MISMATCH_LETTER, f"the certificate does not match the name {chain.hostname}")
        )
    return caps


def _unknown_fact_warnings(endpoint: TlsEndpoint, warnings: list[str]) -> None:
    for support in endpoint.protocols:
        if support.supported is None:
            why = f": {support.error}" if support.error else ""
            warnings.append(f"{support.version.value} could not be tested{why}")
    facts = (
        ("secure_renegotiation", "secure renegotiation"),
        ("compression", "TLS compression"),
        ("heartbleed", "Heartbleed"),
    )
    for attribute, what in facts:
        if getattr(endpoint, attribute) is None:
            warnings.append(f"{what} could not be tested")
    downgradable = [v for v in endpoint.supported_versions if v is not TlsVersion.SSL2]
    if len(downgradable) > 1:
        if endpoint.fallback_scsv is None:
            warnings.append("TLS_FALLBACK_SCSV (downgrade protection) could not be tested")
        elif not endpoint.fallback_scsv:
            warnings.append("TLS_FALLBACK_SCSV is not supported: no downgrade protection")
    chain = endpoint.chain
    if chain is not None and chain.hostname_matches is None:
        warnings.append("no host name was known to check the certificate against")


def _listed(names: Iterable[str]) -> str:
    unique = list(dict.fromkeys(names))
    shown = ", ".join(unique[:_LISTED])
    more = len(unique) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown
