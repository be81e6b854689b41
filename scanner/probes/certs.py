"""Facts about the certificate chain a TLS server sent: each certificate's fields, and whether
the chain reaches a trust anchor, matches the name, is in date, complete and strongly signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import os
import ssl
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from scanner.errors import ConfigError
from scanner.probes.tls.model import CertificateFacts, ChainFacts
from scanner.safetext import clip

MAX_CHAIN = 10  # certificates of a chain considered; a real chain has 2-4
MAX_CERT_BYTES = 64 * 1024  # DER size of one certificate; real ones are 1-3 KiB
MAX_TEXT = 1024  # characters kept of any string taken from a certificate
MAX_NAMES = 1000  # SAN entries kept
MAX_TRUST_FILE = 16 * 1024 * 1024

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"

# OpenSSL's short names for signature algorithms, and the hash each one uses.
_SIGNATURE_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.2": ("md2WithRSAEncryption", "md2"),
    "1.2.840.113549.1.1.3": ("md4WithRSAEncryption", "md4"),
    "1.2.840.113549.1.1.4": ("md5WithRSAEncryption", "md5"),
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", "sha1"),
    "1.2.840.113549.1.1.10": ("RSASSA-PSS", None),  # the hash is in the parameters
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", "sha256"),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", "sha384"),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", "sha512"),
    "1.2.840.113549.1.1.14": ("sha224WithRSAEncryption", "sha224"),
    "1.2.840.10045.4.1": ("ecdsa-with-SHA1", "sha1"),
    "1.2.840.10045.4.3.1": ("ecdsa-with-SHA224", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", "sha512"),
    "1.2.840.10040.4.3": ("dsaWithSHA1", "sha1"),
    "2.16.840.1.101.3.4.3.1": ("dsa_with_SHA224", "sha224"),
    "2.16.840.1.101.3.4.3.2": ("dsa_with_SHA256", "sha256"),
    "1.3.101.112": ("ED25519", None),
    "1.3.101.113": ("ED448", None),
}
WEAK_HASHES = ("md2", "md4", "md5", "sha1")  # worst first

# cryptography refuses to verify these, yet servers still send them: checked by hand so that a
# SHA-1 chain is reported as trusted-but-weak rather than as broken.
_LEGACY_HASHES: dict[str, hashes.HashAlgorithm] = {
    "md5": hashes.MD5(),  # noqa: S303 (verifying what the server sent)
    "sha1": hashes.SHA1(),  # noqa: S303
}


# What cryptography raises for bytes it cannot read (several are not ValueErrors).
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


class CertificateError(ValueError):
    """The server sent certificate bytes that cannot be read as a certificate chain."""


@dataclass(frozen=True)
class _Cert:
    """A parsed certificate with its facts, as one chain_facts call works on it."""

    cert: x509.Certificate
    facts: CertificateFacts


def _text(value: str) -> str:
    return clip(value, MAX_TEXT)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _key_facts(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "unknown", 0, None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 448, None
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, None
    return "unknown", 0, None


def _signature_algorithm(cert: x509.Certificate) -> tuple[str, str | None]:
    oid = cert.signature_algorithm_oid.dotted_string
    name, digest = _SIGNATURE_ALGORITHMS.get(oid, (oid, None))
    if digest is None and not name.startswith("ED"):
        try:
            algorithm = cert.signature_hash_algorithm
        except UnsupportedAlgorithm:
            algorithm = None
        digest = algorithm.name if algorithm is not None else None
    return name, digest


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key made `cert`'s signature (and the names chain)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass  # an algorithm cryptography will not verify: try the legacy ones by hand
    digest = _SIGNATURE_ALGORITHMS.get(cert.signature_algorithm_oid.dotted_string, ("", None))[1]
    algorithm = _LEGACY_HASHES.get(digest or "")
    if algorithm is None:
        return False
    try:
        key = issuer.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _subject_alt_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = san.get_values_for_type(x509.DNSName)[:MAX_NAMES]
    ips = san.get_values_for_type(x509.IPAddress)[:MAX_NAMES]
    return tuple(_text(name) for name in dns), tuple(str(ip) for ip in ips)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _parse(der: bytes, position: str = "the certificate") -> _Cert:
    if not isinstance(der, bytes | bytearray | memoryview):
        raise CertificateError(f"{position} is not bytes")
    if len(der) > MAX_CERT_BYTES:
        raise CertificateError(f"{position} is {len(der)} bytes, over the {MAX_CERT_BYTES} limit")
    try:
        with warnings.catch_warnings():
            # A non-positive serial is a fact to report, not something to print mid-scan.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(bytes(der))
            # Extensions and names are parsed lazily: a malformed SAN fails only here.
            facts = _facts(cert, bytes(der))
    except _PARSE_ERRORS as exc:
        raise CertificateError(
            f"{position} is not a DER X.509 certificate: {_text(str(exc))}"
        ) from exc
    return _Cert(cert, facts)


def _facts(cert: x509.Certificate, der: bytes) -> CertificateFacts:
    key_type, key_bits, curve = _key_facts(cert)
    algorithm, digest = _signature_algorithm(cert)
    dns_names, ip_addresses = _subject_alt_names(cert)
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = common_names[0].value if common_names else None
    if isinstance(common_name, bytes):
        common_name = common_name.decode("latin-1")
    return CertificateFacts(
        subject=_text(cert.subject.rfc4514_string()),
        issuer=_text(cert.issuer.rfc4514_string()),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        common_name=_text(common_name) if common_name is not None else None,
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=_text(algorithm),
        signature_hash=digest,
        self_signed=_signed_by(cert, cert),
        is_ca=_is_ca(cert),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def certificate_facts(der: bytes) -> CertificateFacts:
    """The facts of one DER certificate; CertificateError when it does not parse."""
    return _parse(der).facts


class TrustStore:
    """Trust anchors: the system bundle, a --ca-file PEM bundle, or both. Loaded once per
    file (and re-read when the file changes), then shared by every chain_facts call."""

    _cache: ClassVar[dict[tuple[object, ...], TrustStore]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, roots: Iterable[x509.Certificate], source: str) -> None:
        self.roots: tuple[x509.Certificate, ...] = tuple(roots)
        self.source = source
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for root in self.roots:
            self._by_subject.setdefault(root.subject, []).append(root)
        self._fingerprints = {root.fingerprint(hashes.SHA256()) for root in self.roots}
        self._store: verification.Store | None = None

    def __len__(self) -> int:
        return len(self.roots)

    def __repr__(self) -> str:
        return f"TrustStore({len(self.roots)} roots from {self.source})"

    @property
    def store(self) -> verification.Store:
        """The roots as cryptography's verification Store, built on first use."""
        if self._store is None:
            self._store = verification.Store(list(self.roots))
        return self._store

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Anchors whose key signed `cert`."""
        return [root for root in self._by_subject.get(cert.issuer, []) if _signed_by(cert, root)]

    def named(self, name: x509.Name) -> list[x509.Certificate]:
        return list(self._by_subject.get(name, []))

    def contains(self, cert: x509.Certificate) -> bool:
        """The certificate itself is an anchor (same bytes, or same subject and key)."""
        if cert.fingerprint(hashes.SHA256()) in self._fingerprints:
            return True
        try:
            key = cert.public_key()
        except (UnsupportedAlgorithm, ValueError):
            return False
        return any(root.public_key() == key for root in self._by_subject.get(cert.subject, []))

    @classmethod
    def system(cls) -> TrustStore:
        """The operating system's roots (SSL_CERT_FILE, OpenSSL's default, or a known bundle)."""
        paths = cls.system_bundle_paths()
        bundle = next((path for path in paths if path.is_file()), None)
        if bundle is not None:
            return cls._cached(("system", *cls._stamp(bundle)), lambda: cls._load(bundle, True))
        raise ConfigError(
            f"no system trust store found (looked for {', '.join(map(str, paths))}); "
            "install ca-certificates or pass --ca-file"
        )

    @staticmethod
    def system_bundle_paths() -> list[Path]:
        defaults = ssl.get_default_verify_paths()
        candidates = [
            os.environ.get(defaults.openssl_cafile_env),
            defaults.cafile,
            defaults.openssl_cafile,
            *SYSTEM_BUNDLES,
        ]
        unique: dict[Path, None] = {Path(c): None for c in candidates if c}
        return list(unique)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, with_system: bool = False) -> TrustStore:
        """Roots from a PEM bundle (--ca-file), plus the system's when `with_system`; a file
        that cannot be read or holds no certificate is a ConfigError naming it."""
        file = Path(path)
        try:
            stamp = cls._stamp(file)
        except OSError as exc:
            raise ConfigError(f"--ca-file {file}: cannot read it: {exc.strerror}") from exc
        store = cls._cached(("file", *stamp), lambda: cls._load(file, False))
        if not with_system:
            return store
        system = cls.system()
        return TrustStore((*store.roots, *system.roots), f"{store.source} and {system.source}")

    @staticmethod
    def _stamp(path: Path) -> tuple[str, int, int]:
        info = path.resolve().stat()
        return str(path.resolve()), info.st_mtime_ns, info.st_size

    @classmethod
    def _cached(cls, key: tuple[object, ...], load: Callable[[], TrustStore]) -> TrustStore:
        with cls._lock:
            store = cls._cache.get(key)
            if store is None:
                store = cls._cache[key] = load()
            return store

    @classmethod
    def _load(cls, path: Path, system: bool) -> TrustStore:
        label = f"system trust store {path}" if system else f"--ca-file {path}"
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_TRUST_FILE + 1)
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read it: {exc.strerror}") from exc
        if len(data) > MAX_TRUST_FILE:
            raise ConfigError(f"{label}: larger than {MAX_TRUST_FILE // (1024 * 1024)} MiB")
        roots: list[x509.Certificate] = []
        for number, block in enumerate(_pem_blocks(data), 1):
            try:
                with warnings.catch_warnings():
                    # Some long-lived roots have negative serials; they are still roots.
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    roots.append(x509.load_pem_x509_certificate(block))
            except ValueError as exc:
                if system:
                    continue  # one odd root in the OS bundle must not stop every scan
                raise ConfigError(f"{label}: certificate {number} does not parse: {exc}") from exc
        if not roots:
            raise ConfigError(f"{label}: no PEM certificate in it")
        return cls(roots, str(path))


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks = []
    start = data.find(_PEM_BEGIN)
    while start != -1:
        end = data.find(_PEM_END, start)
        if end == -1:
            blocks.append(data[start:])  # truncated: let the parser say so
            break
        blocks.append(data[start : end + len(_PEM_END)])
        start = data.find(_PEM_BEGIN, end)
    return blocks


def _normalise_host(hostname: str) -> str | None:
    host = hostname.strip().rstrip(".").lower()
    if not host:
        return None
    if host.isascii():
        return host
    try:
        # IDNA 2003 (the standard library's codec): enough to compare with SAN A-labels.
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _dns_matches(pattern: str, host: str) -> bool:
    pattern = pattern.strip().rstrip(".").lower()
    if not pattern.isascii() or not pattern:
        return False
    if "*" not in pattern:
        return pattern == host
    labels = pattern.split(".")
    host_labels = host.split(".")
    # One wildcard, the whole left-most label, over at least two more labels (no "*.com"):
    # what browsers accept of RFC 6125 section 6.4.3; partial ones like "xn--*" never match.
    if labels[0] != "*" or any("*" in label for label in labels[1:]) or len(labels) < 3:
        return False
    if len(host_labels) != len(labels) or not host_labels[0]:
        return False
    return host_labels[1:] == labels[1:]


def match_hostname(hostname: str, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> bool:
    """RFC 6125 matching of a name or address against the SAN entries. The subject CN is never
    consulted, as browsers stopped doing in 2017: a certificate without SAN matches nothing."""
    address = _ip(hostname)
    if address is not None:
        return any(_ip(entry) == address for entry in ip_addresses)
    host = _normalise_host(hostname)
    if host is None or any(not label for label in host.split(".")):
        return False
    return any(_dns_matches(pattern, host) for pattern in dns_names)


def _verifier_name(leaf: CertificateFacts) -> x509.DNSName | x509.IPAddress | None:
    """A name the leaf is valid for, so that cryptography's verifier judges the path alone."""
    for name in leaf.dns_names:
        try:
            return x509.DNSName(name.replace("*", "x", 1) if name.startswith("*.") else name)
        except ValueError:
            continue
    for address in leaf.ip_addresses:
        ip = _ip(address)
        if ip is not None:
            return x509.IPAddress(ip)
    return None


def _webpki_path(chain: Sequence[_Cert], trust: TrustStore, now: dt.datetime) -> bool:
    """Whether cryptography's web-PKI verifier builds a path, at a moment inside the leaf's
    validity and for a name the leaf has: only the path and its policy can make it fail."""
    leaf = chain[0].facts
    name = _verifier_name(leaf)
    if name is None:
        return False
    moment = min(max(now, leaf.not_before), leaf.not_after)
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(trust.store)
            .time(moment)
            .max_chain_depth(MAX_CHAIN)
            .build_server_verifier(name)
        )
        verifier.verify(chain[0].cert, [c.cert for c in chain[1:]])
    except Exception:  # any refusal means: build the path ourselves, and say why
        return False
    return True


def _quote(name: x509.Name) -> str:
    return f"'{_text(name.rfc4514_string())}'"


def _build_path(chain: Sequence[_Cert], trust: TrustStore) -> tuple[bool, str | None, bool]:
    """Path building of our own, by issuer name and signature, ignoring dates, names, key
    sizes and digests: (trusted, why not, the server left out a needed issuer)."""
    current = chain[0]
    used = {0}
    for _ in range(MAX_CHAIN + 1):
        if trust.contains(current.cert) or trust.issuers_of(current.cert):
            return True, None, False
        if current.facts.self_signed:
            if current is chain[0]:
                return False, "self-signed certificate", False
            return (
                False,
                f"chain ends at {_quote(current.cert.subject)} which is not a trusted root",
                False,
            )
        named = [
            (i, c)
            for i, c in enumerate(chain)
            if i not in used and c.cert.subject == current.cert.issuer
        ]
        signers = [(i, c) for i, c in named if _signed_by(current.cert, c.cert)]
        if not signers:
            issuer = _quote(current.cert.issuer)
            if named:
                return (
                    False,
                    f"the certificate named {issuer} that the server sent did not sign "
                    f"{_quote(current.cert.subject)}",
                    False,
                )
            if trust.named(current.cert.issuer):
                return (
                    False,
                    f"{_quote(current.cert.subject)} is not signed by the trusted root {issuer}",
                    False,
                )
            if current is not chain[0]:
                # The server sent intermediates and the top one's issuer is unknown: most
                # likely a root this store does not trust (roots are not sent).
                return (
                    False,
                    f"chain ends at {_quote(current.cert.subject)}, issued by {issuer} which is "
                    "not a trusted root",
                    False,
                )
            return (
                False,
                f"issuer {issuer} not sent by the server and not in the trust store "
                "(incomplete chain)",
                True,
            )
        index, parent = signers[0]
        if not parent.facts.is_ca:
            return (
                False,
                f"{_quote(parent.cert.subject)} signed a certificate but is not a CA",
                False,
            )
        used.add(index)
        current = parent
    return False, f"no trust anchor within {MAX_CHAIN} certificates", False


def chain_facts(
    chain: Sequence[bytes],
    *,
    hostname: str | None,
    trust: TrustStore,
    now: dt.datetime | None = None,
    warn_days: int = 30,
) -> ChainFacts:
    """Facts about `chain` (DER, leaf first, as sent; only the first MAX_CHAIN are read).

    `trusted` means a path to an anchor of `trust` exists: cryptography's web-PKI verifier is
    asked first; when its policy rejects the chain (SHA-1, RSA-1024, dates...) posture builds the
    path itself by name and signature, because those flaws are reported as facts of their own
    (weak_signature, key_bits, expired) rather than hidden behind "untrusted".
    """
    if not chain:
        raise CertificateError("the server sent no certificate")
    considered = list(chain[:MAX_CHAIN])
    total = len(chain)
    parsed = [
        _parse(der, f"certificate {i} of {total}" if total > 1 else "the certificate")
        for i, der in enumerate(considered, 1)
    ]
    moment = _utc(now) if now is not None else dt.datetime.now(dt.UTC)
    leaf = parsed[0].facts
    if _webpki_path(parsed, trust, moment):
        trusted, trust_error, incomplete = True, None, False
    else:
        trusted, trust_error, incomplete = _build_path(parsed, trust)
    left = leaf.not_after - moment
    expired = moment > leaf.not_after
    return ChainFacts(
        certificates=tuple(c.facts for c in parsed),
        trusted=trusted,
        trust_error=_text(trust_error) if trust_error else None,
        hostname=hostname,
        hostname_matches=(
            None
            if hostname is None
            else match_hostname(hostname, leaf.dns_names, leaf.ip_addresses)
        ),
        expired=expired,
        not_yet_valid=moment < leaf.not_before,
        days_left=math.floor(left.total_seconds() / 86400),
        expiring_soon=not expired and left <= dt.timedelta(days=warn_days),
        self_signed=leaf.self_signed,
        incomplete=incomplete,
        weak_signature=_weak_signature(parsed),
        key_type=leaf.key_type,
        key_bits=leaf.key_bits,
    )


def _weak_signature(chain: Sequence[_Cert]) -> str | None:
    """The worst weak digest among the signatures that matter: a self-signed certificate above
    the leaf is an anchor, whose own signature no client checks."""
    digests = {
        c.facts.signature_hash for i, c in enumerate(chain) if i == 0 or not c.facts.self_signed
    }
    return next((weak for weak in WEAK_HASHES if weak in digests), None)


__all__ = [
    "MAX_CHAIN",
    "CertificateError",
    "TrustStore",
    "certificate_facts",
    "chain_facts",
    "match_hostname",
]
