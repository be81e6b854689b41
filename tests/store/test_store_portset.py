"""Port sets in nmap's services syntax: what a scan's ports_scanned covers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.errors import ConfigError
from scanner.store.portset import PortSet

ports = st.integers(min_value=0, max_value=65535)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("1,3-4,80", [1, 3, 4, 80], [0, 2, 5, 79, 81]),
        ("22", [22], [21, 23]),
        ("-100", [1, 100], [0, 101]),
        ("65000-", [65000, 65535], [64999]),
        (" 80 , 443 ,", [80, 443], [81]),
        ("", [], [0, 1, 80]),
    ],
)
def test_parse_and_membership(text: str, inside: list[int], outside: list[int]) -> None:
    ports_set = PortSet.parse(text)
    assert all(p in ports_set for p in inside)
    assert not any(p in ports_set for p in outside)


def test_adjacent_and_overlapping_ranges_merge_into_canonical_text() -> None:
    assert str(PortSet.parse("80,1-3,4,2-10,81")) == "1-10,80-81"
    assert PortSet.parse("1,2,3") == PortSet.parse("1-3")


@pytest.mark.parametrize("text", ["http", "80-20", "70000", "1-2-3", "22,ssh"])
def test_invalid_lists_name_the_bad_part(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid port list"):
        PortSet.parse(text)


def test_non_integers_are_never_members() -> None:
    assert "80" not in PortSet.parse("80")


@given(st.sets(ports, max_size=60), st.sets(ports, max_size=60), ports)
def test_behaves_like_a_set_of_ports(a: set[int], b: set[int], probe: int) -> None:
    set_a = PortSet.of_ranges((p, p) for p in a)
    set_b = PortSet.of_ranges((p, p) for p in b)
    assert (probe in set_a) == (probe in a)
    assert (probe in (set_a | set_b)) == (probe in (a | b))
    assert PortSet.parse(str(set_a)) == set_a
