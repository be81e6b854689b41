"""Advisory ranges flattened into spans of encoded versions, [key_from, key_below) with the fix
that applies inside: a version is affected exactly when its encoding falls in one of its
advisory's spans, so SQLite answers a lookup from an index with no version logic in Python.

NVD criteria give one span each. An OSV range (an event list) gives the pieces on which
`versions.affected` holds, each with what `versions.first_fixed` says there; a listed version
gives a span of that version alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scanner.vulndb.keys import ABOVE_ALL, BELOW_ALL, encode, just_after
from scanner.vulndb.versions import Ecosystem, VersionError

Span = tuple[bytes, bytes, str | None]  # key_from (included), key_below (excluded), fixed version


def cpe_span(
    version: str | None,
    start_including: str | None,
    start_excluding: str | None,
    end_including: str | None,
    end_excluding: str | None,
) -> tuple[bytes, bytes] | None:
    """The versions one NVD criterion covers: its exact version (bounds aside), else the
    range its bounds close. None when it covers nothing a lookup may claim: no version and no
    bound (NVD's "every version", too broad), a bound no version compares with, an empty range."""
    upstream = Ecosystem.UPSTREAM
    try:
        if version is not None:
            exact = encode(upstream, version)
            return exact, just_after(exact)
        if not (start_including or start_excluding or end_including or end_excluding):
            return None
        low, high = BELOW_ALL, ABOVE_ALL
        if start_including is not None:
            low = max(low, encode(upstream, start_including))
        if start_excluding is not None:
            low = max(low, just_after(encode(upstream, start_excluding)))
        if end_including is not None:
            high = min(high, just_after(encode(upstream, end_including)))
        if end_excluding is not None:
            high = min(high, encode(upstream, end_excluding))
    except VersionError:
        return None
    return (low, high) if low < high else None


_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2}  # at one version, as OSV orders them


def osv_spans(ecosystem: Ecosystem, events: Iterable[tuple[str, str]]) -> list[Span]:
    """The spans of one OSV range, `versions.affected` and `first_fixed` made static: between
    two consecutive event versions nothing changes, so it is enough to evaluate each event
    version itself and each gap between them. VersionError for an impossible event version."""
    keyed: list[tuple[bytes, int, str]] = []
    fixes: list[tuple[bytes, str]] = []  # in the order of the events: ties go to the first
    limits: list[bytes] = []
    for kind, version in events:
        if kind == "limit":
            if "*" in version:
                limits.append(ABOVE_ALL)  # "*" is no limit at all
            else:
                limits.append(encode(ecosystem, version))
            continue
        if kind == "introduced" and version == "0":
            position = BELOW_ALL
        else:
            position = encode(ecosystem, version)
        keyed.append((position, _ORDER[kind], kind))
        if kind == "fixed":
            fixes.append((position, version))
    keyed.sort(key=lambda item: item[:2])
    positions = sorted({position for position, _, _ in keyed})
    pieces: list[Span] = []
    for number, position in enumerate(positions):
        after = just_after(position)
        following = positions[number + 1] if number + 1 < len(positions) else ABOVE_ALL
        for start, below, at in ((position, after, True), (after, following, False)):
            if start < below and _vulnerable(keyed, position, at):
                pieces.append((start, below, _first_fix(fixes, below)))
    ceiling = max(limits) if limits else ABOVE_ALL  # below any one limit: below the highest
    return _joined(
        (start, min(below, ceiling), fixed) for start, below, fixed in pieces if start < ceiling
    )


def _vulnerable(keyed: Sequence[tuple[bytes, int, str]], position: bytes, at: bool) -> bool:
    """`versions.affected` over the sorted events, for a version at `position` (`at`) or
    strictly between it and the next event version."""
    vulnerable = False
    for event_position, _, kind in keyed:
        reached = event_position <= position
        passed = event_position < position if at else reached
        if kind == "introduced":
            vulnerable = vulnerable or reached
        elif kind == "fixed":
            vulnerable = vulnerable and not reached
        else:  # last_affected: its own version is still affected
            vulnerable = vulnerable and not passed
    return vulnerable


def _first_fix(fixes: Sequence[tuple[bytes, str]], below: bytes) -> str | None:
    """The lowest fixed version above every version of a piece ending (excluded) at `below`:
    no event version lies inside a piece, so that is the lowest one at or above `below`."""
    best: tuple[bytes, str] | None = None
    for position, version in fixes:
        if position >= below and (best is None or position < best[0]):
            best = (position, version)
    return None if best is None else best[1]


def _joined(pieces: Iterable[Span]) -> list[Span]:
    """Adjacent pieces with the same fix as one span."""
    spans: list[Span] = []
    for start, below, fixed in pieces:
        if spans and spans[-1][1] == start and spans[-1][2] == fixed:
            spans[-1] = (spans[-1][0], below, fixed)
        elif start < below:
            spans.append((start, below, fixed))
    return spans


def listed_span(ecosystem: Ecosystem, version: str) -> Span | None:
    """An OSV `versions` entry: that version alone, no fix named; None if it is impossible."""
    try:
        exact = encode(ecosystem, version)
    except VersionError:
        return None
    return exact, just_after(exact), None


__all__ = ["Span", "cpe_span", "listed_span", "osv_spans"]
