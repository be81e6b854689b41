"""demo.pki: the files it writes, the keys and validity windows of what it mints."""

from __future__ import annotations

import datetime as dt
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from demo import pki

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return pki.standard_set(tmp_path_factory.mktemp("pki"))


def certs_in(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_standard_set_names(files: dict[str, tuple[Path, Path]]) -> None:
    assert set(files) == {*pki.STANDARD_SCENARIOS, "ca", "intermediate"}
    assert files["ca"][0].name == "ca.pem"


def test_key_files_are_private(files: dict[str, tuple[Path, Path]]) -> None:
    for cert_file, key_file in files.values():
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        # Each key file holds the key of its certificate.
        assert key.public_key() == certs_in(cert_file)[0].public_key()


def test_chain_file_order(files: dict[str, tuple[Path, Path]]) -> None:
    good = certs_in(files["good"][0])
    assert files["good"][0].name == "good-chain.pem"
    assert [cn(c) for c in good] == ["lab.test", "posture test intermediate"]
    good[0].verify_directly_issued_by(good[1])
    root = certs_in(files["ca"][0])
    assert len(root) == 1
    good[1].verify_directly_issued_by(root[0])
    # The leaf alone is written too, next to the chain file.
    assert certs_in(files["good"][0].with_name("good.pem")) == good[:1]


def test_incomplete_and_self_signed_files_hold_one_certificate(
    files: dict[str, tuple[Path, Path]],
) -> None:
    incomplete = certs_in(files["incomplete-chain"][0])
    assert len(incomplete) == 1 and cn(incomplete[0]) == "lab.test"
    assert incomplete[0].issuer.rfc4514_string() == "CN=posture test intermediate,O=posture lab"
    self_signed = certs_in(files["self-signed"][0])
    assert len(self_signed) == 1 and self_signed[0].issuer == self_signed[0].subject
    self_signed[0].verify_directly_issued_by(self_signed[0])


def test_ca_extensions(files: dict[str, tuple[Path, Path]]) -> None:
    for name in ("ca", "intermediate"):
        cert = certs_in(files[name][0])[0]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_leaf_extensions(files: dict[str, tuple[Path, Path]]) -> None:
    leaf = certs_in(files["good"][0])[0]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tuple(san.get_values_for_type(x509.DNSName)) == pki.LAB_NAMES
    wrong = certs_in(files["wrong-name"][0])[0]
    assert cn(wrong) == "wrong.example.org"


def test_key_types(files: dict[str, tuple[Path, Path]]) -> None:
    good = certs_in(files["good"][0])[0].public_key()
    assert isinstance(good, rsa.RSAPublicKey) and good.key_size == 2048
    ec_key = certs_in(files["good-ec"][0])[0].public_key()
    assert isinstance(ec_key, ec.EllipticCurvePublicKey) and ec_key.curve.name == "secp256r1"
    small = certs_in(files["rsa1024"][0])[0].public_key()
    assert isinstance(small, rsa.RSAPublicKey) and small.key_size == 1024


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("rsa4096", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 4096),
        ("ec384", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.key_size == 384),
        ("ed25519", lambda k: isinstance(k, ed25519.Ed25519PublicKey)),
    ],
)
def test_other_key_kinds(kind: str, check: Callable[[object], bool]) -> None:
    leaf = pki.make_leaf(None, ("k.test",), key=kind)
    assert check(leaf.cert.public_key())


def test_unknown_key_or_hash_is_refused() -> None:
    with pytest.raises(pki.PkiError, match="unknown key type"):
        pki.make_leaf(None, key="rsa512")
    with pytest.raises(pki.PkiError, match="unknown hash"):
        pki.make_leaf(None, hash="sha3")
    with pytest.raises(pki.PkiError, match="RSA issuer"):
        pki.make_leaf(None, key="ec256", hash="sha1")


def test_legacy_signatures(files: dict[str, tuple[Path, Path]]) -> None:
    for name, oid_name in (("sha1-signed", "sha1"), ("md5-signed", "md5")):
        leaf, inter = certs_in(files[name][0])
        assert leaf.signature_algorithm_oid._name == f"{oid_name}WithRSAEncryption"
        assert leaf.signature_hash_algorithm is not None
        assert leaf.signature_hash_algorithm.name == oid_name
        # The signature is genuine: the intermediate's key made it over the rewritten TBS.
        inter_key = inter.public_key()
        assert isinstance(inter_key, rsa.RSAPublicKey)
        inter_key.verify(
            leaf.signature,
            leaf.tbs_certificate_bytes,
            padding.PKCS1v15(),
            leaf.signature_hash_algorithm,
        )


def test_validity_windows(files: dict[str, tuple[Path, Path]]) -> None:
    now = dt.datetime.now(dt.UTC)

    def window(name: str) -> tuple[dt.timedelta, dt.timedelta]:
        cert = certs_in(files[name][0])[0]
        return cert.not_valid_before_utc - now, cert.not_valid_after_utc - now

    start, end = window("good")
    assert -2 * DAY < start < dt.timedelta(0) and 363 * DAY < end < 366 * DAY
    start, end = window("expired")
    assert end < dt.timedelta(0)
    start, end = window("not-yet-valid")
    assert start > 9 * DAY
    start, end = window("expiring-soon")
    assert 10 * DAY <= end < 11 * DAY and start < dt.timedelta(0)


def test_write_without_chain_and_keys_are_cached(tmp_path: Path) -> None:
    root = pki.make_ca("write test root", key="ec256")
    leaf = pki.make_leaf(root, ("w.test",))
    cert_file, key_file = leaf.write(tmp_path / "sub", "w")
    assert (cert_file.name, key_file.name) == ("w.pem", "w.key")
    assert not (tmp_path / "sub" / "w-chain.pem").exists()
    assert leaf.chain == ()  # a root is never sent
    again = pki.make_leaf(root, ("other.test",))
    assert again.cert.public_key() == leaf.cert.public_key()  # one cached key per kind
    assert pki.make_ca("another root", key="ec256").cert.public_key() != root.cert.public_key()


def test_minting_is_fast(tmp_path: Path) -> None:
    pki.standard_pki()  # warm the key cache
    start = time.perf_counter()
    pki.standard_set(tmp_path)
    assert time.perf_counter() - start < 1.0
