"""The byte encoding of version sort keys: memcmp order is sort_key order, for every ecosystem,
over the hard pairs of test_versions, real release chains and generated strings."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from scanner.vulndb.keys import ABOVE_ALL, BELOW_ALL, encode, encode_value, just_after
from scanner.vulndb.versions import Ecosystem, VersionError, sort_key
from tests.vulndb.test_versions import (
    APK_EQUAL,
    APK_LESS,
    DPKG_EQUAL,
    DPKG_LESS,
    RPM_EQUAL,
    RPM_LESS,
    SEMVER_EQUAL,
    SEMVER_LESS,
    UPSTREAM_EQUAL,
    UPSTREAM_LESS,
    VERSION_TEXT,
    _dpkg_versions,
)

PAIRS = {
    Ecosystem.DEBIAN: DPKG_LESS + DPKG_EQUAL,
    Ecosystem.UBUNTU: DPKG_LESS + DPKG_EQUAL,
    Ecosystem.RPM: RPM_LESS + RPM_EQUAL,
    Ecosystem.UPSTREAM: UPSTREAM_LESS + UPSTREAM_EQUAL,
    Ecosystem.ALPINE: APK_LESS + APK_EQUAL,
    Ecosystem.SEMVER: SEMVER_LESS + SEMVER_EQUAL,
}
ODD = ["1²", "١٢.٣", "~", "-", ":", "1:-", "::", "^", "_", "v", "1.0 beta", "ä", "9" * 256, "0"]
PEP440 = [
    "1.0.dev1",
    "1.0a1.dev1",
    "1.0a1",
    "1.0b2",
    "1.0rc1",
    "1.0",
    "1.0.0",
    "1",
    "1.0+local",
    "1.0+ubuntu.1",
    "1.0+ubuntu.1.2",
    "1.0+1",
    "1.0+01",
    "1.0+a.b",
    "1.0.post1.dev1",
    "1.0.post1",
    "1.0.post2",
    "1!0.1",
    "0",
    "0.0",
    "2.31.0",
    "10.0",
    "not a version",
]
CHAINS = [
    ["6.6p1", "6.7p1", "7.2p2", "7.3", "7.3p1", "7.4p1", "8.0p1", "9.3p2", "9.8p1"],
    ["0.9.8zh", "1.0.1", "1.0.1f", "1.0.1g", "1.0.2k", "1.0.2u", "1.1.0l", "1.1.1w", "3.0.13"],
    ["1.3.3c", "1.3.5", "1.3.5e", "1.3.6rc1", "1.3.6rc2", "1.3.6", "1.3.7a"],
]


def _agree(ecosystem: Ecosystem, a: str, b: str) -> None:
    try:
        key_a, key_b = sort_key(ecosystem, a), sort_key(ecosystem, b)
    except VersionError:
        return
    enc_a, enc_b = encode(ecosystem, a), encode(ecosystem, b)
    assert (enc_a < enc_b) == (key_a < key_b), (ecosystem, a, b)
    assert (enc_a == enc_b) == (key_a == key_b), (ecosystem, a, b)
    assert (enc_a > enc_b) == (key_a > key_b), (ecosystem, a, b)
    # No encoding is a proper prefix of another: what makes just_after() exact.
    if enc_a != enc_b:
        assert not enc_b.startswith(enc_a) and not enc_a.startswith(enc_b)
    assert BELOW_ALL < enc_a < ABOVE_ALL


@pytest.mark.parametrize("ecosystem", list(PAIRS))
def test_the_hard_pairs_of_each_ecosystem_keep_their_order(ecosystem: Ecosystem) -> None:
    words = sorted({v for pair in PAIRS[ecosystem] for v in pair} | set(ODD))
    for a, b in itertools.product(words, repeat=2):
        _agree(ecosystem, a, b)


@pytest.mark.parametrize("ecosystem", list(Ecosystem))
def test_every_ecosystem_on_every_hard_string(ecosystem: Ecosystem) -> None:
    """Each ordering on the other orderings' strings, where most fall outside its grammar."""
    words = sorted({v for pairs in PAIRS.values() for pair in pairs for v in pair})
    words += ODD + PEP440 + [v for chain in CHAINS for v in chain]
    for a, b in itertools.product(words, repeat=2):
        _agree(ecosystem, a, b)


def test_release_chains_sort_by_their_encodings() -> None:
    for chain in CHAINS:
        shuffled = random.Random(5).sample(chain, len(chain))
        assert sorted(shuffled, key=lambda v: encode(Ecosystem.UPSTREAM, v)) == chain


def test_pep440_through_packaging() -> None:
    valid = [v for v in PEP440 if v != "not a version"]
    ordered = sorted(valid, key=Version)
    assert sorted(valid, key=lambda v: encode(Ecosystem.PYPI, v)) == ordered
    assert encode(Ecosystem.PYPI, "1.0") == encode(Ecosystem.PYPI, "1.0.0")
    assert encode(Ecosystem.PYPI, "not a version") > encode(Ecosystem.PYPI, "99")


def test_dpkg_versions_of_the_dpkg_cross_check() -> None:
    versions = _dpkg_versions(random.Random(20261124), 200)
    for a, b in itertools.product(versions[:120], repeat=2):
        _agree(Ecosystem.DEBIAN, a, b)


def test_just_after_is_the_next_key() -> None:
    upstream = Ecosystem.UPSTREAM
    nine_eight = encode(upstream, "9.8")
    assert encode(upstream, "9.7p1") < nine_eight < just_after(nine_eight)
    assert just_after(nine_eight) <= encode(upstream, "9.8p1")
    assert encode(upstream, "9.8.0") < just_after(nine_eight)  # the same version


def test_integers_of_any_size_and_sign() -> None:
    numbers = [-(2**70), -256, -255, -2, -1, 0, 1, 2, 127, 128, 255, 256, 2**64, 10**200]
    encoded = [encode_value(n) for n in numbers]
    assert encoded == sorted(encoded) and len(set(encoded)) == len(encoded)
    with pytest.raises(TypeError):
        encode_value(1.5)
    with pytest.raises(TypeError):
        encode_value(True)


def test_strings_with_nul_and_prefixes() -> None:
    words = ["", "\x00", "\x00a", "a", "a\x00", "a\x00\x00", "ab", "b", "z", "é"]
    encoded = [encode_value((w, 1)) for w in words]
    assert encoded == sorted(encoded) and len(set(encoded)) == len(encoded)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(list(Ecosystem)), VERSION_TEXT, VERSION_TEXT)
def test_generated_versions_keep_their_order(ecosystem: Ecosystem, a: str, b: str) -> None:
    _agree(ecosystem, a, b)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Ecosystem)), st.text(max_size=40), st.text(max_size=40))
def test_any_text_keeps_its_order(ecosystem: Ecosystem, a: str, b: str) -> None:
    _agree(ecosystem, a, b)
