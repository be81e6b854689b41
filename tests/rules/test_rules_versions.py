"""Version ranges for the `version` operator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.rules.versions import compare_versions, parse_range, version_in_range


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("2.4.49", "2.4.50", -1),
        ("2.4.50", "2.4.50", 0),
        ("2.4.50", "2.4.5", 1),
        ("1.0rc1", "1.0", -1),  # PEP 440 pre-release
        ("8.9p1", "8.9", 1),  # fallback: p1 extends 8.9
        ("8.9p1", "8.10p1", -1),
        ("5.7.33-0ubuntu0.18.04.1", "5.7.34", -1),
        ("1.0a", "1.0.1", -1),  # letters rank below digits
    ],
)
def test_compare_versions(left: str, right: str, expected: int) -> None:
    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected


@pytest.mark.parametrize(
    ("value", "wanted", "expected"),
    [
        ("2.4.41", ">=2.4.0,<2.4.50", True),
        ("2.4.50", ">=2.4.0, <2.4.50", False),
        ("v1.2.3", "==1.2.3", True),
        ("1.2.3", "1.2.3", True),
        ("1.2.4", "!=1.2.3", True),
        ("7.2p2 Ubuntu 4ubuntu2.10", "<7.3", True),
        ("Debian", ">=0", False),
        ("", ">=0", False),
    ],
)
def test_version_in_range(value: str, wanted: str, expected: bool) -> None:
    assert version_in_range(value, parse_range(wanted)) is expected


@pytest.mark.parametrize("text", ["", ">=", ">>1", "1,,2", "~=1.0", ">=1 <2", "x" * 201])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_range(text)


versions = st.lists(st.integers(0, 30), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
) | st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}[a-z]{0,2}[0-9]{0,2}", fullmatch=True)


@given(versions, versions)
def test_comparison_is_antisymmetric(left: str, right: str) -> None:
    assert compare_versions(left, right) == -compare_versions(right, left)


numeric = st.lists(st.integers(0, 300), min_size=1, max_size=4)


@given(numeric, numeric)
def test_dotted_numbers_compare_like_zero_padded_tuples(left: list[int], right: list[int]) -> None:
    width = max(len(left), len(right))
    a, b = (tuple(v + [0] * (width - len(v))) for v in (left, right))
    expected = (a > b) - (a < b)
    assert compare_versions(".".join(map(str, left)), ".".join(map(str, right))) == expected
