"""Version ordering per ecosystem, cross-checked against dpkg itself where it is installed, and
OSV range evaluation as the OSV schema specifies it."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess

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
    ("1.2.3", "1.2.10"),
    ("9", "10"),
    ("1.0-9", "1.0-10"),
    ("3.0.11-1~deb12u2", "3.0.11-1"),
    ("5:6.0.16-1+deb11u1", "5:6.0.16-1+deb11u2"),
    ("1.0~beta", "1.0~rc"),
    ("0:1.0", "1:0.1"),
    ("1.0-0ubuntu1", "1.0-1"),
    ("2.2.0-1ubuntu0.1", "2.2.0-1ubuntu0.2"),
    ("7.4p1-10+deb9u7", "7.9p1-10+deb10u2"),
    ("1.2-3", "1.2.0-1"),
    ("A", "a"),
    ("1.18.0-6ubuntu14.3", "1.18.0-6ubuntu14.4"),
    ("10.3.38-0+deb10u1", "10.3.39-0+deb10u1"),
]
DPKG_EQUAL = [
    ("1.0", "1.0-0"),
    ("1.0", "0:1.0"),
    ("1.01", "1.1"),
    ("1.0-00", "1.0-0"),
    ("1.0.", "1.0.0"),  # a trailing 0 after a separator adds nothing to dpkg
]

RPM_LESS = [
    ("1.0~rc1", "1.0"),
    ("1.0", "1.0^git1"),
    ("1.0^", "1.0.1"),
    ("1.0^git1", "1.0^git2"),
    ("1.0~rc1", "1.0~rc2"),
    ("2.0a", "2.0.1"),
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
    ("1.0-1", "1.0-1.1"),
    ("FC5", "fc4"),
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
]
RPM_EQUAL = [("1.0", "1_0"), ("1.01", "1.1"), ("1.0.", "1.0"), ("0:2.1", "2.1")]

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
    ("1.3.5", "1.3.5e"),
    ("1.3.5e", "1.3.6"),
    ("2.4.38", "2.4.49"),
    ("2.4.9", "2.4.10"),
    ("4.92", "4.92.3"),
    ("1.18.0", "1.20.1"),
    ("2019.78", "2022.83"),
    ("5.7.33", "5.7.33-0ubuntu0.18.04.1"),
    ("5.7.33-0ubuntu0.18.04.1", "5.7.34"),
    ("1.0.1f", "1.0.1g"),
    ("2.3.4", "3.0.3"),
    ("10.0", "10.1"),
]
UPSTREAM_EQUAL = [("7.2p2", "7.2P2"), ("2.4.38", "2.4.38"), ("1.0-rc1", "1.0rc1")]

APK_LESS = [
    ("1.2.4-r1", "1.2.4-r2"),
    ("9.6_p1-r0", "9.7_p1-r0"),
    ("1.0_rc1", "1.0"),
    ("1.0_alpha", "1.0_beta"),
    ("1.0", "1.0_p1"),
    ("1.0", "1.0a"),
    ("3.1.4-r5", "3.1.10-r0"),
    ("1.36.1-r15", "1.36.1-r16"),
    ("1.0_pre1", "1.0_rc1"),
    ("1.0_git20200101", "1.0_p1"),
]
SEMVER_LESS = [
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0", "1.0.1"),
    ("v1.9.0", "1.10.0"),
    ("1.2", "1.2.1"),
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


@pytest.mark.parametrize(("low", "high"), SEMVER_LESS)
def test_semver_order(low: str, high: str) -> None:
    _both_ways(Ecosystem.SEMVER, low, high)


def test_semver_ignores_build_metadata_and_pypi_uses_pep440() -> None:
    assert compare(Ecosystem.SEMVER, "1.0.0+build.1", "1.0.0+build.2") == 0
    assert compare(Ecosystem.PYPI, "1.0rc1", "1.0") == -1
    assert compare(Ecosystem.PYPI, "1.0.post1", "1.0") == 1
    assert compare(Ecosystem.PYPI, "2.0", "10.0") == -1


@pytest.mark.parametrize(
    ("text", "ecosystem"),
    [
        ("Debian:12", Ecosystem.DEBIAN),
        ("Ubuntu:22.04:LTS", Ecosystem.UBUNTU),
        ("Alpine:v3.18", Ecosystem.ALPINE),
        ("Red Hat", Ecosystem.RPM),
        ("Rocky Linux:9", Ecosystem.RPM),
        ("AlmaLinux:8", Ecosystem.RPM),
        ("SUSE:SLES:15", Ecosystem.RPM),
        ("openSUSE", Ecosystem.RPM),
        ("PyPI", Ecosystem.PYPI),
        ("npm", Ecosystem.SEMVER),
        ("Go", Ecosystem.SEMVER),
        ("crates.io", Ecosystem.SEMVER),
        ("OSS-Fuzz", Ecosystem.UPSTREAM),
        ("GIT", Ecosystem.UPSTREAM),
        ("something new", Ecosystem.UPSTREAM),
    ],
)
def test_osv_ecosystem_names(text: str, ecosystem: Ecosystem) -> None:
    assert Ecosystem.parse(text) is ecosystem


@pytest.mark.parametrize("bad", ["", "   ", "1.0\x00", "\x1b[31m1.0", "9" * 300])
@pytest.mark.parametrize("ecosystem", list(Ecosystem))
def test_impossible_versions_are_refused(bad: str, ecosystem: Ecosystem) -> None:
    with pytest.raises(VersionError):
        sort_key(ecosystem, bad)


VERSION_TEXT = st.text(alphabet="0123456789.~+-:^_abcprz", min_size=1, max_size=14)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Ecosystem)), VERSION_TEXT, VERSION_TEXT, VERSION_TEXT)
def test_every_comparator_is_a_total_order(eco: Ecosystem, a: str, b: str, c: str) -> None:
    try:
        keys = [sort_key(eco, v) for v in (a, b, c)]
    except VersionError:
        return
    assert compare(eco, a, b) == -compare(eco, b, a)
    ordered = sorted(keys)
    assert ordered[0] <= ordered[1] <= ordered[2]
    if compare(eco, a, b) <= 0 and compare(eco, b, c) <= 0:
        assert compare(eco, a, c) <= 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to cross-check against")
def test_dpkg_comparator_agrees_with_dpkg_itself() -> None:
    rng = random.Random(20261124)
    parts = ["0", "1", "2", "10", "1.0", "1.0a", "1.0~rc1", "2.4.38", "7.2p2", "1.01", "9"]
    suffixes = ["", "-1", "-1ubuntu1", "-2+deb12u3", "-0", "~deb12u1", "+dfsg-1", "-1.1"]
    versions = sorted(
        {
            f"{epoch}{part}{suffix}"
            for epoch, part, suffix in itertools.product(["", "1:"], parts, suffixes)
        }
    )
    pairs = [tuple(rng.sample(versions, 2)) for _ in range(150)]
    for a, b in pairs:
        mine = compare(Ecosystem.DEBIAN, a, b)
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode
        eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode
        theirs = -1 if lt == 0 else 0 if eq == 0 else 1
        assert mine == theirs, (a, b)


# --- OSV ranges -----------------------------------------------------------------------------

E = RangeEvent


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", False), ("1.5", True), ("2.0", False), ("2.5", True), ("3.0", False), ("9", False)],
)
def test_two_introduced_fixed_pairs(version: str, expected: bool) -> None:
    events = [E("introduced", "1.5"), E("fixed", "2.0"), E("introduced", "2.5"), E("fixed", "3.0")]
    assert affected(Ecosystem.UPSTREAM, version, events) is expected


def test_introduced_zero_last_affected_and_limit() -> None:
    up = Ecosystem.UPSTREAM
    assert affected(up, "0.1", [E("introduced", "0"), E("fixed", "1.0")])
    assert not affected(up, "1.0", [E("introduced", "0"), E("fixed", "1.0")])
    last = [E("introduced", "0"), E("last_affected", "2.4.49")]
    assert affected(up, "2.4.49", last) and not affected(up, "2.4.50", last)
    limited = [E("introduced", "1.0"), E("limit", "2.0")]
    assert affected(up, "1.5", limited) and not affected(up, "2.1", limited)
    assert affected(up, "0.5", [], versions=["0.5", "0.6"])
    assert not affected(up, "0.7", [], versions=["0.5", "0.6"])


def test_unordered_events_and_distro_fixed_versions() -> None:
    deb = Ecosystem.DEBIAN
    events = [E("fixed", "1:9.2p1-2+deb12u3"), E("introduced", "0")]
    assert affected(deb, "1:9.2p1-2+deb12u2", events)
    assert not affected(deb, "1:9.2p1-2+deb12u3", events)
    assert first_fixed(deb, "1:9.2p1-2+deb12u2", events) == "1:9.2p1-2+deb12u3"
    assert first_fixed(deb, "1:9.2p1-2+deb12u3", events) is None


def test_regresshion_ranges() -> None:
    """CVE-2024-6387: OpenSSH before 4.4p1, and 8.5p1 up to (not including) 9.8p1."""
    events = [
        E("introduced", "0"),
        E("fixed", "4.4p1"),
        E("introduced", "8.5p1"),
        E("fixed", "9.8p1"),
    ]
    up = Ecosystem.UPSTREAM
    hits = {v: affected(up, v, events) for v in ("4.3p2", "4.4p1", "8.4p1", "8.5p1", "9.7p1")}
    assert hits == {"4.3p2": True, "4.4p1": False, "8.4p1": False, "8.5p1": True, "9.7p1": True}
    assert not affected(up, "9.8p1", events) and not affected(up, "9.9p1", events)
    assert first_fixed(up, "9.3p1", events) == "9.8p1"
    assert first_fixed(up, "4.0", events) == "4.4p1"


def test_bad_event_kind() -> None:
    with pytest.raises(VersionError):
        RangeEvent("vulnerable", "1.0")
