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
    """A string that cannot be a version of any ecosystem (empty, control characters, too long)."""


class Ecosystem(enum.Enum):
    """A version ordering. `parse` maps OSV ecosystem names onto these orderings:

    - Debian → DEBIAN, Ubuntu → UBUNTU (both dpkg);
    - Alpine, Wolfi, Chainguard, Alpaquita, MinimOS → ALPINE (apk);
    - Red Hat, Rocky Linux, AlmaLinux, SUSE, openSUSE, Fedora, Mageia, Oracle Linux,
      openEuler, Photon OS → RPM (rpmvercmp);
    - PyPI → PYPI (PEP 440);
    - npm, Go, crates.io, Packagist, NuGet, Hex, Pub, SwiftURL, SEMVER → SEMVER;
    - "Root:<Base>:<release>" → the ordering of <Base>;
    - anything else (OSS-Fuzz, GIT, Maven, RubyGems, unknown) → UPSTREAM.
    """

    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    RPM = "RPM"
    SEMVER = "SEMVER"
    PYPI = "PyPI"
    UPSTREAM = "upstream"  # what vendor banners and NVD CPE bounds say

    @classmethod
    def parse(cls, text: str) -> Ecosystem:
        """The ordering for an OSV ecosystem string ("Debian:12", "Ubuntu:22.04:LTS",
        "Alpine:v3.18", "Red Hat:rhel_aus:8.4::appstream", "npm", ...); never fails."""
        name, _, rest = str(text).partition(":")
        name = name.strip().lower()
        if name == "root" and rest:  # Root's images: "Root:Alpine:3.18", "Root:PyPI"
            name = rest.partition(":")[0].strip().lower()
        return _ECOSYSTEM_NAMES.get(name, cls.UPSTREAM)

    @property
    def dpkg_like(self) -> bool:
        return self in (Ecosystem.DEBIAN, Ecosystem.UBUNTU)


_ECOSYSTEM_NAMES = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    **dict.fromkeys(("alpine", "wolfi", "chainguard", "alpaquita", "minimos"), Ecosystem.ALPINE),
    **dict.fromkeys(
        (
            "rpm",
            "red hat",
            "redhat",
            "rocky linux",
            "almalinux",
            "suse",
            "opensuse",
            "fedora",
            "mageia",
            "oracle linux",
            "openeuler",
            "photon os",
        ),
        Ecosystem.RPM,
    ),
    "pypi": Ecosystem.PYPI,
    **dict.fromkeys(
        ("semver", "npm", "go", "crates.io", "packagist", "nuget", "hex", "pub", "swifturl"),
        Ecosystem.SEMVER,
    ),
}


def _checked(version: str) -> str:
    if not isinstance(version, str) or not version.strip(" "):
        raise VersionError("an empty version")
    if len(version) > MAX_VERSION:
        raise VersionError(f"a version of {len(version)} characters (at most {MAX_VERSION})")
    version = version.strip(" ")
    # Also refuses lone surrogates from JSON and Unicode separators: no real version has them.
    if not version.isprintable():
        raise VersionError(f"unprintable characters in version {version[:40]!r}")
    return version


# --- dpkg (Debian policy 5.6.12) -------------------------------------------------------------

_DPKG_CHUNK = re.compile(r"([^0-9]*)([0-9]*)")
# dpkg's order of one character in a non-digit run: ~ before the end (0), letters, then the rest.
_DPKG_ORDER = {chr(c): (c if chr(c).isalpha() else c + 256) for c in range(128)} | {"~": -1}
_DPKG_NOTHING = ((0,), 0)  # an empty run and the number 0: what an exhausted string reads as


@lru_cache(maxsize=4096)
def _dpkg_run(run: str) -> tuple[int, ...]:
    # The same few runs (".", "-", "ubuntu", "+deb", "p", "~rc") recur in every version.
    return (*(_DPKG_ORDER.get(c, ord(c) + 256) for c in run), 0)


def _dpkg_part(text: str) -> tuple[Any, ...]:
    """upstream_version or debian_revision as a key: (non-digit run, number) pairs, each run a
    tuple of dpkg's character orders closed by 0 (the end), so `1.0~rc1 < 1.0 < 1.0a`."""
    key = [
        (_dpkg_run(run), int(digits or 0))
        for run, digits in _DPKG_CHUNK.findall(text)
        if run or digits
    ]
    while key and key[-1] == _DPKG_NOTHING:  # "1.0" == "1.0-0" == "1.0." to dpkg
        key.pop()
    key.append(_DPKG_NOTHING)
    return tuple(key)


def _split_evr(version: str) -> tuple[int, str, str]:
    """`[epoch:]version[-revision]` as dpkg and rpm both write it: (epoch, version, revision);
    a missing epoch is 0 and a missing revision empty."""
    version = _checked(version)
    epoch_text, colon, rest = version.partition(":")
    if colon and epoch_text.isascii() and epoch_text.isdigit():
        epoch = int(epoch_text)
    else:
        epoch, rest = 0, version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def dpkg_key(version: str) -> tuple[Any, ...]:
    """`[epoch:]upstream[-revision]`. dpkg warns about, yet compares, an upstream version not
    starting with a digit; an empty one (which dpkg refuses) simply sorts first."""
    epoch, upstream, revision = _split_evr(version)
    return (epoch, _dpkg_part(upstream), _dpkg_part(revision))


# --- RPM (rpmvercmp, with ~ and ^) -------------------------------------------------------------

_RPM_SEGMENT = re.compile(r"[~^]|[0-9]+|[A-Za-z]+")
_RPM_TILDE, _RPM_END, _RPM_CARET = (0,), (1,), (2,)


def _rpm_part(text: str) -> tuple[Any, ...]:
    """rpmvercmp as a key: `~` sorts before anything (even the end), `^` after the end but
    before any further segment, letters before numbers, other characters only separate."""
    key: list[Any] = []
    for segment in _RPM_SEGMENT.findall(text):
        if segment == "~":
            key.append(_RPM_TILDE)
        elif segment == "^":
            key.append(_RPM_CARET)
        elif segment.isdigit():
            key.append((4, int(segment)))
        else:
            key.append((3, segment))
    key.append(_RPM_END)
    return tuple(key)


def rpm_key(version: str) -> tuple[Any, ...]:
    """`[epoch:]version[-release]`, epoch numerically, then version and release by rpmvercmp.
    A missing release sorts before any release."""
    epoch, upstream, release = _split_evr(version)
    return (epoch, _rpm_part(upstream), _rpm_part(release))


# --- Alpine apk ----------------------------------------------------------------------------------

_APK = re.compile(
    r"(?P<numbers>[0-9]+(?:\.[0-9]+)*)(?P<letter>[a-z]?)(?P<suffixes>(?:_[a-z]+[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>[0-9]+))?\Z"
)
_APK_SUFFIX = re.compile(r"_([a-z]+)([0-9]*)")
_APK_NO_SUFFIX = 4
_APK_SUFFIX_ORDER = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7}
_APK_SUFFIX_ORDER |= {"hg": 8, "p": 9}


def apk_key(version: str) -> tuple[Any, ...]:
    """`numbers[letter][_suffix[N]]...[~hash][-rN]`: _alpha < _beta < _pre < _rc < (none) <
    _cvs < _svn < _git < _hg < _p. A string outside that grammar sorts after every apk version,
    by the upstream order."""
    version = _checked(version)
    match = _APK.match(version)
    if match is None:
        return (1, upstream_key(version))
    numbers = tuple(int(n) for n in match["numbers"].split("."))
    suffixes = (
        *(
            (_APK_SUFFIX_ORDER.get(name, _APK_NO_SUFFIX), int(number or 0))
            for name, number in _APK_SUFFIX.findall(match["suffixes"] or "")
        ),
        (_APK_NO_SUFFIX, 0),  # the end: after the pre-releases, before the post-releases
    )
    return (0, numbers, match["letter"] or "", suffixes, int(match["revision"] or 0))


# --- SemVer 2.0 ----------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"[vV]?(?P<core>[0-9]+(?:\.[0-9]+)*)(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?\Z"
)


def semver_key(version: str) -> tuple[Any, ...]:
    """SemVer 2.0 precedence, build metadata ignored, a leading "v" tolerated. Cores of one or
    two numbers are padded (`1.2` == `1.2.0`); NuGet/Packagist fourth numbers are compared too.
    A string that is not SemVer sorts after every SemVer version, by the upstream order."""
    version = _checked(version)
    match = _SEMVER.match(version)
    if match is None:
        return (1, upstream_key(version))
    core = [int(n) for n in match["core"].split(".")]
    core += [0] * (3 - len(core))
    while len(core) > 3 and core[-1] == 0:
        core.pop()
    if match["pre"] is None:
        return (0, tuple(core), (1,))
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in match["pre"].split(".")
    )
    return (0, tuple(core), (0, identifiers))


# --- PyPI (PEP 440, through packaging) -----------------------------------------------------------


def pypi_key(version: str) -> tuple[Any, ...]:
    """PEP 440; a string that is not PEP 440 sorts after every valid version, by upstream order."""
    version = _checked(version)
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, upstream_key(version))


# --- upstream (vendor) versions ---------------------------------------------------------------

_UPSTREAM_TOKEN = re.compile(r"[0-9]+|[a-z]+")
# Words that mark a release candidate or earlier: before the release itself.
_PRE_RELEASE = {"dev": 0, "snapshot": 0, "alpha": 1, "beta": 2, "pre": 3, "preview": 3, "rc": 4}
_NEUTRAL = {"final", "ga", "release", "stable"}  # `1.0.0.Final` is 1.0.0
_PRE, _END, _LETTERS, _NUMBER = 0, 1, 2, 3
_ZERO = (_NUMBER, 0)


def upstream_key(version: str) -> tuple[Any, ...]:
    """Vendor versions: runs of digits (numbers) and letters, separators and case ignored. At one
    position a pre-release word (dev < alpha < beta < pre < rc) < the end of the version <
    letters (OpenSSL's `1.0.2k`, OpenSSH's `p1`: later patch releases) < numbers, so that
    1.3.6rc2 < 1.3.6 < 1.3.6a < 1.3.7 and 9.6 < 9.6p1 < 9.7. Zeros before the end or a word
    add nothing: 2.4 == 2.4.0, 2.0rc1 == 2.0.0rc1."""
    key: list[tuple[Any, ...]] = []
    for token in _UPSTREAM_TOKEN.findall(_checked(version).lower()):
        if token.isdigit():
            key.append((_NUMBER, int(token)))
            continue
        while key and key[-1] == _ZERO:
            key.pop()
        if token in _PRE_RELEASE:
            key.append((_PRE, _PRE_RELEASE[token]))
        elif token not in _NEUTRAL:
            key.append((_LETTERS, token))
    while key and key[-1] == _ZERO:
        key.pop()
    key.append((_END,))
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
    string that cannot be a version (empty, unprintable characters, over 256 characters).
    Keys of different ecosystems are not comparable with each other."""
    return _KEYS[ecosystem](version)


def compare(ecosystem: Ecosystem, a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` sorts before, with or after `b`."""
    key_a, key_b = sort_key(ecosystem, a), sort_key(ecosystem, b)
    return (key_a > key_b) - (key_a < key_b)


# --- OSV ranges ------------------------------------------------------------------------------

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True)
class RangeEvent:
    """One event of an OSV range; VersionError for an unknown kind or an impossible version."""

    kind: str  # introduced | fixed | last_affected | limit
    version: str

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise VersionError(f"unknown OSV range event {str(self.kind)[:40]!r}")
        try:
            _checked(self.version)
        except VersionError as exc:
            raise VersionError(f"OSV range event {self.kind}: {exc}") from None


_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}
_BEFORE_ALL = (0,)  # introduced "0"
_AT = 1  # (1, key): at a version


@lru_cache(maxsize=65536)
def _sorted_events(
    ecosystem: Ecosystem, events: tuple[RangeEvent, ...]
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """(kind, position) of the introduced, fixed and last_affected events by position,
    introduced "0" first; at one version an introduction comes before a fix, so
    `introduced: X, fixed: X` affects nothing."""
    keyed = []
    for event in events:
        if event.kind == "limit":
            continue
        if event.kind == "introduced" and event.version == "0":
            position: tuple[Any, ...] = _BEFORE_ALL
        else:
            position = (_AT, sort_key(ecosystem, event.version))
        keyed.append((position, _EVENT_ORDER[event.kind], event.kind))
    keyed.sort(key=lambda item: item[:2])
    return tuple((kind, position) for position, _, kind in keyed)


def _below_limits(
    ecosystem: Ecosystem, target: tuple[Any, ...], events: Sequence[RangeEvent]
) -> bool:
    """OSV's BeforeLimits: no limit (an implicit "*"), or below any one limit, as each limit
    extends the range to one more branch; a limit containing "*" is infinity."""
    limits = [event.version for event in events if event.kind == "limit"]
    if not limits or any("*" in limit for limit in limits):
        return True
    return any(target < sort_key(ecosystem, limit) for limit in limits)


def affected(
    ecosystem: Ecosystem,
    version: str,
    events: Sequence[RangeEvent],
    *,
    versions: Sequence[str] = (),
) -> bool:
    """OSV evaluation: `version` is affected when `versions` lists it, or when it is below one
    of the range's limits and the last event at or below it is an introduction
    (introduced <= v < fixed, v <= last_affected). VersionError if `version` is impossible;
    listed versions that are impossible never match."""
    target = sort_key(ecosystem, version)
    for listed in versions:
        try:
            if listed == version or sort_key(ecosystem, listed) == target:
                return True
        except VersionError:
            continue
    if not events or not _below_limits(ecosystem, target, events):
        return False
    vulnerable = False
    at = (_AT, target)
    for kind, position in _sorted_events(ecosystem, tuple(events)):
        if kind == "introduced":
            vulnerable = vulnerable or position <= at
        elif kind == "fixed":
            vulnerable = vulnerable and not position <= at
        else:  # last_affected
            vulnerable = vulnerable and not position < at
    return vulnerable


def first_fixed(ecosystem: Ecosystem, version: str, events: Sequence[RangeEvent]) -> str | None:
    """The lowest `fixed` version above an affected `version` (what to upgrade to), or None when
    `version` is not affected by these events or no fix is known."""
    if not affected(ecosystem, version, events):
        return None
    target = sort_key(ecosystem, version)
    fixes = [e.version for e in events if e.kind == "fixed"]
    above = [fix for fix in fixes if sort_key(ecosystem, fix) > target]
    return min(above, key=lambda fix: sort_key(ecosystem, fix)) if above else None


__all__ = [
    "EVENT_KINDS",
    "MAX_VERSION",
    "Ecosystem",
    "RangeEvent",
    "VersionError",
    "affected",
    "compare",
    "first_fixed",
    "sort_key",
]
