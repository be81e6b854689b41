"""Ranges flattened into spans of encoded versions say exactly what versions.affected and
first_fixed say (OSV), and what NVD's bounds say (CPE criteria), for every version."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scanner.vulndb.keys import encode
from scanner.vulndb.spans import Span, cpe_span, listed_span, osv_spans
from scanner.vulndb.versions import (
    Ecosystem,
    RangeEvent,
    VersionError,
    affected,
    first_fixed,
    sort_key,
)

UPSTREAM = Ecosystem.UPSTREAM
SMALL = st.sampled_from(
    ["0", "1", "1.0", "1.0.0", "1.1", "1.2rc1", "1.2", "1.2p1", "2", "2.0a", "3"]
)
KINDS = st.sampled_from(["introduced", "fixed", "last_affected", "limit"])
EVENTS = st.lists(
    st.tuples(KINDS, st.one_of(SMALL, st.just("*"))).filter(lambda e: e != ("introduced", "*")),
    min_size=1,
    max_size=6,
)
TARGETS = ["0", "0.5", "1", "1.0.0", "1.0.1", "1.1", "1.2rc1", "1.2", "1.2p1", "1.5", "2", "3", "9"]


def _in(spans: list[Span], version_key: bytes) -> list[Span]:
    return [s for s in spans if s[0] <= version_key < s[1]]


def _osv_agrees(ecosystem: Ecosystem, events: list[tuple[str, str]], targets: list[str]) -> None:
    spans = osv_spans(ecosystem, events)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # disjoint, sorted
    ranged = [RangeEvent(kind, version) for kind, version in events]
    for target in targets:
        covering = _in(spans, encode(ecosystem, target))
        assert len(covering) <= 1
        expected = affected(ecosystem, target, ranged)
        assert bool(covering) == expected, (events, target)
        if covering:
            assert covering[0][2] == first_fixed(ecosystem, target, ranged), (events, target)


@settings(max_examples=1500, deadline=None)
@given(EVENTS)
@example([("introduced", "1.0"), ("last_affected", "1.2"), ("fixed", "1.2")])
@example([("introduced", "1.0"), ("fixed", "1.0")])
@example([("introduced", "1.1"), ("fixed", "1.0"), ("introduced", "0")])
@example([("introduced", "0"), ("fixed", "1.1"), ("limit", "1.0"), ("limit", "1.0.0")])
@example([("introduced", "1"), ("fixed", "1.0"), ("fixed", "1.0.0"), ("fixed", "2")])
def test_osv_spans_are_osv_evaluation(events: list[tuple[str, str]]) -> None:
    _osv_agrees(UPSTREAM, events, TARGETS + [v for _, v in events if v != "*"])


DEBIAN_VERSIONS = ["1:9.2p1-2", "1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", "1:9.3p1-1", "0"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["introduced", "fixed", "last_affected"]),
            st.sampled_from(DEBIAN_VERSIONS),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_osv_spans_in_dpkg_order(events: list[tuple[str, str]]) -> None:
    targets = [*DEBIAN_VERSIONS, "1:8.4p1-5", "1:9.2p1-2+deb12u1", "1:9.2p1-2+deb12u10", "2:1"]
    _osv_agrees(Ecosystem.DEBIAN, events, targets)


def test_regresshion_range_is_one_span_per_piece() -> None:
    events = [("introduced", "0"), ("fixed", "4.4p1"), ("introduced", "8.5p1"), ("fixed", "9.8p1")]
    spans = osv_spans(UPSTREAM, events)
    assert [fixed for _, _, fixed in spans] == ["4.4p1", "9.8p1"]
    assert osv_spans(UPSTREAM, [("introduced", "1.0"), ("fixed", "1.0")]) == []
    assert osv_spans(UPSTREAM, [("limit", "2.0")]) == []


def test_listed_versions_are_points() -> None:
    point = listed_span(Ecosystem.PYPI, "1.0")
    assert point is not None and point[2] is None
    assert point[0] <= encode(Ecosystem.PYPI, "1.0.0") < point[1]
    assert not point[0] <= encode(Ecosystem.PYPI, "1.0.post1") < point[1]
    assert listed_span(Ecosystem.PYPI, "\x1b[0m") is None


def _covers(target: str, bounds: tuple[str | None, ...]) -> bool:
    """NVD's reading of one criterion, on sort keys: what lookups did before spans."""
    key = sort_key(UPSTREAM, target)
    exact, start_in, start_ex, end_in, end_ex = (
        None if b is None else sort_key(UPSTREAM, b) for b in bounds
    )
    if exact is not None:
        return key == exact
    return not (
        (start_in is not None and key < start_in)
        or (start_ex is not None and key <= start_ex)
        or (end_in is not None and key > end_in)
        or (end_ex is not None and key >= end_ex)
    )


BOUND = st.one_of(st.none(), SMALL)


@settings(max_examples=800, deadline=None)
@given(st.tuples(BOUND, BOUND, BOUND, BOUND, BOUND))
@example((None, None, None, None, None))
@example((None, "1.2", None, None, "1.2"))
@example(("1.2p1", None, None, None, "1.0"))
def test_cpe_span_is_nvd_bounds(bounds: tuple[str | None, ...]) -> None:
    span = cpe_span(*bounds)
    if not any(bounds):
        assert span is None  # "every version" is never claimed
        return
    for target in TARGETS:
        inside = span is not None and span[0] <= encode(UPSTREAM, target) < span[1]
        assert inside == _covers(target, bounds), (bounds, target)


def test_a_bound_no_version_compares_with_covers_nothing() -> None:
    with pytest.raises(VersionError):
        encode(UPSTREAM, "1.0\x00")
    assert cpe_span(None, "1.0", None, "1.0\x00", None) is None
    assert cpe_span(None, "2.0", None, None, "1.0") is None  # an empty range
