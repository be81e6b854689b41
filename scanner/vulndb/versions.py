"""Version ordering per ecosystem (dpkg, RPM, apk, SemVer, PyPI, vendor upstream strings such as
OpenSSH's `7.2p2` and OpenSSL's `1.0.2k`) and OSV range evaluation.

Every comparator is a sort key, so versions can be sorted and compared alike; keys are cached,
as one scan compares the same few versions against thousands of advisory bounds.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

MAX_VERSION = 256  # characters; real versions are far shorter


class VersionError(ValueError):
    """A string that cannot be a version of the ecosystem at all."""


class Ecosystem(enum.Enum):
    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    RPM = "RPM"
    SEMVER = "SEMVER"
    PYPI = "PyPI"
    UPSTREAM = "upstream"  # what vendor banners and NVD CPE bounds say

    @classmethod
    def parse(cls, text: str) -> Ecosystem:
        """An OSV ecosystem string ("Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.18",
        "Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE", "PyPI", "npm", "Go",
        "crates.io", ...). RPM distributions share rpmvercmp; npm, Go and crates.io use SemVer;
        anything else (OSS-Fuzz, GIT, unknown) falls back to the upstream comparator."""
        name = text.split(":", 1)[0].strip().lower()
        return _ECOSYSTEM_NAMES.get(name, cls.UPSTREAM)

    @property
    def dpkg_like(self) -> bool:
        return self in (Ecosystem.DEBIAN, Ecosystem.UBUNTU)


_ECOSYSTEM_NAMES = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    "alpine": Ecosystem.ALPINE,
    "red hat": Ecosystem.RPM,
    "redhat": Ecosystem.RPM,
    "rocky linux": Ecosystem.RPM,
    "almalinux": Ecosystem.RPM,
    "suse": Ecosystem.RPM,
    "opensuse": Ecosystem.RPM,
    "fedora": Ecosystem.RPM,
    "mageia": Ecosystem.RPM,
    "oracle linux": Ecosystem.RPM,
    "rpm": Ecosystem.RPM,
    "pypi": Ecosystem.PYPI,
    "npm": Ecosystem.SEMVER,
    "go": Ecosystem.SEMVER,
    "crates.io": Ecosystem.SEMVER,
    "semver": Ecosystem.SEMVER,
    "packagist": Ecosystem.SEMVER,
    "nuget": Ecosystem.SEMVER,
    "hex": Ecosystem.SEMVER,
    "pub": Ecosystem.SEMVER,
}


def _checked(version: str) -> str:
    if not isinstance(version, str) or not version.strip():
        raise VersionError("an empty version")
    if len(version) > MAX_VERSION:
        raise VersionError(f"a version of {len(version)} characters (at most {MAX_VERSION})")
    if any(ord(c) < 32 or ord(c) == 127 for c in version):
        raise VersionError(f"control characters in version {version[:40]!r}")
    return version.strip()


# --- dpkg (Debian policy 5.6.12) -------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _dpkg_char(c: str) -> int:
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part(text: str) -> tuple[Any, ...]:
    """upstream_version or debian_revision as a key: alternating non-digit runs (each char by
    dpkg's order, then 0 for the end, so `~` sorts before the end) and numbers, closed by a
    sentinel that stands for "nothing left" (an empty run and 0)."""
    key: list[Any] = []
    at = 0
    while at < len(text):
        start = at
        while at < len(text) and not text[at].isdigit():
            at += 1
        run = (*(_dpkg_char(c) for c in text[start:at]), 0)
        match = _DIGITS.match(text, at)
        number = int(match.group()) if match else 0
        at = match.end() if match else at
        key.append((run, number))
    while key and key[-1] == ((0,), 0):  # "0" and "" are the same revision to dpkg
        key.pop()
    key.append(((0,), 0))
    return tuple(key)


def dpkg_key(version: str) -> tuple[Any, ...]:
    version = _checked(version)
    epoch_text, colon, rest = version.partition(":")
    if colon and epoch_text.isdigit():
        epoch = int(epoch_text)
    else:
        epoch, rest = 0, version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    if not upstream:
        raise VersionError(f"no upstream version in {version[:40]!r}")
    return (epoch, _dpkg_part(upstream), _dpkg_part(revision))


# --- RPM (rpmvercmp, with ~ and ^) -------------------------------------------------------------

_RPM_SEGMENT = re.compile(r"[~^]|\d+|[A-Za-z]+")


def _rpm_part(text: str) -> tuple[Any, ...]:
    """rpmvercmp as a key: `~` sorts before anything (even the end), `^` after the end but
    before any further segment, numbers after letters, separators ignored."""
    key: list[Any] = []
    for segment in _RPM_SEGMENT.findall(text):
        if segment == "~":
            key.append((0,))
        elif segment == "^":
            key.append((2,))
        elif segment.isdigit():
            key.append((4, int(segment)))
        else:
            key.append((3, segment))
    key.append((1,))  # the end: after ~, before ^ and every segment
    return tuple(key)


def rpm_key(version: str) -> tuple[Any, ...]:
    version = _checked(version)
    epoch_text, colon, rest = version.partition(":")
    if colon and epoch_text.isdigit():
        epoch = int(epoch_text)
    else:
        epoch, rest = 0, version
    upstream, dash, release = rest.rpartition("-")
    if not dash:
        upstream, release = rest, ""
    return (epoch, _rpm_part(upstream), _rpm_part(release))


# --- Alpine apk ----------------------------------------------------------------------------------

_APK = re.compile(
    r"(?P<numbers>\d+(?:\.\d+)*)(?P<letter>[a-z]?)(?P<suffixes>(?:_[a-z]+\d*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>\d+))?\Z"
)
_APK_SUFFIX = re.compile(r"_([a-z]+)(\d*)")
_APK_SUFFIX_ORDER = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7}
_APK_SUFFIX_ORDER |= {"hg": 8, "p": 9}


def apk_key(version: str) -> tuple[Any, ...]:
    version = _checked(version)
    match = _APK.match(version)
    if match is None:
        return (1, upstream_key(version))  # not apk syntax: order it as upstream, after
    numbers = tuple(int(n) for n in match["numbers"].split("."))
    # A closing (4, 0), "no suffix": after the pre-releases, before the post-releases.
    suffixes = (
        *(
            (_APK_SUFFIX_ORDER.get(name, 4), int(number or 0))
            for name, number in _APK_SUFFIX.findall(match["suffixes"] or "")
        ),
        (4, 0),
    )
    return (0, numbers, match["letter"] or "", suffixes, int(match["revision"] or 0))


# --- SemVer 2.0 ----------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"v?(?P<core>\d+(?:\.\d+){0,2})(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z"
)


def semver_key(version: str) -> tuple[Any, ...]:
    version = _checked(version)
    match = _SEMVER.match(version)
    if match is None:
        return (1, upstream_key(version))  # not SemVer: keep an order, after real ones
    core = [int(n) for n in match["core"].split(".")]
    core += [0] * (3 - len(core))
    if match["pre"] is None:
        return (0, tuple(core), (1,))
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in match["pre"].split(".")
    )
    return (0, tuple(core), (0, identifiers))


# --- PyPI (PEP 440, through packaging) -----------------------------------------------------------


def pypi_key(version: str) -> tuple[Any, ...]:
    version = _checked(version)
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, upstream_key(version))


# --- upstream (vendor) versions ---------------------------------------------------------------

_UPSTREAM_TOKEN = re.compile(r"\d+|[a-z]+")
# Words that mark a release candidate or earlier, before the release itself.
_PRE_RELEASE = {"dev": 0, "snapshot": 0, "alpha": 1, "beta": 2, "pre": 3, "preview": 3, "rc": 4}
_END = (1,)


def upstream_key(version: str) -> tuple[Any, ...]:
    """Vendor versions: runs of digits (numbers) and letters, separators ignored. At one
    position a pre-release word (rc, beta, alpha, dev, pre) < the end of the version < letters
    (OpenSSL's `1.0.2k`, OpenSSH's `p1`: later patch releases) < numbers, so that
    1.3.6rc2 < 1.3.6 < 1.3.6a and 9.6 < 9.6p1 < 9.7."""
    text = _checked(version).lower()
    key: list[tuple[Any, ...]] = []
    for token in _UPSTREAM_TOKEN.findall(text)[:64]:
        if token.isdigit():
            key.append((3, int(token)))
        elif token in _PRE_RELEASE:
            key.append((0, _PRE_RELEASE[token]))
        else:
            key.append((2, token))
    key.append(_END)
    return tuple(key)


_KEYS: dict[Ecosystem, Callable[[str], tuple[Any, ...]]] = {
    Ecosystem.DEBIAN: dpkg_key,
    Ecosystem.UBUNTU: dpkg_key,
    Ecosystem.RPM: rpm_key,
    Ecosystem.ALPINE: apk_key,
    Ecosystem.SEMVER: semver_key,
    Ecosystem.PYPI: pypi_key,
    Ecosystem.UPSTREAM: upstream_key,
}


@lru_cache(maxsize=65536)
def sort_key(ecosystem: Ecosystem, version: str) -> tuple[Any, ...]:
    """A key ordering versions of `ecosystem` as that ecosystem does; VersionError for a
    string that cannot be a version (empty, control characters, too long)."""
    return _KEYS[ecosystem](version)


def compare(ecosystem: Ecosystem, a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` sorts before, with or after `b`."""
    key_a, key_b = sort_key(ecosystem, a), sort_key(ecosystem, b)
    return (key_a > key_b) - (key_a < key_b)


# --- OSV ranges ------------------------------------------------------------------------------

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True)
class RangeEvent:
    kind: str  # introduced | fixed | last_affected | limit
    version: str

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise VersionError(f"unknown OSV range event {self.kind!r}")


_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def _ordered_events(
    ecosystem: Ecosystem, events: Sequence[RangeEvent]
) -> list[tuple[tuple[Any, ...], RangeEvent]]:
    """Events by version ("0" first), an introduced before a fix at the same version."""
    keyed = []
    for event in events:
        lowest = event.kind == "introduced" and event.version == "0"
        key = (0,) if lowest else (1, sort_key(ecosystem, event.version))
        keyed.append(((key, _EVENT_ORDER[event.kind]), event))
    keyed.sort(key=lambda pair: pair[0])
    return keyed


def affected(
    ecosystem: Ecosystem,
    version: str,
    events: Sequence[RangeEvent],
    *,
    versions: Sequence[str] = (),
) -> bool:
    """OSV semantics: `version` is affected when it is listed in `versions`, or when the last
    event at or below it is an introduction (introduced <= v < fixed, v <= last_affected);
    at or beyond a `limit`, nothing is affected."""
    target = sort_key(ecosystem, version)
    if any(sort_key(ecosystem, listed) == target for listed in versions):
        return True
    state = False
    for (position, _), event in _ordered_events(ecosystem, events):
        bound = position[1] if len(position) > 1 else None
        if event.kind == "introduced":
            if bound is None or bound <= target:
                state = True
        elif event.kind == "fixed":
            if bound is not None and bound <= target:
                state = False
        elif event.kind == "last_affected":
            if bound is not None and bound < target:
                state = False
        elif bound is not None and bound <= target:  # limit
            return False
    return state


def first_fixed(ecosystem: Ecosystem, version: str, events: Sequence[RangeEvent]) -> str | None:
    """The first `fixed` version above an affected `version`: what to upgrade to."""
    if not affected(ecosystem, version, events):
        return None
    target = sort_key(ecosystem, version)
    for (position, _), event in _ordered_events(ecosystem, events):
        if event.kind == "fixed" and len(position) > 1 and position[1] > target:
            return event.version
    return None


__all__ = [
    "Ecosystem",
    "RangeEvent",
    "VersionError",
    "affected",
    "compare",
    "first_fixed",
    "sort_key",
]
