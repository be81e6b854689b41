"""A throwaway PKI for the tests, the TLS lab and the benchmark: a root, an intermediate and
leaves with every flaw posture reports (expired, SHA-1, RSA-1024, wrong name, missing chain...).

Keys are cached per (key type, role) for the life of the process, because RSA generation costs
50-1000 ms and a test session mints dozens of certificates: two leaves minted with the same key
type share one key. Never use any of this outside a lab.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["rsa1024", "rsa2048", "rsa4096", "ec256", "ec384", "ed25519"]
HashName = Literal["sha256", "sha384", "sha512", "sha1", "md5"]

KEY_KINDS: tuple[str, ...] = ("rsa1024", "rsa2048", "rsa4096", "ec256", "ec384", "ed25519")
HASHES: tuple[str, ...] = ("sha256", "sha384", "sha512", "sha1", "md5")

# cryptography (50.x) refuses to sign certificates with SHA-1 or MD5, but the key itself still
# signs with them. A legacy certificate is therefore minted with SHA-256, then its two
# AlgorithmIdentifiers (inside the TBSCertificate and after it) are swapped for the legacy OID of
# the same length, and the TBS is signed again: an RSA signature has the modulus' length, so no
# DER length changes. Only RSA issuers can do this.
_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_LEGACY_RSA_ALGORITHMS = {
    "sha1": (bytes.fromhex("300d06092a864886f70d0101050500"), hashes.SHA1()),  # noqa: S303 (weak on purpose)
    "md5": (bytes.fromhex("300d06092a864886f70d0101040500"), hashes.MD5()),  # noqa: S303 (weak on purpose)
}
_MODERN_HASHES: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}

_KEYS: dict[tuple[str, str], CertificateIssuerPrivateKeyTypes] = {}
_KEYS_LOCK = threading.Lock()


class PkiError(ValueError):
    """A certificate that this helper cannot mint (unknown key type, MD5 with an EC issuer...)."""


def generate_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    """A fresh private key of `kind` (one of KEY_KINDS); not cached."""
    if kind.startswith("rsa") and kind[3:] in ("1024", "2048", "4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PkiError(f"unknown key type {kind!r}: use one of {', '.join(KEY_KINDS)}")


def cached_key(kind: str, role: str = "leaf") -> CertificateIssuerPrivateKeyTypes:
    """The process-wide key for (kind, role): CAs pass their name as role so that two CAs
    never share a key (path building would otherwise confuse them)."""
    with _KEYS_LOCK:
        key = _KEYS.get((kind, role))
        if key is None:
            key = _KEYS[(kind, role)] = generate_key(kind)
        return key


@dataclass(frozen=True)
class KeyPair:
    """A private key and what it is (`kind` is one of KEY_KINDS)."""

    private_key: CertificateIssuerPrivateKeyTypes
    kind: str

    @classmethod
    def cached(cls, kind: str, role: str = "leaf") -> KeyPair:
        return cls(cached_key(kind, role), kind)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class Issued:
    """A certificate, its key, and the intermediates a server must send after it (leaf-side
    first; never the root)."""

    cert: x509.Certificate
    key: KeyPair
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self.key.private_key

    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def chain_der(self) -> tuple[bytes, ...]:
        """What a well-configured server sends: this certificate, then its intermediates."""
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in (self.cert, *self.chain))

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        """This certificate followed by its intermediates (a server's full-chain file)."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain)
        )

    def key_pem(self) -> bytes:
        return self.key.key_pem()

    def write(self, directory: Path, stem: str, *, full_chain: bool = False) -> tuple[Path, Path]:
        """Write `stem.pem` (this certificate alone) and `stem.key` (mode 0600); with
        `full_chain`, also `stem-chain.pem` (leaf then intermediates), whose path is then the
        first of the pair returned, since that is the file a server should be given."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem())
        # Created 0600 from the start rather than chmod-ed after, so the key is never readable.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.key_pem())
        os.chmod(key_path, 0o600)
        if not full_chain:
            return cert_path, key_path
        chain_path = directory / f"{stem}-chain.pem"
        chain_path.write_bytes(self.chain_pem())
        return chain_path, key_path


def _name(common_name: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "posture lab")]
    # X.520 caps a CN at 64 characters: a longer name lives in the SAN alone.
    if len(common_name) <= 64:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _sign(
    builder: x509.CertificateBuilder, issuer_key: CertificateIssuerPrivateKeyTypes, hash: str
) -> x509.Certificate:
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return builder.sign(issuer_key, None)
    if hash in _MODERN_HASHES:
        return builder.sign(issuer_key, _MODERN_HASHES[hash])
    if hash not in _LEGACY_RSA_ALGORITHMS:
        raise PkiError(f"unknown hash {hash!r}: use one of {', '.join(HASHES)}")
    if not isinstance(issuer_key, rsa.RSAPrivateKey):
        raise PkiError(f"{hash} signatures are only minted with RSA issuer keys")
    modern = builder.sign(issuer_key, hashes.SHA256())
    legacy_oid, legacy_hash = _LEGACY_RSA_ALGORITHMS[hash]
    tbs = modern.tbs_certificate_bytes
    if tbs.count(_SHA256_WITH_RSA) != 1:
        raise PkiError("cannot locate the signature algorithm in the TBSCertificate")
    new_tbs = tbs.replace(_SHA256_WITH_RSA, legacy_oid)
    signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), legacy_hash)
    der = modern.public_bytes(serialization.Encoding.DER)
    # Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }: the outer
    # header is unchanged, the TBS and algorithm are replaced in place, the signature is the tail.
    start = der.index(tbs)
    after_tbs = der[start + len(tbs) :]
    if not after_tbs.startswith(_SHA256_WITH_RSA) or not after_tbs.endswith(modern.signature):
        raise PkiError("unexpected certificate layout while re-signing")
    bitstring_header = after_tbs[len(_SHA256_WITH_RSA) : len(after_tbs) - len(modern.signature)]
    if len(signature) != len(modern.signature):
        raise PkiError("the legacy signature does not have the modulus' length")
    rebuilt = der[:start] + new_tbs + legacy_oid + bitstring_header + signature
    return x509.load_der_x509_certificate(rebuilt)


def _validity(
    not_before: dt.datetime | None, not_after: dt.datetime | None, default_days: int
) -> tuple[dt.datetime, dt.datetime]:
    now = _now()
    start = not_before if not_before is not None else now - dt.timedelta(days=1)
    end = not_after if not_after is not None else now + dt.timedelta(days=default_days)
    return start, end


def _ca_extensions(
    builder: x509.CertificateBuilder,
    public_key: CertificateIssuerPublicKeyTypes,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    path_length: int | None,
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )


def make_ca(
    name: str = "posture test root",
    key: str = "rsa2048",
    *,
    hash: str = "sha256",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A self-signed root CA (CA=True, keyCertSign), valid ten years by default. Its key is
    cached per (key type, name): two roots with different names have different keys."""
    pair = KeyPair.cached(key, f"ca:{name}")
    start, end = _validity(not_before, not_after, 3650)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(pair.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    builder = _ca_extensions(builder, pair.private_key.public_key(), pair.private_key, None)
    return Issued(_sign(builder, pair.private_key, hash), pair)


def make_intermediate(
    ca: Issued,
    name: str = "posture test intermediate",
    key: str = "rsa2048",
    *,
    hash: str = "sha256",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """An intermediate CA (path length 0) issued by `ca`; its chain is `ca`'s chain plus
    itself, minus the root."""
    pair = KeyPair.cached(key, f"ca:{name}")
    start, end = _validity(not_before, not_after, 1825)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.cert.subject)
        .public_key(pair.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    builder = _ca_extensions(builder, pair.private_key.public_key(), ca.private_key, 0)
    cert = _sign(builder, ca.private_key, hash)
    return Issued(cert, pair, _intermediates_of(ca))


def _intermediates_of(issuer: Issued) -> tuple[x509.Certificate, ...]:
    """What a server must send above a certificate that `issuer` signs: the issuer and its own
    intermediates, but never a self-signed root."""
    if issuer.cert.issuer == issuer.cert.subject:
        return issuer.chain
    return (issuer.cert, *issuer.chain)


def make_leaf(
    issuer: Issued | None,
    names: Sequence[str] = ("localhost",),
    *,
    ips: Sequence[str] = (),
    key: str = "rsa2048",
    hash: str = "sha256",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    self_signed: bool = False,
) -> Issued:
    """A TLS server certificate: SAN with `names` and `ips` (always present), CN = the first
    name (when it fits X.520's 64 characters), EKU serverAuth, CA=False; valid from a day ago
    for a year unless told. Self-signed when `issuer` is None or `self_signed` is set.
    `hash` sha1/md5 needs an RSA signer."""
    if not names and not ips:
        raise PkiError("a leaf needs at least one name or address")
    pair = KeyPair.cached(key, "leaf")
    start, end = _validity(not_before, not_after, 365)
    subject = _name(names[0] if names else ips[0])
    parent = None if self_signed else issuer
    signer = pair if parent is None else parent.key
    issuer_name = subject if parent is None else parent.cert.subject
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    public_key = pair.private_key.public_key()
    rsa_key = isinstance(pair.private_key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=rsa_key,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(alt_names), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.private_key.public_key()),
            False,
        )
    )
    cert = _sign(builder, signer.private_key, hash)
    chain = () if parent is None else _intermediates_of(parent)
    return Issued(cert, pair, chain)


LAB_NAMES = ("lab.test", "mail.lab.test", "localhost")

STANDARD_SCENARIOS = (
    "good",
    "good-ec",
    "expired",
    "not-yet-valid",
    "expiring-soon",
    "self-signed",
    "rsa1024",
    "sha1-signed",
    "md5-signed",
    "wrong-name",
    "incomplete-chain",
)


@dataclass(frozen=True)
class StandardPki:
    """The objects behind standard_set's files, for tests that want DER rather than paths."""

    root: Issued
    intermediate: Issued
    leaves: dict[str, Issued]


def standard_pki(now: dt.datetime | None = None) -> StandardPki:
    """Root → intermediate → one leaf per scenario of STANDARD_SCENARIOS, for LAB_NAMES.
    Every leaf but self-signed is issued by the intermediate; expiring-soon has ten days
    (and an hour, so that whole days left is 10) to go."""
    now = now or _now()
    day = dt.timedelta(days=1)
    root = make_ca("posture test root")
    inter = make_intermediate(root, "posture test intermediate")
    leaves = {
        "good": make_leaf(inter, LAB_NAMES),
        "good-ec": make_leaf(inter, LAB_NAMES, key="ec256"),
        "expired": make_leaf(inter, LAB_NAMES, not_before=now - 90 * day, not_after=now - day),
        "not-yet-valid": make_leaf(
            inter, LAB_NAMES, not_before=now + 10 * day, not_after=now + 375 * day
        ),
        "expiring-soon": make_leaf(
            inter,
            LAB_NAMES,
            not_before=now - 80 * day,
            not_after=now + 10 * day + dt.timedelta(hours=1),
        ),
        "self-signed": make_leaf(None, LAB_NAMES),
        "rsa1024": make_leaf(inter, LAB_NAMES, key="rsa1024"),
        "sha1-signed": make_leaf(inter, LAB_NAMES, hash="sha1"),
        "md5-signed": make_leaf(inter, LAB_NAMES, hash="md5"),
        "wrong-name": make_leaf(inter, ("wrong.example.org",)),
        "incomplete-chain": make_leaf(inter, LAB_NAMES),
    }
    return StandardPki(root, inter, leaves)


def standard_set(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Write every scenario as (certificate file, key file) into `directory`: the certificate
    file holds the leaf and the intermediate (`<name>-chain.pem`), except for self-signed and
    incomplete-chain (leaf only). Also "ca" → (ca.pem, ca.key), the root for --ca-file, and
    "intermediate" → (intermediate.pem, intermediate.key)."""
    directory = Path(directory)
    pki = standard_pki()
    files = {
        "ca": pki.root.write(directory, "ca"),
        "intermediate": pki.intermediate.write(directory, "intermediate"),
    }
    for name, leaf in pki.leaves.items():
        files[name] = leaf.write(directory, name, full_chain=name != "incomplete-chain")
    return files


__all__ = [
    "HASHES",
    "KEY_KINDS",
    "LAB_NAMES",
    "STANDARD_SCENARIOS",
    "Issued",
    "KeyPair",
    "PkiError",
    "StandardPki",
    "cached_key",
    "generate_key",
    "make_ca",
    "make_intermediate",
    "make_leaf",
    "standard_pki",
    "standard_set",
]
