"""Version ordering per ecosystem, cross-checked against dpkg (and rpm) where installed, and OSV
range evaluation as the OSV schema specifies it."""

from __future__ import annotations

import importlib
import itertools
import random
import shutil
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.vulndb.versions import (
    Ecosystem,
    RangeEvent,
    VersionError,
    affected,
    compare,
    first_fixed,
    sort_key,
)

DPKG_LESS = [
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"),
    ("1.0~~a", "1.0~"),
    ("0.9~", "0.9"),
    ("2.0", "1:0.9"),
    ("1.0-1", "1.0-1ubuntu1"),
    ("1.0-1", "1.0+dfsg-1"),
    ("2.4.38-3+deb10u8", "2.4.38-3+deb10u10"),
    ("1:7.2p2-4ubuntu2.8", "1:7.2p2-4ubuntu2.10"),
    ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"),
    ("1.0a", "1.0b"),
    ("1.0", "1.0a"),
    ("1.0", "1.0.1"),
    ("1.0", "1.0+b1"),
    ("1.0.0", "1.0.0a"),
    ("1.0a", "1.0+"),  # letters sort before non-letters
    ("1.0a", "1.0."),
    ("1.2.3", "1.2.10"),
    ("9", "10"),
    ("1.0-9", "1.0-10"),
    ("3.0.11-1~deb12u2", "3.0.11-1"),
    ("5:6.0.16-1+deb11u1", "5:6.0.16-1+deb11u2"),
    ("1.0~beta", "1.0~rc"),
    ("0:1.0", "1:0.1"),
    ("1:99", "2:0"),
    ("1.0-0ubuntu1", "1.0-1"),
    ("2.2.0-1ubuntu0.1", "2.2.0-1ubuntu0.2"),
    ("7.4p1-10+deb9u7", "7.9p1-10+deb10u2"),
    ("1.2-3", "1.2.0-1"),
    ("A", "a"),
    ("1.18.0-6ubuntu14.3", "1.18.0-6ubuntu14.4"),
    ("10.3.38-0+deb10u1", "10.3.39-0+deb10u1"),
    ("1.1.1n-0+deb11u4", "1.1.1n-0+deb11u5"),
    ("2.4.41-4ubuntu3.14", "2.4.41-4ubuntu3.15"),
    ("1.0-1~bpo11+1", "1.0-1"),
    ("1.0-a-1", "1.0-b-1"),  # the revision is after the last hyphen
]
DPKG_EQUAL = [
    ("1.0", "1.0-0"),
    ("1.0", "0:1.0"),
    ("1.01", "1.1"),
    ("1.0-00", "1.0-0"),
    ("1.0.", "1.0.0"),  # dpkg agrees: a trailing 0 after a separator adds nothing
    ("1:2.0-1", "01:2.0-1"),
]

RPM_LESS = [
    ("1.0~rc1", "1.0"),
    ("1.0", "1.0^git1"),
    ("1.0^", "1.0.1"),
    ("1.0^git1", "1.0.1"),
    ("1.0^git1", "1.0^git2"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~rc1^git1", "1.0~rc2"),
    ("2.0a", "2.0.1"),
    ("2.0.1a", "2.0.1.1"),  # a numeric segment beats an alphabetic one
    ("2.0", "2.0a"),
    ("a", "1"),
    ("1.0", "1.0.1"),
    ("8.0p1-19.el8_8", "8.0p1-19.el8_9"),
    ("8.0p1-19.el8_8", "8.0p1-20.el8"),
    ("1:1.1.1k-9.el8_7", "1:1.1.1k-12.el8_9"),
    ("1.1.1k-9.el8_7", "1:1.0.0-1"),
    ("2.4.6-97.el7", "2.4.6-98.el7"),
    ("2.4.6-97.el7.centos", "2.4.6-97.el7.centos.1"),
    ("10", "11"),
    ("1.01", "1.2"),
    ("el7", "el8"),
    ("el8", "el8_4"),
    ("1.0-1", "1.0-1.1"),
    ("FC5", "fc4"),  # letters compare by byte: upper case first
    ("6.0", "6.0.1"),
    ("1.0~", "1.0"),
    ("5.5p1", "5.5p10"),
    ("0.9.8", "0.9.8a"),
    ("1.0a", "1.0b"),
    ("1.0", "1.0.0^"),
    ("7.4p1-21.el7", "7.4p1-22.el7_9"),
    ("3.0.7-16.el9_2", "3.0.7-24.el9"),
    ("1.8.3-1", "1.8.10-1"),
    ("4.2", "4.2.0.1"),
    ("1.0", "1.0-1"),  # no release sorts before any release
]
RPM_EQUAL = [("1.0", "1_0"), ("1.01", "1.1"), ("1.0.", "1.0"), ("0:2.1", "2.1"), ("1+0", "1.0")]

UPSTREAM_LESS = [
    ("7.2p2", "7.3"),
    ("7.3", "7.3p1"),
    ("7.3p1", "7.4"),
    ("9.6", "9.6p1"),
    ("9.7p1", "9.8"),
    ("9.8", "9.8p1"),
    ("8.5", "8.5p1"),
    ("1.0.2k", "1.0.2l"),
    ("1.0.2z", "1.0.2za"),
    ("1.0.2k", "1.0.2zd"),
    ("1.1.1", "1.1.1a"),
    ("1.1.1w", "3.0.0"),
    ("3.0.9", "3.0.13"),
    ("1.3.6rc2", "1.3.6"),
    ("1.3.6rc1", "1.3.6rc2"),
    ("1.3.6beta", "1.3.6rc1"),
    ("1.3.6alpha", "1.3.6beta"),
    ("1.3.6.dev1", "1.3.6alpha1"),
    ("1.3.5", "1.3.5e"),
    ("1.3.5b", "1.3.5e"),
    ("1.3.5e", "1.3.6rc2"),
    ("1.3.5e", "1.3.6"),
    ("2.4.38", "2.4.49"),
    ("2.4.9", "2.4.10"),
    ("4.92", "4.92.3"),
    ("4.92.3", "4.94"),
    ("1.18.0", "1.20.1"),
    ("2019.78", "2022.83"),
    ("5.7.33", "5.7.33-0ubuntu0.18.04.1"),
    ("5.7.33-0ubuntu0.18.04.1", "5.7.34"),
    ("1.0.1f", "1.0.1g"),
    ("2.3.4", "3.0.3"),
    ("10.0", "10.1"),
    ("6.0.9", "6.0.10"),
    ("4.13.17", "4.14.0"),
    ("2.0-SNAPSHOT", "2.0"),
]
UPSTREAM_EQUAL = [
    ("7.2p2", "7.2P2"),
    ("2.4.38", "2.4.38"),
    ("1.0-rc1", "1.0rc1"),
    ("2.4", "2.4.0"),  # NVD bounds and banners disagree on trailing zeros
    ("2.0rc1", "2.0.0-rc1"),
    ("7.2_p2", "7.2p2"),
    ("1.0.0.Final", "1.0.0"),
]

APK_LESS = [
    ("1.2.4-r1", "1.2.4-r2"),
    ("9.6_p1-r0", "9.7_p1-r0"),
    ("1.0_rc1", "1.0"),
    ("1.0_alpha", "1.0_beta"),
    ("1.0_beta", "1.0_pre"),
    ("1.0_pre1", "1.0_rc1"),
    ("1.0_rc1", "1.0_rc2"),
    ("1.0_rc1-r9", "1.0-r0"),
    ("1.0", "1.0_cvs"),
    ("1.0_cvs", "1.0_svn"),
    ("1.0_svn", "1.0_git"),
    ("1.0_git20200101", "1.0_hg"),
    ("1.0_hg", "1.0_p1"),
    ("1.0", "1.0_p1"),
    ("1.0", "1.0a"),
    ("1.0a", "1.0b"),
    ("3.1.4-r5", "3.1.10-r0"),
    ("1.36.1-r15", "1.36.1-r16"),
    ("3.0.8-r0", "3.0.8-r1"),
    ("1.2", "1.2.1"),
]
APK_EQUAL = [("1.0", "1.0-r0"), ("1.2.3~abc123-r1", "1.2.3-r1")]

SEMVER_LESS = [
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0", "1.0.1"),
    ("1.9.0", "1.10.0"),
    ("v1.9.0", "1.10.0"),
    ("1.2", "1.2.1"),
    ("0.0.0-20210101000000-abcdef", "0.0.1"),  # a Go pseudo-version is a pre-release
    ("1.2.3", "1.2.3.4"),  # NuGet's fourth number
    ("1.2.3.4", "1.2.4"),
    ("1.0.0-rc.1+build.5", "1.0.0"),
]
SEMVER_EQUAL = [
    ("1.0.0+build.1", "1.0.0+build.2"),
    ("v1.2.3", "1.2.3"),
    ("1.2", "1.2.0"),
    ("1.2.3.0", "1.2.3"),
]


def _both_ways(ecosystem: Ecosystem, low: str, high: str) -> None:
    assert compare(ecosystem, low, high) == -1, (low, high)
    assert compare(ecosystem, high, low) == 1, (high, low)


@pytest.mark.parametrize(("low", "high"), DPKG_LESS)
def test_dpkg_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.DEBIAN, low, high)


@pytest.mark.parametrize(("a", "b"), DPKG_EQUAL)
def test_dpkg_equal(a: str, b: str) -> None:
    assert compare(Ecosystem.UBUNTU, a, b) == 0
    assert compare(Ecosystem.UBUNTU, b, a) == 0


@pytest.mark.parametrize(("low", "high"), RPM_LESS)
def test_rpm_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.RPM, low, high)


@pytest.mark.parametrize(("a", "b"), RPM_EQUAL)
def test_rpm_equal(a: str, b: str) -> None:
    assert compare(Ecosystem.RPM, a, b) == 0


@pytest.mark.parametrize(("low", "high"), UPSTREAM_LESS)
def test_upstream_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.UPSTREAM, low, high)


@pytest.mark.parametrize(("a", "b"), UPSTREAM_EQUAL)
def test_upstream_equal(a: str, b: str) -> None:
    assert compare(Ecosystem.UPSTREAM, a, b) == 0


@pytest.mark.parametrize(("low", "high"), APK_LESS)
def test_apk_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.ALPINE, low, high)


@pytest.mark.parametrize(("a", "b"), APK_EQUAL)
def test_apk_equal(a: str, b: str) -> None:
    assert compare(Ecosystem.ALPINE, a, b) == 0


@pytest.mark.parametrize(("low", "high"), SEMVER_LESS)
def test_semver_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.SEMVER, low, high)


@pytest.mark.parametrize(("a", "b"), SEMVER_EQUAL)
def test_semver_equal(a: str, b: str) -> None:
    assert compare(Ecosystem.SEMVER, a, b) == 0


def test_pypi_uses_pep440() -> None:
    pypi = Ecosystem.PYPI
    assert compare(pypi, "1.0rc1", "1.0") == -1
    assert compare(pypi, "1.0.dev1", "1.0a1") == -1
    assert compare(pypi, "1.0.post1", "1.0") == 1
    assert compare(pypi, "2.0", "10.0") == -1
    assert compare(pypi, "1.0", "1.0.0") == 0
    assert compare(pypi, "not a version", "99") == 1  # a defined place: after real ones


def test_non_grammar_strings_sort_after_real_versions() -> None:
    assert compare(Ecosystem.SEMVER, "x.y.z", "999.0.0") == 1
    assert compare(Ecosystem.ALPINE, "latest", "999.0-r0") == 1


def test_a_release_chain_sorts_as_released() -> None:
    """The OpenSSH and OpenSSL release histories, shuffled, sort back into release order."""
    openssh = ["6.6p1", "6.7p1", "7.2p2", "7.3", "7.3p1", "7.4p1", "8.0p1", "9.3p2", "9.8p1"]
    openssl = ["0.9.8zh", "1.0.1", "1.0.1f", "1.0.1g", "1.0.2k", "1.0.2u", "1.1.0l", "1.1.1w"]
    proftpd = ["1.3.3c", "1.3.5", "1.3.5e", "1.3.6rc1", "1.3.6rc2", "1.3.6", "1.3.7a"]
    for chain in (openssh, [*openssl, "3.0.2", "3.0.13"], proftpd):
        shuffled = random.Random(7).sample(chain, len(chain))
        assert sorted(shuffled, key=lambda v: sort_key(Ecosystem.UPSTREAM, v)) == chain


@pytest.mark.parametrize(
    ("text", "ecosystem"),
    [
        ("Debian", Ecosystem.DEBIAN),
        ("Debian:12", Ecosystem.DEBIAN),
        ("Ubuntu:22.04:LTS", Ecosystem.UBUNTU),
        ("Ubuntu:Pro:18.04:LTS", Ecosystem.UBUNTU),
        ("Alpine:v3.18", Ecosystem.ALPINE),
        ("Wolfi", Ecosystem.ALPINE),
        ("Red Hat", Ecosystem.RPM),
        ("Red Hat:rhel_aus:8.4::appstream", Ecosystem.RPM),
        ("Rocky Linux:9", Ecosystem.RPM),
        ("AlmaLinux:8", Ecosystem.RPM),
        ("SUSE:SLES:15", Ecosystem.RPM),
        ("openSUSE:Tumbleweed", Ecosystem.RPM),
        ("Photon OS:3.0", Ecosystem.RPM),
        ("PyPI", Ecosystem.PYPI),
        ("npm", Ecosystem.SEMVER),
        ("Go", Ecosystem.SEMVER),
        ("crates.io", Ecosystem.SEMVER),
        ("Root:Alpine:3.18", Ecosystem.ALPINE),
        ("Root:PyPI", Ecosystem.PYPI),
        ("OSS-Fuzz", Ecosystem.UPSTREAM),
        ("GIT", Ecosystem.UPSTREAM),
        ("Maven", Ecosystem.UPSTREAM),
        ("", Ecosystem.UPSTREAM),
        ("something new", Ecosystem.UPSTREAM),
    ],
)
def test_osv_ecosystem_names(text: str, ecosystem: Ecosystem) -> None:
    assert Ecosystem.parse(text) is ecosystem


# --- hostile strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "1.0\x00",
        "\x1b[31m1.0",
        "1.0\n",
        "1.0\t2",
        "1.0\x85",
        "1\u2028",
        "\ud800",
        "9" * 300,
    ],
)
@pytest.mark.parametrize("ecosystem", list(Ecosystem))
def test_impossible_versions_are_refused(bad: str, ecosystem: Ecosystem) -> None:
    with pytest.raises(VersionError):
        sort_key(ecosystem, bad)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "odd", ["1²", "١٢.٣", "~", "-", ":", "1:-", "::", "^", "_", "v", "1.0 beta", "ä", "9" * 256]
)
@pytest.mark.parametrize("ecosystem", list(Ecosystem))
def test_odd_but_printable_versions_get_a_place(odd: str, ecosystem: Ecosystem) -> None:
    """Superscript and Arabic digits once sent the dpkg parser into an endless loop."""
    key = sort_key(ecosystem, odd)
    assert compare(ecosystem, odd, odd) == 0
    assert key == sort_key(ecosystem, odd)
    assert compare(ecosystem, odd, "1.0") == -compare(ecosystem, "1.0", odd)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(Ecosystem)), st.text(max_size=300), st.text(max_size=20))
def test_any_text_is_a_version_or_a_version_error(eco: Ecosystem, a: str, b: str) -> None:
    try:
        result = compare(eco, a, b)
    except VersionError:
        return
    assert result in (-1, 0, 1)


VERSION_TEXT = st.text(alphabet="0123456789.~+-:^_abcprzAZ", min_size=1, max_size=14)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(list(Ecosystem)), VERSION_TEXT, VERSION_TEXT, VERSION_TEXT)
def test_every_comparator_is_a_total_order(eco: Ecosystem, a: str, b: str, c: str) -> None:
    try:
        for version in (a, b, c):
            sort_key(eco, version)
    except VersionError:
        return
    assert compare(eco, a, b) == -compare(eco, b, a)
    assert compare(eco, a, a) == 0
    if compare(eco, a, b) <= 0 and compare(eco, b, c) <= 0:
        assert compare(eco, a, c) <= 0
    if compare(eco, a, b) == 0:
        assert compare(eco, a, c) == compare(eco, b, c)
    ordered = sorted((a, b, c), key=lambda v: sort_key(eco, v))
    assert compare(eco, ordered[0], ordered[1]) <= 0 and compare(eco, ordered[1], ordered[2]) <= 0


# --- against the real tools ------------------------------------------------------------------


def _dpkg_versions(rng: random.Random, count: int) -> list[str]:
    """Well-formed dpkg versions mixing the pieces that make ordering hard."""
    upstreams = ["0", "1", "2", "10", "1.0", "1.0a", "1.0~rc1", "2.4.38", "7.2p2", "1.01", "9"]
    revisions = ["", "-1", "-1ubuntu1", "-2+deb12u3", "-0", "~deb12u1", "+dfsg-1", "-1.1"]
    fixed = [
        f"{epoch}{upstream}{revision}"
        for epoch, upstream, revision in itertools.product(["", "1:"], upstreams, revisions)
    ]
    alphabet = "0123456789.+~abz"
    generated = []
    for _ in range(count):
        upstream = rng.choice("0123456789") + "".join(rng.choices(alphabet, k=rng.randint(0, 6)))
        revision = "".join(rng.choices(alphabet, k=rng.randint(0, 4)))
        epoch = rng.choice(["", "", "", "1:", "2:"])
        generated.append(f"{epoch}{upstream}-{revision}" if revision else f"{epoch}{upstream}")
    return fixed + generated


def _dpkg_says(a: str, b: str) -> int:
    def holds(relation: str) -> bool:
        run = subprocess.run(
            ["dpkg", "--compare-versions", a, relation, b], capture_output=True, check=False
        )
        assert run.returncode in (0, 1), (a, b, run.stderr)
        return run.returncode == 0

    return -1 if holds("lt") else 1 if holds("gt") else 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to cross-check against")
def test_dpkg_comparator_agrees_with_dpkg_itself() -> None:
    rng = random.Random(20261124)
    versions = _dpkg_versions(rng, 200)
    pairs = [tuple(rng.sample(versions, 2)) for _ in range(300)]
    pairs += [(v, v.replace("-", "-0", 1)) for v in versions[:20]]  # near-equal pairs
    disagreements = [
        (a, b, mine, theirs)
        for a, b in pairs
        if (mine := compare(Ecosystem.DEBIAN, a, b)) != (theirs := _dpkg_says(a, b))
    ]
    assert not disagreements, disagreements[:5]


def _rpm_oracle() -> object | None:
    try:
        return importlib.import_module("rpm")
    except ImportError:
        return shutil.which("rpmdev-vercmp")


@pytest.mark.skipif(
    _rpm_oracle() is None, reason="needs the python rpm module or rpmdev-vercmp to cross-check"
)
def test_rpm_comparator_agrees_with_rpm_itself() -> None:
    oracle = _rpm_oracle()
    rng = random.Random(4)
    alphabet = "0123456789.~^_abz"
    versions = [
        rng.choice("0123456789") + "".join(rng.choices(alphabet, k=rng.randint(0, 7)))
        for _ in range(200)
    ]
    for a, b in (tuple(rng.sample(versions, 2)) for _ in range(300)):
        if isinstance(oracle, str):
            code = subprocess.run([oracle, a, b], capture_output=True, check=False).returncode
            theirs = {0: 0, 11: 1, 12: -1}[code]
        else:
            theirs = oracle.labelCompare(("0", a, "1"), ("0", b, "1"))  # type: ignore[attr-defined]
        assert compare(Ecosystem.RPM, a, b) == theirs, (a, b)


def test_throughput_is_measured() -> None:
    """Comparisons per second per ecosystem, printed (run with -s); never asserted."""
    samples = {
        Ecosystem.DEBIAN: ["1:7.2p2-4ubuntu2.8", "1:7.2p2-4ubuntu2.10", "2.4.38-3+deb10u8"],
        Ecosystem.RPM: ["8.0p1-19.el8_8", "1:1.1.1k-12.el8_9", "2.4.6-97.el7"],
        Ecosystem.ALPINE: ["9.6_p1-r0", "1.36.1-r15", "3.1.4-r5"],
        Ecosystem.SEMVER: ["1.0.0-rc.1", "1.10.0", "v2.3.4"],
        Ecosystem.PYPI: ["1.0rc1", "2.31.0", "1.0.post1"],
        Ecosystem.UPSTREAM: ["7.2p2", "1.0.2k", "1.3.6rc2"],
    }
    for ecosystem, versions in samples.items():
        pairs = list(itertools.permutations(versions, 2)) * 5000
        started = time.perf_counter()
        for a, b in pairs:
            compare(ecosystem, a, b)
        rate = len(pairs) / (time.perf_counter() - started)
        print(f"{ecosystem.value}: {rate:,.0f} comparisons/s")


# --- OSV ranges ------------------------------------------------------------------------------

E = RangeEvent
SEMVER, UP, DEB = Ecosystem.SEMVER, Ecosystem.UPSTREAM, Ecosystem.DEBIAN


def test_spec_unfixed_vulnerability_affects_everything() -> None:
    events = [E("introduced", "0")]
    assert all(affected(SEMVER, v, events) for v in ("0.0.0-alpha", "0.0.1", "1.0.0", "99.0.0"))


def test_spec_fixed_vulnerability() -> None:
    events = [E("introduced", "0"), E("fixed", "1.0.2")]
    assert affected(SEMVER, "1.0.1", events) and affected(SEMVER, "0.1.0", events)
    assert not affected(SEMVER, "1.0.2", events) and not affected(SEMVER, "1.1.0", events)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9.0", False),
        ("1.0.0", True),
        ("1.0.1", True),
        ("1.0.2", False),
        ("2.9.9", False),
        ("3.0.0-rc.1", False),
        ("3.0.0", True),
        ("3.2.4", True),
        ("3.2.5", False),
        ("4.0.0", False),
    ],
)
def test_spec_multiple_ranges(version: str, expected: bool) -> None:
    """[1.0.0, 1.0.2) or [3.0.0, 3.2.5): in any event order."""
    events = [
        E("introduced", "1.0.0"),
        E("fixed", "1.0.2"),
        E("introduced", "3.0.0"),
        E("fixed", "3.2.5"),
    ]
    assert affected(SEMVER, version, events) is expected
    assert affected(SEMVER, version, list(reversed(events))) is expected


def test_spec_last_affected_versus_fixed() -> None:
    last = [E("introduced", "0"), E("last_affected", "2.1.214")]
    fixed = [E("introduced", "0"), E("fixed", "2.1.214")]
    assert affected(SEMVER, "2.1.214", last) and not affected(SEMVER, "2.1.215", last)
    assert affected(SEMVER, "2.1.213", fixed) and not affected(SEMVER, "2.1.214", fixed)
    assert first_fixed(SEMVER, "2.1.0", last) is None  # no fix is known


def test_spec_limits() -> None:
    limited = [E("introduced", "1.0"), E("limit", "2.0")]
    assert affected(UP, "1.5", limited) and not affected(UP, "2.0", limited)
    assert not affected(UP, "2.1", limited) and not affected(UP, "0.9", limited)
    # Several limits each extend the range: below any one of them is enough.
    branches = [E("introduced", "1.0"), E("limit", "2.0"), E("limit", "5.0")]
    assert affected(UP, "3.0", branches) and not affected(UP, "5.0", branches)
    infinite = [E("introduced", "1.0"), E("limit", "*")]
    assert affected(UP, "999", infinite)


def test_spec_versions_list_pikepdf() -> None:
    """PYSEC-2021-XXXX: pikepdf 2.8.0 through 2.9.2, listed and as an ECOSYSTEM range."""
    listed = ["2.8.0", "2.8.0.post1", "2.8.0.post2", "2.9.0", "2.9.1", "2.9.2"]
    events = [E("introduced", "2.8.0"), E("fixed", "2.10.0")]
    pypi = Ecosystem.PYPI
    assert affected(pypi, "2.8.0.post1", [], versions=listed)
    assert affected(pypi, "2.8.0.0", [], versions=listed)  # equal by PEP 440, not by text
    assert not affected(pypi, "2.10.0", [], versions=listed)
    assert affected(pypi, "2.9.2", events) and not affected(pypi, "2.10.0", events)
    assert first_fixed(pypi, "2.9.2", events) == "2.10.0"


def test_spec_debian_dsa_3029() -> None:
    """DSA-3029-1: nginx in Debian 7 fixed in 1.2.1-2.2+wheezy3."""
    events = [E("introduced", "0"), E("fixed", "1.2.1-2.2+wheezy3")]
    assert affected(DEB, "1.2.1-2.2+wheezy2", events)
    assert affected(DEB, "1.2.1-2.2", events)
    assert not affected(DEB, "1.2.1-2.2+wheezy3", events)
    assert not affected(DEB, "1.2.1-2.2+wheezy10", events)
    assert not affected(DEB, "1.6.2-1", events)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", False), ("1.5", True), ("2.0", False), ("2.5", True), ("3.0", False), ("9", False)],
)
def test_two_introduced_fixed_pairs(version: str, expected: bool) -> None:
    events = [E("introduced", "1.5"), E("fixed", "2.0"), E("introduced", "2.5"), E("fixed", "3.0")]
    assert affected(UP, version, events) is expected


def test_edge_events() -> None:
    assert not affected(UP, "1.0", [E("introduced", "1.0"), E("fixed", "1.0")])
    assert affected(UP, "1.0", [E("introduced", "1.0"), E("last_affected", "1.0")])
    assert not affected(UP, "1.0", [])
    # "0" in dpkg is not the bottom ("0~" sorts before it); introduced "0" still is.
    assert affected(DEB, "0~pre1", [E("introduced", "0"), E("fixed", "1.0")])
    assert not affected(DEB, "0~pre1", [E("introduced", "0.0"), E("fixed", "1.0")])


def test_unordered_events_and_distro_fixed_versions() -> None:
    events = [E("fixed", "1:9.2p1-2+deb12u3"), E("introduced", "0")]
    assert affected(DEB, "1:9.2p1-2+deb12u2", events)
    assert not affected(DEB, "1:9.2p1-2+deb12u3", events)
    assert first_fixed(DEB, "1:9.2p1-2+deb12u2", events) == "1:9.2p1-2+deb12u3"
    assert first_fixed(DEB, "1:9.2p1-2+deb12u3", events) is None


def test_regresshion_ranges() -> None:
    """CVE-2024-6387: OpenSSH before 4.4p1, and 8.5p1 up to (not including) 9.8p1."""
    events = [
        E("fixed", "9.8p1"),
        E("introduced", "0"),
        E("introduced", "8.5p1"),
        E("fixed", "4.4p1"),
    ]
    hits = {v: affected(UP, v, events) for v in ("4.3p2", "4.4p1", "8.4p1", "8.5p1", "9.7p1")}
    assert hits == {"4.3p2": True, "4.4p1": False, "8.4p1": False, "8.5p1": True, "9.7p1": True}
    assert not affected(UP, "9.8p1", events) and not affected(UP, "9.9p1", events)
    assert first_fixed(UP, "9.3p1", events) == "9.8p1"
    assert first_fixed(UP, "4.0", events) == "4.4p1"
    assert first_fixed(UP, "8.4p1", events) is None


def test_bad_events_and_listed_versions() -> None:
    with pytest.raises(VersionError, match="vulnerable"):
        RangeEvent("vulnerable", "1.0")
    with pytest.raises(VersionError, match="fixed"):
        RangeEvent("fixed", "")
    with pytest.raises(VersionError):
        RangeEvent("introduced", "1.0\x00")
    assert not affected(UP, "1.0", [], versions=["", "\x00", "2.0"])  # never match, never raise
    with pytest.raises(VersionError):
        affected(UP, "", [E("introduced", "0")])
