"""scanner.probes.certs: certificate and chain facts for every scenario of demo.pki, trust
stores, hostile DER and RFC 6125 name matching."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from demo import pki
from scanner.errors import ConfigError
from scanner.probes import certs
from scanner.probes.certs import CertificateError, TrustStore, chain_facts, match_hostname
from scanner.probes.tls.model import ChainFacts

DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def lab() -> pki.StandardPki:
    return pki.standard_pki()


@pytest.fixture(scope="module")
def trust(lab: pki.StandardPki, tmp_path_factory: pytest.TempPathFactory) -> TrustStore:
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca_file.write_bytes(lab.root.cert_pem())
    return TrustStore.from_file(ca_file)


def facts(
    lab: pki.StandardPki, name: str, trust: TrustStore, hostname: str | None = "lab.test"
) -> ChainFacts:
    leaf = lab.leaves[name]
    return chain_facts(leaf.chain_der(), hostname=hostname, trust=trust)


# --- every scenario ----------------------------------------------------------------------------


def test_good_chain(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "good", trust)
    assert chain.trusted and chain.trust_error is None
    assert chain.hostname == "lab.test" and chain.hostname_matches is True
    assert not chain.expired and not chain.not_yet_valid and not chain.expiring_soon
    assert 362 <= chain.days_left <= 364
    assert not chain.self_signed and not chain.incomplete and chain.weak_signature is None
    assert (chain.key_type, chain.key_bits) == ("rsa", 2048)
    assert [c.subject for c in chain.certificates] == [
        "CN=lab.test,O=posture lab",
        "CN=posture test intermediate,O=posture lab",
    ]
    assert chain.leaf is chain.certificates[0]


def test_good_ec_chain(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "good-ec", trust)
    assert chain.trusted and chain.hostname_matches
    assert (chain.key_type, chain.key_bits, chain.leaf.curve) == ("ecdsa", 256, "secp256r1")
    # The intermediate (RSA) signs the EC leaf.
    assert chain.leaf.signature_algorithm == "sha256WithRSAEncryption"


def test_expired_is_a_fact_not_a_trust_error(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "expired", trust)
    assert chain.expired and chain.days_left < 0 and not chain.expiring_soon
    assert chain.trusted and chain.trust_error is None


def test_not_yet_valid(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "not-yet-valid", trust)
    assert chain.not_yet_valid and not chain.expired and chain.trusted


def test_expiring_soon_within_window(lab: pki.StandardPki, trust: TrustStore) -> None:
    leaf = lab.leaves["expiring-soon"].chain_der()
    chain = chain_facts(leaf, hostname="lab.test", trust=trust, warn_days=30)
    assert chain.days_left == 10 and chain.expiring_soon and not chain.expired
    narrow = chain_facts(leaf, hostname="lab.test", trust=trust, warn_days=7)
    assert not narrow.expiring_soon


def test_self_signed(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "self-signed", trust)
    assert chain.self_signed and chain.leaf.self_signed
    assert not chain.trusted and chain.trust_error == "self-signed certificate"
    assert not chain.incomplete
    assert chain.hostname_matches


def test_self_signed_leaf_trusted_when_pinned(lab: pki.StandardPki, tmp_path: Path) -> None:
    pinned = tmp_path / "pinned.pem"
    pinned.write_bytes(lab.leaves["self-signed"].cert_pem())
    chain = facts(lab, "self-signed", TrustStore.from_file(pinned))
    assert chain.trusted and chain.self_signed


def test_rsa1024_reported_but_trusted(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "rsa1024", trust)
    assert (chain.key_type, chain.key_bits) == ("rsa", 1024)
    assert chain.trusted  # the web-PKI verifier rejects it; the path still exists


@pytest.mark.parametrize(
    ("name", "weak", "algorithm"),
    [
        ("sha1-signed", "sha1", "sha1WithRSAEncryption"),
        ("md5-signed", "md5", "md5WithRSAEncryption"),
    ],
)
def test_weak_signatures(
    lab: pki.StandardPki, trust: TrustStore, name: str, weak: str, algorithm: str
) -> None:
    chain = facts(lab, name, trust)
    assert chain.weak_signature == weak
    assert chain.leaf.signature_algorithm == algorithm and chain.leaf.signature_hash == weak
    assert chain.trusted and chain.trust_error is None


def test_weak_signature_on_self_signed_root_does_not_count(tmp_path: Path) -> None:
    root = pki.make_ca("sha1 root", hash="sha1")
    leaf = pki.make_leaf(root, ("lab.test",))
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(root.cert_pem())
    sent = (*leaf.chain_der(), root.der())  # some servers send the root too
    chain = chain_facts(sent, hostname="lab.test", trust=TrustStore.from_file(ca_file))
    assert chain.certificates[-1].signature_hash == "sha1"
    assert chain.weak_signature is None and chain.trusted


def test_wrong_name(lab: pki.StandardPki, trust: TrustStore) -> None:
    chain = facts(lab, "wrong-name", trust)
    assert chain.hostname_matches is False and chain.trusted
    assert chain.leaf.dns_names == ("wrong.example.org",)


def test_incomplete_chain(lab: pki.StandardPki, trust: TrustStore) -> None:
    only_leaf = (lab.leaves["incomplete-chain"].der(),)
    chain = chain_facts(only_leaf, hostname="lab.test", trust=trust)
    assert chain.incomplete and not chain.trusted
    assert chain.trust_error == (
        "issuer 'CN=posture test intermediate,O=posture lab' not sent by the server and not in "
        "the trust store (incomplete chain)"
    )
    assert not chain.self_signed


def test_chain_to_an_untrusted_root(lab: pki.StandardPki, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pki.make_ca("some other root").cert_pem())
    chain = facts(lab, "good", TrustStore.from_file(other))
    assert not chain.trusted and not chain.incomplete
    assert chain.trust_error == (
        "chain ends at 'CN=posture test intermediate,O=posture lab', issued by "
        "'CN=posture test root,O=posture lab' which is not a trusted root"
    )


def test_sent_root_not_in_store(lab: pki.StandardPki, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pki.make_ca("some other root").cert_pem())
    sent = (*lab.leaves["good"].chain_der(), lab.root.der())
    chain = chain_facts(sent, hostname="lab.test", trust=TrustStore.from_file(other))
    assert not chain.trusted
    assert chain.trust_error == (
        "chain ends at 'CN=posture test root,O=posture lab' which is not a trusted root"
    )


def test_impostor_issuer_is_not_trusted(lab: pki.StandardPki, trust: TrustStore) -> None:
    # Same name as the real intermediate, different key: the names chain, the signature not.
    impostor = pki.make_intermediate(lab.root, "posture test intermediate", key="ec256")
    sent = (lab.leaves["good"].der(), impostor.der())
    chain = chain_facts(sent, hostname="lab.test", trust=trust)
    assert not chain.trusted and not chain.incomplete
    assert chain.trust_error is not None and "did not sign" in chain.trust_error


def test_non_ca_issuer_is_not_trusted(lab: pki.StandardPki, trust: TrustStore) -> None:
    # A leaf (CA=False) used to issue another certificate.
    fake_ca = lab.leaves["good"]
    child = pki.make_leaf(fake_ca, ("victim.test",), key="ec384")
    chain = chain_facts(child.chain_der(), hostname="victim.test", trust=trust)
    assert child.chain_der()[1] == fake_ca.der()
    assert not chain.trusted and chain.trust_error is not None
    assert "is not a CA" in chain.trust_error


def test_ip_target_and_no_hostname(lab: pki.StandardPki, trust: TrustStore) -> None:
    leaf = pki.make_leaf(lab.intermediate, (), ips=("127.0.83.7", "::1"))
    assert leaf.cert.subject.rfc4514_string().startswith("CN=127.0.83.7")
    by_ip = chain_facts(leaf.chain_der(), hostname="127.0.83.7", trust=trust)
    assert by_ip.hostname_matches and by_ip.trusted
    assert by_ip.leaf.ip_addresses == ("127.0.83.7", "::1") and by_ip.leaf.dns_names == ()
    unnamed = chain_facts(leaf.chain_der(), hostname=None, trust=trust)
    assert unnamed.hostname is None and unnamed.hostname_matches is None


def test_now_is_taken_from_the_caller(lab: pki.StandardPki, trust: TrustStore) -> None:
    leaf = lab.leaves["good"]
    later = leaf.cert.not_valid_after_utc + dt.timedelta(days=3)
    chain = chain_facts(leaf.chain_der(), hostname="lab.test", trust=trust, now=later)
    assert chain.expired and chain.days_left == -3
    naive = chain_facts(
        leaf.chain_der(), hostname="lab.test", trust=trust, now=later.replace(tzinfo=None)
    )
    assert naive.days_left == -3


# --- certificate facts -------------------------------------------------------------------------


def test_certificate_facts_fields(lab: pki.StandardPki) -> None:
    cert = lab.leaves["good"].cert
    facts_ = certs.certificate_facts(cert.public_bytes(Encoding.DER))
    assert facts_.subject == "CN=lab.test,O=posture lab"
    assert facts_.issuer == "CN=posture test intermediate,O=posture lab"
    assert facts_.serial == f"{cert.serial_number:x}"
    assert facts_.not_before == cert.not_valid_before_utc and facts_.not_before.tzinfo is not None
    assert facts_.not_after == cert.not_valid_after_utc
    assert facts_.dns_names == pki.LAB_NAMES and facts_.ip_addresses == ()
    assert facts_.common_name == "lab.test"
    assert (facts_.key_type, facts_.key_bits, facts_.curve) == ("rsa", 2048, None)
    assert (facts_.signature_algorithm, facts_.signature_hash) == (
        "sha256WithRSAEncryption",
        "sha256",
    )
    assert not facts_.self_signed and not facts_.is_ca
    assert facts_.sha256 == cert.fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ec384", ("ecdsa", 384, "secp384r1", "ecdsa-with-SHA384")),
        ("ed25519", ("ed25519", 256, None, "ED25519")),
        ("rsa4096", ("rsa", 4096, None, "sha256WithRSAEncryption")),
    ],
)
def test_self_signed_key_types(key: str, expected: tuple[object, ...]) -> None:
    hash_ = "sha384" if key == "ec384" else "sha256"
    leaf = pki.make_leaf(None, ("k.test",), key=key, hash=hash_)
    facts_ = certs.certificate_facts(leaf.der())
    assert (facts_.key_type, facts_.key_bits, facts_.curve, facts_.signature_algorithm) == expected
    assert facts_.self_signed
    assert facts_.signature_hash == (None if key == "ed25519" else hash_)


def test_ca_facts(lab: pki.StandardPki) -> None:
    root = certs.certificate_facts(lab.root.der())
    assert root.is_ca and root.self_signed
    inter = certs.certificate_facts(lab.intermediate.der())
    assert inter.is_ca and not inter.self_signed


def test_same_name_but_not_self_signed(lab: pki.StandardPki) -> None:
    # issuer == subject is not enough: the signature must verify with the certificate's own key.
    leaf = pki.make_leaf(lab.intermediate, ("posture test intermediate",))
    facts_ = certs.certificate_facts(leaf.der())
    assert facts_.subject == "CN=posture test intermediate,O=posture lab"
    assert facts_.subject == facts_.issuer and not facts_.self_signed


# --- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "der",
    [b"", b"\x30\x00", b"not a certificate", b"\x30\x82\xff\xff" + b"\x00" * 100, b"\xff" * 5000],
)
def test_hostile_der_is_a_typed_error(der: bytes, trust: TrustStore) -> None:
    with pytest.raises(CertificateError, match=r"not a DER X\.509 certificate"):
        certs.certificate_facts(der)
    with pytest.raises(CertificateError):
        chain_facts([der], hostname="lab.test", trust=trust)


def test_truncated_and_oversized(lab: pki.StandardPki, trust: TrustStore) -> None:
    der = lab.leaves["good"].der()
    with pytest.raises(CertificateError, match="certificate 2 of 2"):
        chain_facts([der, der[:-10]], hostname="lab.test", trust=trust)
    with pytest.raises(CertificateError, match="over the"):
        certs.certificate_facts(b"\x30" * (certs.MAX_CERT_BYTES + 1))
    with pytest.raises(CertificateError, match="no certificate"):
        chain_facts([], hostname="lab.test", trust=trust)


def test_long_chain_is_bounded(lab: pki.StandardPki, trust: TrustStore) -> None:
    good = lab.leaves["good"].chain_der()
    sent = list(good) + [lab.intermediate.der()] * 50
    chain = chain_facts(sent, hostname="lab.test", trust=trust)
    assert len(chain.certificates) == certs.MAX_CHAIN and chain.trusted


def test_long_strings_are_clipped(lab: pki.StandardPki) -> None:
    long_name = ("a" * 60 + ".") * 40 + "test"  # 2444 characters, more than 1024
    leaf = pki.make_leaf(lab.intermediate, (long_name,))
    facts_ = certs.certificate_facts(leaf.der())
    assert len(facts_.dns_names[0]) < 1100 and facts_.dns_names[0].startswith("a" * 60)
    assert facts_.common_name is None  # too long for a CN, so pki leaves it out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_otherwise(data: bytes) -> None:
    with contextlib.suppress(CertificateError):
        certs.certificate_facts(data)


_FUZZ_LAB = pki.standard_pki()
_FUZZ_TRUST = TrustStore([_FUZZ_LAB.root.cert], "fuzz root")
_FUZZ_SEEDS = (
    _FUZZ_LAB.leaves["good"].der(),
    _FUZZ_LAB.leaves["sha1-signed"].der(),
    pki.make_leaf(None, ("fuzz.test",), ips=("10.0.0.1",), key="ed25519").der(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_FUZZ_SEEDS),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_flipped_bytes_never_crash_otherwise(seed: bytes, flips: list[tuple[int, int]]) -> None:
    der = bytearray(seed)
    for position, value in flips:
        der[position % len(der)] = value
    sent = [bytes(der), _FUZZ_LAB.intermediate.der()]
    with contextlib.suppress(CertificateError):
        chain = chain_facts(sent, hostname="lab.test", trust=_FUZZ_TRUST)
        assert chain.trusted in (True, False) and len(chain.certificates) == 2


# --- trust stores ------------------------------------------------------------------------------


@pytest.mark.skipif(not DEBIAN_BUNDLE.is_file(), reason=f"no Debian CA bundle at {DEBIAN_BUNDLE}")
def test_system_store_loads_and_is_cached() -> None:
    system = TrustStore.system()
    assert len(system) > 50
    assert TrustStore.system() is system
    assert all(isinstance(root, x509.Certificate) for root in system.roots)


@pytest.mark.skipif(not DEBIAN_BUNDLE.is_file(), reason=f"no Debian CA bundle at {DEBIAN_BUNDLE}")
def test_lab_chain_is_untrusted_by_the_system(lab: pki.StandardPki) -> None:
    start = time.perf_counter()
    chain = facts(lab, "good", TrustStore.system())
    elapsed = time.perf_counter() - start
    assert not chain.trusted and not chain.incomplete
    assert elapsed < 1.0


def test_ca_file_is_cached_until_it_changes(lab: pki.StandardPki, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(lab.root.cert_pem())
    first = TrustStore.from_file(ca_file)
    assert TrustStore.from_file(str(ca_file)) is first and len(first) == 1
    ca_file.write_bytes(lab.root.cert_pem() + lab.intermediate.cert_pem())
    os.utime(ca_file, ns=(1, 1))
    assert len(TrustStore.from_file(ca_file)) == 2


@pytest.mark.skipif(not DEBIAN_BUNDLE.is_file(), reason=f"no Debian CA bundle at {DEBIAN_BUNDLE}")
def test_ca_file_with_system(lab: pki.StandardPki, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(lab.root.cert_pem())
    both = TrustStore.from_file(ca_file, with_system=True)
    assert len(both) == len(TrustStore.system()) + 1
    assert facts(lab, "good", both).trusted


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no PEM certificate"),
        (b"hello\n", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
    ],
)
def test_bad_ca_file_is_a_config_error(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        TrustStore.from_file(bad)
    assert str(bad) in str(caught.value)


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        TrustStore.from_file(tmp_path / "absent.pem")


# --- RFC 6125 name matching --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "pattern", "matches"),
    [
        ("a.example.com", "*.example.com", True),
        ("A.Example.COM.", "*.example.com", True),
        ("a.b.example.com", "*.example.com", False),
        ("example.com", "*.example.com", False),
        (".example.com", "*.example.com", False),
        ("example.com", "*.com", False),
        ("com", "*", False),
        ("xn--bcher-kva.example.com", "xn--*.example.com", False),
        ("foo.example.com", "f*.example.com", False),
        ("a.example.com", "a.*.com", False),
        ("www.example.com", "www.example.com", True),
        ("www.example.com", "WWW.EXAMPLE.COM", True),
        ("www.example.com", "example.com", False),
        ("bücher.example.com", "xn--bcher-kva.example.com", True),
        ("bücher.example.com", "*.example.com", True),
        ("a..example.com", "*..example.com", False),
    ],
)
def test_dns_matching(hostname: str, pattern: str, matches: bool) -> None:
    assert match_hostname(hostname, [pattern], []) is matches


@pytest.mark.parametrize(
    ("hostname", "dns", "ips", "matches"),
    [
        ("10.0.0.1", ["10.0.0.1"], [], False),  # an address is never matched against dNSName
        ("10.0.0.1", [], ["10.0.0.1"], True),
        ("10.0.0.1", [], ["10.0.0.2"], False),
        ("::1", [], ["0:0::1"], True),
        ("[::1]", [], ["::1"], True),
        ("lab.test", [], ["10.0.0.1"], False),
        ("lab.test", [], [], False),  # no SAN: the CN is ignored, as browsers do
    ],
)
def test_address_matching(hostname: str, dns: list[str], ips: list[str], matches: bool) -> None:
    assert match_hostname(hostname, dns, ips) is matches


def test_cn_is_ignored_without_san(lab: pki.StandardPki, trust: TrustStore) -> None:
    issuer = lab.intermediate
    now = dt.datetime.now(dt.UTC)
    no_san = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "lab.test")]))
        .issuer_name(issuer.cert.subject)
        .public_key(pki.cached_key("ec256").public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(issuer.private_key, hashes.SHA256())
    )
    sent = (no_san.public_bytes(Encoding.DER), issuer.der())
    chain = chain_facts(sent, hostname="lab.test", trust=trust)
    assert chain.leaf.common_name == "lab.test" and chain.leaf.dns_names == ()
    assert chain.hostname_matches is False
    assert chain.trusted  # found by posture's own path building: the web-PKI needs a SAN
