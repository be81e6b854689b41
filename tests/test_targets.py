"""Target specs, exclusions, lazy expansion and the scope guard (scanner.targets)."""

from __future__ import annotations

import ipaddress
import socket
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.errors import ConfigError, ScopeError
from scanner.targets import (
    _SPECIAL_V4,
    _SPECIAL_V6,
    MAX_LIST_FILE_BYTES,
    MAX_LIST_LINE,
    MAX_LISTED,
    Scope,
    Target,
    TargetSet,
    check_scope,
    parse_targets,
)

NAMES = {
    "app.example": ["203.0.113.9"],
    "db.corp.example": ["10.0.0.5", "2001:db8::5"],
    "web.corp.example": ["10.0.0.200"],
    "broken.example": ["not-an-ip"],
}


def fake_resolve(name: str) -> list[str]:
    """DNS for the test names; anything else fails like getaddrinfo does."""
    try:
        return list(NAMES[name.lower().rstrip(".")])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


def parse(*specs: str, exclude: tuple[str, ...] = ()) -> TargetSet:
    return parse_targets(specs, exclude, resolve=fake_resolve)


def addresses(targets: TargetSet) -> list[str]:
    return [t.address for t in targets]


# --- valid specs ---------------------------------------------------------------------------

VALID = [
    ("192.0.2.7", ["192.0.2.7"]),
    ("2001:db8::1", ["2001:db8::1"]),
    ("2001:0DB8:0:0::1", ["2001:db8::1"]),  # canonical, compressed, lower case
    ("10.0.0.0/30", ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    ("10.0.0.9/32", ["10.0.0.9"]),
    ("10.0.0.0/255.255.255.254", ["10.0.0.0", "10.0.0.1"]),
    ("10.0.0.1-3", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    ("10.0.0.254-10.0.1.1", ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]),
    ("10.0.0.5-10.0.0.5", ["10.0.0.5"]),
    ("10.0.1-2.1-2", ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"]),
    (
        "2001:db8::fe-2001:db8::101",
        ["2001:db8::fe", "2001:db8::ff", "2001:db8::100", "2001:db8::101"],
    ),
    ("2001:db8::/127", ["2001:db8::", "2001:db8::1"]),
    ("10.0.0.1,10.0.0.5", ["10.0.0.1", "10.0.0.5"]),
    ("10.0.0.1, 10.0.0.2,", ["10.0.0.1", "10.0.0.2"]),
    ("app.example", ["203.0.113.9"]),
    ("DB.corp.example.", ["10.0.0.5", "2001:db8::5"]),
]


@pytest.mark.parametrize(("spec", "expected"), VALID)
def test_valid_spec_expands_to_exactly_these_addresses(spec: str, expected: list[str]) -> None:
    targets = parse(spec)
    assert addresses(targets) == expected
    assert len(targets) == len(expected)
    assert targets.specs == (spec,)


COUNTS = [
    ("10.0.0.0/16", 65_536, "10.0.0.0", "10.0.255.255"),
    ("10.0.0.0/8", 2**24, "10.0.0.0", "10.255.255.255"),
    ("10.0.0.1-10.0.1.20", 276, "10.0.0.1", "10.0.1.20"),
    ("10.0.*.1", 256, "10.0.0.1", "10.0.255.1"),
    ("10.0.1-3.*", 768, "10.0.1.0", "10.0.3.255"),
    ("10.*.*.1", 65_536, "10.0.0.1", "10.255.255.1"),
    ("2001:db8::/112", 65_536, "2001:db8::", "2001:db8::ffff"),
]


@pytest.mark.parametrize(("spec", "count", "first", "last"), COUNTS)
def test_large_spec_counts_without_expanding(spec: str, count: int, first: str, last: str) -> None:
    targets = parse(spec)
    assert len(targets) == count
    assert next(iter(targets)).address == first
    assert first in targets and last in targets
    if count <= 65_536:
        listed = addresses(targets)
        assert len(listed) == count and listed[-1] == last


def test_ipv4_comes_before_ipv6_and_order_is_ascending() -> None:
    targets = parse("2001:db8::2", "10.0.0.9", "2001:db8::1", "10.0.0.1")
    assert addresses(targets) == ["10.0.0.1", "10.0.0.9", "2001:db8::1", "2001:db8::2"]


def test_host_names_label_their_addresses() -> None:
    targets = parse("db.corp.example", "10.0.0.4-6", "app.example")
    assert list(targets) == [
        Target("10.0.0.4"),
        Target("10.0.0.5", "db.corp.example"),
        Target("10.0.0.6"),
        Target("203.0.113.9", "app.example"),
        Target("2001:db8::5", "db.corp.example"),
    ]


def test_localhost_resolves_with_the_system_resolver() -> None:
    targets = parse_targets(["localhost"])
    found = addresses(targets)
    assert found and set(found) <= {"127.0.0.1", "::1"}
    assert all(t.hostname == "localhost" for t in targets)


def test_contains_answers_for_any_text() -> None:
    targets = parse("10.0.0.0/24", "2001:db8::/120")
    assert "10.0.0.77" in targets
    assert "2001:db8::ff" in targets and "2001:0db8::00ff" in targets
    assert "10.0.1.0" not in targets and "2001:db8::100" not in targets
    assert "not an address" not in targets and "" not in targets
    assert 42 not in targets


# --- duplicates and exclusions ---------------------------------------------------------------


def test_overlapping_specs_count_each_address_once() -> None:
    targets = parse("10.0.0.0/24", "10.0.0.10-20", "10.0.0.5", "10.0.0.128/25", "10.0.0.5")
    assert len(targets) == 256
    assert len(addresses(targets)) == len(set(addresses(targets))) == 256


def test_a_name_resolving_to_a_given_address_adds_nothing() -> None:
    targets = parse("10.0.0.5", "db.corp.example", "10.0.0.0/29")
    assert len(targets) == 9  # 10.0.0.0-7 and 2001:db8::5
    assert Target("10.0.0.5", "db.corp.example") in list(targets)


def test_exclude_a_half_of_a_network() -> None:
    targets = parse("10.0.0.0/24", exclude=("10.0.0.0/25",))
    assert len(targets) == 128
    assert addresses(targets)[0] == "10.0.0.128"
    assert "10.0.0.127" not in targets
    assert targets.excludes == ("10.0.0.0/25",)


def test_exclude_a_host_name_removes_its_addresses() -> None:
    targets = parse("10.0.0.0/24", "2001:db8::/125", exclude=("db.corp.example",))
    assert len(targets) == 256 + 8 - 2
    assert "10.0.0.5" not in targets and "2001:db8::5" not in targets


def test_exclusions_in_ranges_files_and_commas(tmp_path: Path) -> None:
    listing = tmp_path / "skip.txt"
    listing.write_text("# maintenance window\n10.0.0.10-19\n\n10.0.0.200  # printer\n")
    targets = parse("10.0.0.0/24", exclude=(f"@{listing}", "10.0.0.1,10.0.0.2"))
    assert len(targets) == 256 - 10 - 1 - 2
    assert {"10.0.0.1", "10.0.0.15", "10.0.0.200"}.isdisjoint(addresses(targets))


def test_excluding_everything_leaves_an_empty_set() -> None:
    targets = parse("10.0.0.0/28", exclude=("10.0.0.0/24",))
    assert len(targets) == 0
    assert list(targets) == []
    assert list(targets.chunks(4)) == []


def test_excluded_name_labels_are_dropped() -> None:
    targets = parse("db.corp.example", exclude=("10.0.0.5",))
    assert list(targets) == [Target("2001:db8::5", "db.corp.example")]


# --- malformed specs -----------------------------------------------------------------------

MALFORMED = [
    ("10.0.0.256", "target '10.0.0.256': octet 256 is out of range 0-255"),
    ("10.0.0", "target '10.0.0': not an IPv4 address or range (expected four octets"),
    ("10.0.0.1.2", "expected four octets"),
    ("010.0.0.1", "octet '010' has a leading zero"),
    ("10.0.0.1/24", "host bits are set; did you mean 10.0.0.0/24?"),
    ("2001:db8::1/64", "host bits are set; did you mean 2001:db8::/64?"),
    ("10.0.0.0/33", "target '10.0.0.0/33': not a valid CIDR"),
    ("2001:db8::/129", "target '2001:db8::/129': not a valid CIDR"),
    ("10.0.0.0/", "not a valid CIDR"),
    ("10.0.0.50-1", "octet range 50-1 runs backwards"),
    ("10.0.0.9-10.0.0.1", "the range runs backwards; write it as 10.0.0.1-10.0.0.9"),
    ("2001:db8::9-2001:db8::1", "runs backwards; write it as 2001:db8::1-2001:db8::9"),
    ("10.0.0.1-", "bad octet ''"),
    ("10.0.0.1-10.0.0.x", "target '10.0.0.1-10.0.0.x': host name does not resolve"),
    ("10.0.0.1-10.0.0.300", "target '10.0.0.1-10.0.0.300': Octet 300 (> 255) not permitted"),
    ("2001:db8::zz", "target '2001:db8::zz'"),
    ("fe80::1%eth0", "zone indexes (%eth0) are not supported"),
    ("*.*.*.1", "expands to 16,777,216 separate ranges (at most 65,536)"),
    ("0.0.0.0/0", "4,294,967,296 addresses, more than 16,777,216"),
    ("2001:db8::/64", "18,446,744,073,709,551,616 addresses"),
    ("under_score.example", "not an address, CIDR, range or host name"),
    ("-leading.example", "not an address, CIDR, range or host name"),
    ("a..b", "not an address, CIDR, range or host name"),
    ("bücher.example", "not an address, CIDR, range or host name"),
    ("x" * 64 + ".example", "not an address, CIDR, range or host name"),
    ("nowhere.example", "target 'nowhere.example': host name does not resolve (Name or"),
    ("broken.example", "the resolver returned 'not-an-ip', not an IP"),
    ("@", "a file name must follow '@'"),
]


@pytest.mark.parametrize(("spec", "message"), MALFORMED)
def test_malformed_spec_is_refused_with_its_name(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(spec)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_malformed_exclusion_says_it_is_one() -> None:
    with pytest.raises(ConfigError, match=r"^exclusion '10\.0\.0\.300': octet 300"):
        parse("10.0.0.0/24", exclude=("10.0.0.300",))


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match=r"target list .*nope\.txt: file not found"):
        parse(f"@{missing}")


def test_binary_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "hosts.bin"
    junk.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"hosts\.bin: not UTF-8 text"):
        parse(f"@{junk}")


# --- @file lists ---------------------------------------------------------------------------


def test_file_list_with_comments_blank_lines_and_commas(tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text(
        "# lab hosts\n\n10.0.0.1\n  10.0.0.2-3   # rack 2\n10.0.0.10,10.0.0.11\napp.example\n"
    )
    targets = parse(f"@{listing}", "10.0.0.3")
    assert addresses(targets) == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.10",
        "10.0.0.11",
        "203.0.113.9",
    ]
    assert targets.specs == (f"@{listing}", "10.0.0.3")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("10.0.0.300", "target '10.0.0.300': octet 300 is out of range"),
        ("10.0.0.1/24", "did you mean 10.0.0.0/24?"),
        ("nowhere.example", "host name does not resolve"),
        ("@other.txt", "an @file list cannot include another one"),
    ],
)
def test_bad_line_in_a_file_names_path_and_line(tmp_path: Path, line: str, reason: str) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text(f"# header\n10.0.0.1\n\n{line}\n10.0.0.2\n")
    with pytest.raises(ConfigError) as caught:
        parse(f"@{listing}")
    assert str(caught.value).startswith(f"{listing}:4: ")
    assert reason in str(caught.value)


def test_overlong_line_in_a_file_names_path_and_line(tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text("10.0.0.1\n" + "1" * (MAX_LIST_LINE + 1) + "\n10.0.0.2\n")
    with pytest.raises(ConfigError) as caught:
        parse(f"@{listing}")
    assert str(caught.value).startswith(f"{listing}:2: ")
    assert f"longer than {MAX_LIST_LINE} characters" in str(caught.value)
    # A line of exactly the limit is read (and judged on what it says).
    listing.write_text("10.0.0.1" + " " * (MAX_LIST_LINE - 8) + "\n10.0.0.2")
    assert addresses(parse(f"@{listing}")) == ["10.0.0.1", "10.0.0.2"]


def test_oversized_file_is_refused_before_reading_it(tmp_path: Path) -> None:
    listing = tmp_path / "huge.txt"
    with listing.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_LIST_FILE_BYTES + 1)
    with pytest.raises(ConfigError, match=r"huge\.txt: 16,777,217 bytes, more than the 16 MiB"):
        parse(f"@{listing}")


def test_hostile_spec_text_is_escaped_and_bounded() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("\x1b]0;pwned\x07" + "y" * 5000)
    message = str(caught.value)
    assert "\x1b" not in message and "\x07" not in message
    assert len(message) < 1000


# --- chunks --------------------------------------------------------------------------------


def test_chunks_are_ordered_and_bounded() -> None:
    chunks = list(parse("10.0.0.0/29", "2001:db8::1").chunks(4))
    assert [[t.address for t in chunk] for chunk in chunks] == [
        ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
        ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"],
        ["2001:db8::1"],
    ]


def test_chunks_skip_finished_addresses() -> None:
    done = {"10.0.0.0", "10.0.0.1", "10.0.0.5", "2001:db8::1"}
    chunks = list(parse("10.0.0.0/29", "2001:db8::1-2001:db8::2").chunks(3, skip=done))
    assert [[t.address for t in chunk] for chunk in chunks] == [
        ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
        ["10.0.0.6", "10.0.0.7", "2001:db8::2"],
    ]


def test_chunks_are_lazy_over_a_large_set() -> None:
    chunks = parse("10.0.0.0/8").chunks(16)
    first = next(chunks)
    assert [t.address for t in first][-1] == "10.0.0.15"
    assert next(chunks)[0].address == "10.0.0.16"


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(parse("10.0.0.1").chunks(0))


# --- scope ---------------------------------------------------------------------------------


def test_targets_inside_the_scope_pass() -> None:
    scope = Scope.parse(["10.0.0.0/16", "192.0.2.0/24", "2001:db8::/32"])
    check_scope(parse("10.0.0.0/24", "10.0.255.1-10", "db.corp.example", "192.0.2.7"), scope)
    assert "10.0.3.4" in scope and "10.1.0.0" not in scope and "junk" not in scope
    assert scope.specs == ("10.0.0.0/16", "192.0.2.0/24", "2001:db8::/32")


def test_scope_error_names_each_target_and_the_part_outside() -> None:
    scope = Scope.parse(["10.0.0.0/24", "2001:db8::/120"])
    targets = parse(
        "10.0.0.0/23", "10.0.0.7", "192.0.2.7", "app.example", "2001:db8::f0-2001:db8::1ff"
    )
    assert scope.outside(targets) == [
        "10.0.0.0/23 (10.0.1.0-10.0.1.255 outside the scope)",
        "192.0.2.7",
        "app.example (203.0.113.9)",
        "2001:db8::f0-2001:db8::1ff (2001:db8::100-2001:db8::1ff outside the scope)",
    ]
    with pytest.raises(ScopeError) as caught:
        check_scope(targets, scope)
    message = str(caught.value)
    assert message.startswith("4 target(s) lie outside the scope")
    assert "10.0.0.0/23 (10.0.1.0-10.0.1.255 outside the scope)" in message
    assert "10.0.0.7" not in message
    assert message.endswith("widen --scope or remove the targets")
    assert caught.value.exit_code == 2


def test_excluded_addresses_need_no_scope() -> None:
    scope = Scope.parse(["10.0.0.0/24"])
    check_scope(parse("10.0.0.0/23", exclude=("10.0.1.0/24",)), scope)
    outside = scope.outside(parse("10.0.0.0/22", exclude=("10.0.1.0/24",)))
    assert outside == ["10.0.0.0/22 (10.0.2.0-10.0.3.255 outside the scope)"]


def test_scope_error_names_the_file_line_of_a_target(tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text("10.0.0.1\n172.16.0.1\n")
    with pytest.raises(ScopeError, match=rf"{listing}:2: 172\.16\.0\.1\. To proceed, widen"):
        check_scope(parse(f"@{listing}"), Scope.parse(["10.0.0.0/8"]))


def test_scope_error_lists_at_most_fifty_targets() -> None:
    specs = [f"10.1.{i}.1" for i in range(MAX_LISTED + 7)]
    with pytest.raises(ScopeError) as caught:
        check_scope(parse(*specs), Scope.parse(["10.0.0.0/16"]))
    message = str(caught.value)
    assert message.startswith(f"{MAX_LISTED + 7} target(s)")
    assert f"10.1.{MAX_LISTED - 1}.1;" in message and f"10.1.{MAX_LISTED}.1" not in message
    assert "; … and 7 more. " in message


def test_many_fragments_outside_are_summarised() -> None:
    outside = Scope.parse(["10.0.0.0/24"]).outside(parse("10.0.0-9.1"))
    assert outside == [
        "10.0.0-9.1 (10.0.1.1, 10.0.2.1, 10.0.3.1, … +6 more ranges outside the scope)"
    ]


def test_empty_scope_refuses_everything() -> None:
    with pytest.raises(ScopeError, match=r"outside the scope \(the scope is empty\)"):
        check_scope(parse("10.0.0.1"), Scope.parse([]))


def test_scope_from_a_file_and_ranges(tmp_path: Path) -> None:
    listing = tmp_path / "scope.txt"
    listing.write_text("# allowed\n10.0.0.0/24\n10.0.1.1-10\n2001:db8::/64\n")
    scope = Scope.parse([f"@{listing}", "192.0.2.1-192.0.2.3"])
    check_scope(parse("10.0.0.0/24", "10.0.1.5", "192.0.2.2", "2001:db8::1"), scope)
    with pytest.raises(ScopeError, match=r"10\.0\.1\.11"):
        check_scope(parse("10.0.1.11"), scope)


def test_scope_refuses_host_names_and_bad_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^scope entry 'app\.example': .*not host names"):
        Scope.parse(["app.example"])
    listing = tmp_path / "scope.txt"
    listing.write_text("10.0.0.0/8\n10.0.0.0/33\n")
    with pytest.raises(ConfigError, match=rf"^{listing}:2: scope entry '10\.0\.0\.0/33'"):
        Scope.parse([f"@{listing}"])


# --- globally routable addresses -----------------------------------------------------------


def test_private_targets_are_their_own_scope() -> None:
    check_scope(
        parse("10.0.0.0/16", "192.168.1.1", "127.0.0.5", "fd00::1", "db.corp.example"), None
    )


def test_global_targets_need_an_explicit_scope() -> None:
    targets = parse("10.0.0.1", "8.8.8.8", "app.example", "2606:4700::1111", "100.64.0.1")
    assert targets.has_global() == ["8.8.8.8", "2606:4700::1111"]
    with pytest.raises(ScopeError) as caught:
        check_scope(targets, None)
    message = str(caught.value)
    assert "8.8.8.8; 2606:4700::1111" in message
    assert "10.0.0.1" not in message and "app.example" not in message
    assert "--scope" in message
    check_scope(targets, Scope.parse(["8.8.8.8", "2606:4700::/32", "10.0.0.0/8", "0.0.0.0/0"]))


def test_global_part_of_a_range_is_named() -> None:
    targets = parse("172.15.255.254-172.16.0.1")
    assert targets.has_global() == [
        "172.15.255.254-172.16.0.1 (172.15.255.254-172.15.255.255 globally routable)"
    ]


def test_global_name_is_named_with_its_address() -> None:
    NAMES["global.example"] = ["198.41.0.4"]
    try:
        assert parse("global.example").has_global() == ["global.example (198.41.0.4)"]
    finally:
        del NAMES["global.example"]


def _edges(networks: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for text in networks:
        net = ipaddress.ip_network(text)
        make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
        top = 2**net.max_prefixlen - 1
        for value in (int(net.network_address), int(net.broadcast_address)):
            found.extend(
                str(make(near)) for near in (value - 1, value, value + 1) if 0 <= near <= top
            )
    return found


def test_global_matches_ipaddress_at_every_special_boundary() -> None:
    mapped = [f"::ffff:{a}" for a in _edges(_SPECIAL_V4)]
    for address in _edges(_SPECIAL_V4) + _edges(_SPECIAL_V6) + mapped:
        expected = ipaddress.ip_address(address).is_global
        assert bool(parse(address).has_global()) == expected, address


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1))
def test_global_matches_ipaddress_for_any_ipv4(value: int) -> None:
    address = str(ipaddress.IPv4Address(value))
    assert bool(parse(address).has_global()) == ipaddress.IPv4Address(value).is_global


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(0, 2**128 - 1),
        st.integers(0, 2**48 - 1).map(lambda v: (0xFFFF << 32) + (v % 2**32)),
        st.integers(0, 2**112 - 1).map(lambda v: (0x2001 << 112) + v),
        st.integers(0, 2**120 - 1).map(lambda v: (0xFF << 120) + v),
    )
)
def test_global_matches_ipaddress_for_any_ipv6(value: int) -> None:
    address = ipaddress.IPv6Address(value)
    assert bool(parse(str(address)).has_global()) == address.is_global


# --- memory --------------------------------------------------------------------------------


def _peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("network", "count"), [("10.0.0.0/16", 2**16), ("10.0.0.0/8", 2**24)])
def test_parsing_and_checking_a_large_network_costs_no_memory(network: str, count: int) -> None:
    def parse_count_check() -> None:
        targets = parse_targets([network], ["10.0.0.1"], resolve=fake_resolve)
        assert len(targets) == count - 1
        check_scope(targets, Scope.parse(["10.0.0.0/8"]))
        check_scope(targets, None)

    assert _peak(parse_count_check) < 100 * 1024


def test_iterating_a_slash_16_streams() -> None:
    targets = parse("10.0.0.0/16")

    def walk() -> None:
        seen = 0
        for target in targets:
            seen += bool(target.address)
        assert seen == 2**16

    assert _peak(walk) < 100 * 1024


# --- properties against a brute-force model ------------------------------------------------

V4_BASE = int(ipaddress.IPv4Address("10.0.0.0"))
V6_BASE = int(ipaddress.IPv6Address("2001:db8::"))
UNIVERSE = 1024  # the model works inside 10.0.0.0-10.0.3.255 and 2001:db8::-2001:db8::3ff

Spec = tuple[str, frozenset[str]]


def _v4(offset: int) -> str:
    return str(ipaddress.IPv4Address(V4_BASE + offset))


def _v6(offset: int) -> str:
    return str(ipaddress.IPv6Address(V6_BASE + offset))


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    kind = draw(st.sampled_from(["v4", "v4range", "octets", "full", "cidr", "v6", "v6range"]))
    a, b = sorted(draw(st.lists(st.integers(0, UNIVERSE - 1), min_size=2, max_size=2)))
    if kind == "v4":
        return _v4(a), frozenset({_v4(a)})
    if kind == "v6":
        return _v6(a), frozenset({_v6(a)})
    if kind == "v4range":  # last-octet range inside one /24
        third, lo, hi = a // 256, a % 256, max(a % 256, b % 256)
        spec = f"10.0.{third}.{lo}-{hi}"
        return spec, frozenset(f"10.0.{third}.{x}" for x in range(lo, hi + 1))
    if kind == "octets":
        c1, c2 = sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)))
        d1, d2 = sorted(draw(st.lists(st.integers(0, 255), min_size=2, max_size=2)))
        last = draw(st.sampled_from([f"{d1}-{d2}", "*", str(d1)]))
        ds = {"*": range(256), str(d1): [d1]}.get(last, range(d1, d2 + 1))
        spec = f"10.0.{c1}-{c2}.{last}"
        return spec, frozenset(f"10.0.{c}.{d}" for c in range(c1, c2 + 1) for d in ds)
    if kind == "full":
        return f"{_v4(a)}-{_v4(b)}", frozenset(_v4(x) for x in range(a, b + 1))
    if kind == "v6range":
        return f"{_v6(a)}-{_v6(b)}", frozenset(_v6(x) for x in range(a, b + 1))
    prefix = draw(st.integers(22, 32))
    net = ipaddress.IPv4Network(f"{_v4(a)}/{prefix}", strict=False)
    return str(net), frozenset(str(x) for x in net)


def _order(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return parsed.version, int(parsed)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=1, max_size=5), st.lists(specs(), max_size=3))
def test_union_and_exclusion_match_a_set_model(wanted: list[Spec], excluded: list[Spec]) -> None:
    model = set().union(*(s for _, s in wanted)) - set().union(*(s for _, s in excluded))
    targets = parse_targets([t for t, _ in wanted], [t for t, _ in excluded])
    listed = addresses(targets)
    assert listed == sorted(model, key=_order)
    assert len(targets) == len(listed)
    assert all(a in targets for a in listed)
    for offset in (0, 1, 255, 256, 511, 1023):
        assert (_v4(offset) in targets) == (_v4(offset) in model)
        assert (_v6(offset) in targets) == (_v6(offset) in model)
    flat = [t.address for chunk in targets.chunks(7) for t in chunk]
    assert flat == listed


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=1, max_size=4), st.lists(specs(), min_size=1, max_size=3))
def test_scope_refuses_exactly_when_a_target_lies_outside(
    wanted: list[Spec], allowed: list[Spec]
) -> None:
    inside = set().union(*(s for _, s in allowed))
    targets = parse_targets([t for t, _ in wanted])
    scope = Scope.parse([t for t, _ in allowed])
    outside_specs = [t for t, s in wanted if not s <= inside]
    described = scope.outside(targets)
    assert len(described) == len(dict.fromkeys(outside_specs))
    assert all(
        d.split(" (")[0] == t for d, t in zip(described, dict.fromkeys(outside_specs), strict=True)
    )
    if outside_specs:
        with pytest.raises(ScopeError):
            check_scope(targets, scope)
    else:
        check_scope(targets, scope)


# --- canonical forms: what a resumed scan scans ---------------------------------------------


def test_canonical_targets_are_merged_ranges_after_exclusions() -> None:
    targets = parse("10.0.0.0/30", "10.0.0.4", "10.0.0.9", "db.corp.example", exclude=("10.0.0.2",))
    assert targets.canonical() == [
        "10.0.0.0-10.0.0.1",
        "10.0.0.3-10.0.0.5",
        "10.0.0.9",
        "2001:db8::5",
    ]
    assert targets.labels == {"10.0.0.5": "db.corp.example", "2001:db8::5": "db.corp.example"}


def test_canonical_specs_parse_back_without_dns_or_files(tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text("10.0.1-2.*\napp.example\n")
    original = parse(f"@{listing}", "db.corp.example", exclude=("10.0.2.128/25",))
    listing.unlink()

    def no_dns(name: str) -> list[str]:
        raise AssertionError(f"looked up {name}")

    again = parse_targets(original.canonical(), resolve=no_dns, labels=original.labels)
    assert list(again) == list(original)  # same addresses, same names, same order
    assert again.canonical() == original.canonical() and again.labels == original.labels


def test_labels_outside_the_set_are_dropped_and_bad_ones_refused() -> None:
    targets = parse_targets(["10.0.0.1"], labels={"10.0.0.1": "a.example", "10.0.0.2": "b.example"})
    assert targets.labels == {"10.0.0.1": "a.example"}
    with pytest.raises(ConfigError, match="not an address and a host name"):
        parse_targets(["10.0.0.1"], labels={"10.0.0.1": "bad name\x1b[2J"})


def test_canonical_scope_reads_back_without_its_file(tmp_path: Path) -> None:
    scope_file = tmp_path / "scope.txt"
    scope_file.write_text("10.0.0.0/25\n10.0.0.128-10.0.0.130\n2001:db8::/126\n")
    scope = Scope.parse([f"@{scope_file}", "10.0.1.1"])
    assert scope.canonical() == ["10.0.0.0-10.0.0.130", "10.0.1.1", "2001:db8::-2001:db8::3"]
    scope_file.unlink()
    again = Scope.parse(scope.canonical())
    assert again.canonical() == scope.canonical()
    assert "10.0.0.130" in again and "10.0.0.131" not in again


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=1, max_size=5), st.lists(specs(), max_size=3))
def test_canonical_round_trip_matches_the_set(wanted: list[Spec], excluded: list[Spec]) -> None:
    targets = parse_targets([t for t, _ in wanted], [t for t, _ in excluded])
    again = parse_targets(targets.canonical())
    assert addresses(again) == addresses(targets)
    assert again.canonical() == targets.canonical()
