"""Target specs (addresses, CIDRs, ranges, host names, @files) and the scope guard.

Sets are sorted, merged integer intervals per address family, so a /8 costs a few objects and the
scope check is interval arithmetic done before a single packet is sent.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import math
import os
import re
import socket
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from scanner.errors import ConfigError, ScopeError
from scanner.safetext import for_terminal

MAX_ADDRESSES = 2**24  # more than this in one scan is almost always a typo in a prefix
MAX_PATTERN_RANGES = 65_536  # separate ranges one nmap-style octet pattern may expand to
MAX_LISTED = 50  # targets named in one scope error
MAX_LIST_FILE_BYTES = 16 * 1024 * 1024  # an @file larger than this is not a target list
MAX_LIST_LINE = 4096  # characters in one line of an @file
_MAX_SHOWN_RANGES = 3  # sub-ranges shown per target in an error

_V4_MAX = 2**32 - 1
_V6_MAX = 2**128 - 1
_V4_CHARS = re.compile(r"[0-9.*-]+")
_OCTET = re.compile(r"[0-9]{1,3}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_SEPARATORS = re.compile(r"[\s,]+")

Interval = tuple[int, int]  # inclusive bounds
Intervals = tuple[Interval, ...]
Resolver = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class Target:
    """One address to scan, with the host name it was given as (if any)."""

    address: str
    hostname: str | None = None


# --- interval arithmetic ---------------------------------------------------------------------


def _merge(intervals: Iterable[Interval]) -> Intervals:
    """Sorted, non-overlapping, non-adjacent intervals covering the same addresses."""
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _subtract(a: Intervals, b: Intervals) -> Intervals:
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        cur, k = lo, j
        while k < len(b) and b[k][0] <= hi and cur <= hi:
            b_lo, b_hi = b[k]
            if b_lo > cur:
                out.append((cur, b_lo - 1))
            cur = max(cur, b_hi + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _intersect(a: Intervals, b: Intervals, b_ends: list[int]) -> Intervals:
    # Bisecting into `b` keeps this O(|a| log |b|) when a small target meets a large set.
    out: list[Interval] = []
    for lo, hi in a:
        k = bisect.bisect_left(b_ends, lo)
        while k < len(b) and b[k][0] <= hi:
            out.append((max(lo, b[k][0]), min(hi, b[k][1])))
            k += 1
    return tuple(out)


@dataclass(frozen=True)
class _Ranges:
    """Addresses as merged intervals, IPv4 and IPv6 apart."""

    v4: Intervals = ()
    v6: Intervals = ()

    @classmethod
    def of(cls, v4: Iterable[Interval] = (), v6: Iterable[Interval] = ()) -> _Ranges:
        return cls(_merge(v4), _merge(v6))

    @classmethod
    def union_of(cls, parts: Iterable[_Ranges]) -> _Ranges:
        v4: list[Interval] = []
        v6: list[Interval] = []
        for part in parts:
            v4.extend(part.v4)
            v6.extend(part.v6)
        return cls.of(v4, v6)

    def families(self) -> tuple[tuple[int, Intervals], tuple[int, Intervals]]:
        return ((4, self.v4), (6, self.v6))

    def minus(self, other: _Ranges) -> _Ranges:
        return _Ranges(_subtract(self.v4, other.v4), _subtract(self.v6, other.v6))

    def intersect(self, other: _Ranges) -> _Ranges:
        v4_ends, v6_ends = other._ends
        return _Ranges(
            _intersect(self.v4, other.v4, v4_ends), _intersect(self.v6, other.v6, v6_ends)
        )

    def count(self) -> int:
        return sum(hi - lo + 1 for lo, hi in itertools.chain(self.v4, self.v6))

    def contains(self, version: int, value: int) -> bool:
        intervals = self.v4 if version == 4 else self.v6
        ends = self._ends[0 if version == 4 else 1]
        k = bisect.bisect_left(ends, value)
        return k < len(intervals) and intervals[k][0] <= value

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    @cached_property
    def _ends(self) -> tuple[list[int], list[int]]:
        return [hi for _, hi in self.v4], [hi for _, hi in self.v6]


def _format(version: int, value: int) -> str:
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return str(ipaddress.IPv6Address(value))


def _format_ranges(ranges: _Ranges) -> str:
    shown: list[str] = []
    total = len(ranges.v4) + len(ranges.v6)
    for version, intervals in ranges.families():
        for lo, hi in intervals:
            if len(shown) == _MAX_SHOWN_RANGES:
                return ", ".join(shown) + f", … +{total - len(shown)} more ranges"
            text = _format(version, lo)
            shown.append(text if lo == hi else f"{text}-{_format(version, hi)}")
    return ", ".join(shown)


def _canonical(ranges: _Ranges) -> list[str]:
    """Each interval as "first-last" (or one address): specs that parse back to `ranges`
    without a resolver or a file."""
    out: list[str] = []
    for version, intervals in ranges.families():
        for lo, hi in intervals:
            text = _format(version, lo)
            out.append(text if lo == hi else f"{text}-{_format(version, hi)}")
    return out


def _address_key(address: object) -> tuple[int, int] | None:
    """(version, integer) of an address string; None when it is not one."""
    if not isinstance(address, str):
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    return parsed.version, int(parsed)


# --- globally routable addresses -------------------------------------------------------------

# Every boundary where some Python's `ipaddress.is_global` may change its answer (IANA special
# purpose registries, old and new). Each stretch between two boundaries is classified by asking
# ipaddress itself, so the result is what `is_global` says on the running Python.
_SPECIAL_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32",
    "192.0.0.10/32", "192.0.0.170/31", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
)  # fmt: skip
_SPECIAL_V6 = (
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48",
    "2001:3::/32", "2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28",
    "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8",
)  # fmt: skip
_MAPPED_BASE = int(ipaddress.IPv6Address("::ffff:0:0"))


def _global_intervals(version: int) -> Intervals:
    top = _V4_MAX if version == 4 else _V6_MAX
    points = {0, top + 1}
    for text in _SPECIAL_V4 + _SPECIAL_V6:
        net = ipaddress.ip_network(text)
        # IPv4 boundaries also apply inside ::ffff:0:0/96, where newer Pythons defer to IPv4.
        offset = _MAPPED_BASE if version == 6 and net.version == 4 else 0
        if net.version == version or offset:
            points.add(int(net.network_address) + offset)
            points.add(int(net.broadcast_address) + offset + 1)
    bounds = sorted(points)
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return _merge((lo, hi - 1) for lo, hi in itertools.pairwise(bounds) if make(lo).is_global)


_GLOBAL = _Ranges(_global_intervals(4), _global_intervals(6))


# --- parsing specs ---------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return f"'{for_terminal(text, 100)}'"


@dataclass(frozen=True)
class _Piece:
    """One spec after splitting commas and expanding @files, with where it came from."""

    text: str
    where: str = ""  # "path:line" for a line of an @file

    def fail(self, kind: str, reason: str) -> ConfigError:
        prefix = f"{self.where}: " if self.where else ""
        return ConfigError(f"{prefix}{kind} {_quoted(self.text)}: {reason}")


def _split(text: str) -> list[str]:
    return [part for part in _SEPARATORS.split(text) if part]


def _read_list(path_text: str, kind: str) -> Iterator[_Piece]:
    if not path_text:
        raise ConfigError(f"{kind} '@': a file name must follow '@' (e.g. @hosts.txt)")
    path = Path(path_text)
    shown = for_terminal(str(path), 200)
    try:
        with path.open(encoding="utf-8", newline=None) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_LIST_FILE_BYTES:
                raise ConfigError(
                    f"{kind} list {shown}: {size:,} bytes, more than the "
                    f"{MAX_LIST_FILE_BYTES // (1024 * 1024)} MiB a list may hold; "
                    "split it or use CIDRs and ranges"
                )
            read = 0
            number = 0
            while True:
                # Bounded reads: a file without newlines (or one still growing) is never
                # buffered whole.
                line = handle.readline(MAX_LIST_LINE + 1)
                if not line:
                    break
                number += 1
                where = f"{shown}:{number}"
                if len(line) > MAX_LIST_LINE and not line.endswith("\n"):
                    raise ConfigError(
                        f"{where}: {kind} list line is longer than {MAX_LIST_LINE} characters; "
                        "put one target (or a few) per line"
                    )
                read += len(line)
                if read > MAX_LIST_FILE_BYTES:
                    raise ConfigError(
                        f"{where}: {kind} list {shown} holds more than "
                        f"{MAX_LIST_FILE_BYTES // (1024 * 1024)} MiB; split it or use CIDRs"
                    )
                for text in _split(line.split("#", 1)[0]):
                    if text.startswith("@"):
                        raise _Piece(text, where).fail(
                            kind, "an @file list cannot include another one; list its entries"
                        )
                    yield _Piece(text, where)
    except FileNotFoundError:
        raise ConfigError(
            f"{kind} list {shown}: file not found; check the path after '@'"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{kind} list {shown}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{kind} list {shown}: cannot read: {exc.strerror or exc}") from None


def _pieces(specs: Iterable[str], kind: str) -> Iterator[_Piece]:
    for spec in specs:
        for text in _split(spec):
            if text.startswith("@"):
                yield from _read_list(text[1:], kind)
            else:
                yield _Piece(text)


def _ipv4(piece: _Piece, kind: str, text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise piece.fail(kind, f"{for_terminal(exc, 200)}") from None


def _ipv6(piece: _Piece, kind: str, text: str) -> int:
    if "%" in text:
        raise piece.fail(kind, "zone indexes (%eth0) are not supported; drop the '%…' part")
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError as exc:
        raise piece.fail(kind, f"{for_terminal(exc, 200)}") from None


def _full_range(piece: _Piece, kind: str, version: int) -> _Ranges:
    parse = _ipv4 if version == 4 else _ipv6
    first, last = piece.text.split("-", 1)
    lo, hi = parse(piece, kind, first), parse(piece, kind, last)
    if lo > hi:
        raise piece.fail(kind, f"the range runs backwards; write it as {last}-{first}")
    return _Ranges(v4=((lo, hi),)) if version == 4 else _Ranges(v6=((lo, hi),))


def _cidr(piece: _Piece, kind: str) -> _Ranges:
    try:
        net = ipaddress.ip_network(piece.text, strict=True)
    except ValueError as exc:
        reason = str(exc)
        if "host bits set" in reason:
            loose = ipaddress.ip_network(piece.text, strict=False)
            raise piece.fail(kind, f"host bits are set; did you mean {loose}?") from None
        if "%" in piece.text:
            reason = "zone indexes (%eth0) are not supported"
        raise piece.fail(kind, f"not a valid CIDR: {for_terminal(reason, 200)}") from None
    interval = ((int(net.network_address), int(net.broadcast_address)),)
    return _Ranges(v4=interval) if net.version == 4 else _Ranges(v6=interval)


def _octet(piece: _Piece, kind: str, text: str) -> int:
    if not _OCTET.fullmatch(text):
        raise piece.fail(kind, f"bad octet {_quoted(text)} (expected 0-255, a-b or *)")
    if len(text) > 1 and text[0] == "0":
        raise piece.fail(kind, f"octet {_quoted(text)} has a leading zero (ambiguous: octal?)")
    value = int(text)
    if value > 255:
        raise piece.fail(kind, f"octet {value} is out of range 0-255")
    return value


def _octet_term(piece: _Piece, kind: str, term: str) -> Interval:
    if term == "*":
        return (0, 255)
    if "-" in term:
        first, last = term.split("-", 1)
        lo, hi = _octet(piece, kind, first), _octet(piece, kind, last)
        if lo > hi:
            raise piece.fail(kind, f"octet range {first}-{last} runs backwards")
        return (lo, hi)
    value = _octet(piece, kind, term)
    return (value, value)


def _octet_pattern(piece: _Piece, kind: str) -> _Ranges:
    """`10.0.0.7`, `10.0.0.1-50`, nmap-style `10.0.1-3.*`: a product of octet ranges."""
    terms = piece.text.split(".")
    if len(terms) != 4:
        raise piece.fail(
            kind, "not an IPv4 address or range (expected four octets, e.g. 10.0.0.1-50)"
        )
    octets = [_octet_term(piece, kind, term) for term in terms]
    # Octets right of `last_partial` span 0-255, so each choice of the octets left of it is one
    # contiguous interval.
    last_partial = 3
    while last_partial > 0 and octets[last_partial] == (0, 255):
        last_partial -= 1
    head = octets[:last_partial]
    pieces = math.prod(hi - lo + 1 for lo, hi in head)
    if pieces > MAX_PATTERN_RANGES:
        raise piece.fail(
            kind,
            f"expands to {pieces:,} separate ranges (at most {MAX_PATTERN_RANGES:,}); "
            "narrow the pattern or use CIDRs",
        )
    tail_bits = 8 * (3 - last_partial)
    low, high = octets[last_partial]
    intervals: list[Interval] = []
    for prefix in itertools.product(*(range(lo, hi + 1) for lo, hi in head)):
        base = 0
        for value in prefix:
            base = (base << 8) | value
        intervals.append(
            (
                ((base << 8) | low) << tail_bits,
                (((base << 8) | high) << tail_bits) | ((1 << tail_bits) - 1),
            )
        )
    return _Ranges(v4=tuple(intervals))


def _is_host_name(text: str) -> bool:
    """RFC 1123 syntax, with a last label that is not all digits (that would be an address)."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _parse_piece(piece: _Piece, kind: str) -> _Ranges | None:
    """The addresses a spec names, or None when it is a (syntactically valid) host name."""
    text = piece.text
    if "/" in text:
        return _cidr(piece, kind)
    if ":" in text:
        if text.count("-") == 1:
            return _full_range(piece, kind, 6)
        value = _ipv6(piece, kind, text)
        return _Ranges(v6=((value, value),))
    if _V4_CHARS.fullmatch(text):
        if text.count("-") == 1 and text.split("-", 1)[1].count(".") == 3:
            return _full_range(piece, kind, 4)
        return _octet_pattern(piece, kind)
    if _is_host_name(text):
        return None
    raise piece.fail(
        kind,
        "not an address, CIDR, range or host name "
        "(e.g. 192.0.2.7, 10.0.0.0/24, 10.0.0.1-50, 2001:db8::1, host.example, @file)",
    )


def resolve_host(name: str) -> list[str]:
    """Addresses of `name` from the system resolver, IPv4 and IPv6, without duplicates."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class _Names:
    """Host names resolved once each, remembering which name an address was given as."""

    resolve: Resolver
    cache: dict[str, _Ranges] = field(default_factory=dict)
    labels: dict[tuple[int, int], str] = field(default_factory=dict)

    def lookup(self, piece: _Piece, kind: str) -> _Ranges:
        name = piece.text
        key = name.lower()
        if key in self.cache:
            return self.cache[key]
        try:
            found = self.resolve(name)
        except OSError as exc:
            raise piece.fail(
                kind,
                f"host name does not resolve ({for_terminal(exc.strerror or exc, 200)}); "
                "check the spelling and DNS, or give the address",
            ) from None
        if not found:
            raise piece.fail(kind, "host name resolves to no address; give the address instead")
        v4: list[Interval] = []
        v6: list[Interval] = []
        for address in found:
            parsed = _address_key(address)
            if parsed is None:
                raise piece.fail(kind, f"the resolver returned {_quoted(str(address))}, not an IP")
            version, value = parsed
            (v4 if version == 4 else v6).append((value, value))
            self.labels.setdefault(parsed, name)
        ranges = _Ranges.of(v4, v6)
        self.cache[key] = ranges
        return ranges


@dataclass(frozen=True)
class _Item:
    """One target spec and the addresses it named, kept to explain scope refusals."""

    text: str
    where: str
    ranges: _Ranges
    is_name: bool

    def describe(self, part: _Ranges, whole: _Ranges, note: str) -> str:
        label = f"{self.where}: {self.text}" if self.where else self.text
        if self.is_name:
            return f"{label} ({_format_ranges(part)})"
        if part == whole:
            return label
        return f"{label} ({_format_ranges(part)} {note})"


# --- target sets and the scope ---------------------------------------------------------------


class TargetSet:
    """The unique addresses to scan: specs minus exclusions, iterated lazily in order."""

    def __init__(
        self,
        specs: tuple[str, ...],
        excludes: tuple[str, ...],
        items: tuple[_Item, ...],
        ranges: _Ranges,
        labels: dict[tuple[int, int], str],
    ) -> None:
        self.specs = specs  # as given, for the scan record
        self.excludes = excludes
        self._items = items
        self._ranges = ranges
        self._labels = labels

    def __len__(self) -> int:
        return self._ranges.count()

    def __iter__(self) -> Iterator[Target]:
        labels = self._labels
        for version, intervals in self._ranges.families():
            for lo, hi in intervals:
                for value in range(lo, hi + 1):
                    yield Target(_format(version, value), labels.get((version, value)))

    def __contains__(self, address: object) -> bool:
        key = _address_key(address)
        return key is not None and self._ranges.contains(*key)

    def canonical(self) -> list[str]:
        """The addresses (after exclusions) as merged ranges "first-last" and single addresses:
        `parse_targets` of these gives the same set again, with no DNS lookup and no file read.
        A resumed scan uses them to scan exactly what the original scan meant."""
        return _canonical(self._ranges)

    @property
    def labels(self) -> dict[str, str]:
        """Address → the host name it was given as, for the addresses that came from names."""
        return {_format(version, value): name for (version, value), name in self._labels.items()}

    def __repr__(self) -> str:
        return f"TargetSet(specs={self.specs!r}, excludes={self.excludes!r}, addresses={len(self)})"

    def chunks(self, size: int, skip: Container[str] = ()) -> Iterator[list[Target]]:
        """Lists of up to `size` targets in order, leaving out addresses in `skip` (a resumed
        scan's finished hosts, in the canonical text form `Target.address` uses)."""
        return chunked((t for t in self if t.address not in skip), size)

    def has_global(self) -> list[str]:
        """The specs (with the sub-ranges, when only part of one) holding globally routable
        addresses."""
        return self._parts_within(_GLOBAL, "globally routable")

    def _parts_within(self, region: _Ranges, note: str) -> list[str]:
        hits = self._ranges.intersect(region)
        if not hits:
            return []
        found: dict[str, None] = {}
        for item in self._items:
            part = item.ranges.intersect(hits)
            if part:
                whole = item.ranges.intersect(self._ranges)
                found.setdefault(item.describe(part, whole, note))
        return list(found)


def chunked(targets: Iterable[Target], size: int) -> Iterator[list[Target]]:
    """Lists of up to `size` consecutive targets, lazily."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    chunk: list[Target] = []
    for target in targets:
        chunk.append(target)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_targets(
    specs: Iterable[str],
    exclude: Iterable[str] = (),
    *,
    resolve: Resolver | None = None,
    labels: Mapping[str, str] | None = None,
) -> TargetSet:
    """Targets from specs (addresses, CIDRs, ranges, host names, @files, comma lists) minus the
    exclusions (same forms). Raises ConfigError naming the spec (and file:line) that is wrong.

    `labels` (address → host name, as `TargetSet.labels` gives them) names addresses without a
    lookup: with `TargetSet.canonical()` specs it rebuilds a stored set exactly."""
    spec_list, exclude_list = tuple(specs), tuple(exclude)
    names = _Names(resolve or resolve_host)
    items: list[_Item] = []
    for piece in _pieces(spec_list, "target"):
        ranges = _parse_piece(piece, "target")
        is_name = ranges is None
        if ranges is None:
            ranges = names.lookup(piece, "target")
        items.append(_Item(piece.text, piece.where, ranges, is_name))
    excluded: list[_Ranges] = []
    for piece in _pieces(exclude_list, "exclusion"):
        ranges = _parse_piece(piece, "exclusion")
        excluded.append(ranges if ranges is not None else names.lookup(piece, "exclusion"))
    wanted = _Ranges.union_of(item.ranges for item in items)
    final = wanted.minus(_Ranges.union_of(excluded))
    total = final.count()
    if total > MAX_ADDRESSES:
        raise ConfigError(
            f"the targets add up to {total:,} addresses, more than {MAX_ADDRESSES:,} "
            "(a /8) in one scan; narrow them (check the prefix lengths) or split the scan"
        )
    given: dict[tuple[int, int], str] = {}
    for address, name in (labels or {}).items():
        key = _address_key(address)
        if key is None or not isinstance(name, str) or not _is_host_name(name):
            raise ConfigError(
                f"host name label {_quoted(str(name))} for {_quoted(str(address))} is not an "
                "address and a host name"
            )
        given[key] = name
    found = {**names.labels, **given}
    kept = {key: name for key, name in found.items() if final.contains(*key)}
    return TargetSet(spec_list, exclude_list, tuple(items), final, kept)


class Scope:
    """Where scanning is allowed: addresses, CIDRs and ranges, never host names."""

    def __init__(self, specs: tuple[str, ...], ranges: _Ranges) -> None:
        self.specs = specs
        self._ranges = ranges

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Scope:
        spec_list = tuple(specs)
        parts: list[_Ranges] = []
        for piece in _pieces(spec_list, "scope entry"):
            ranges = _parse_piece(piece, "scope entry")
            if ranges is None:
                raise piece.fail(
                    "scope entry",
                    "a scope takes addresses, CIDRs and ranges, not host names "
                    "(a name can point anywhere); give its address or network",
                )
            parts.append(ranges)
        return cls(spec_list, _Ranges.union_of(parts))

    def __contains__(self, address: object) -> bool:
        key = _address_key(address)
        return key is not None and self._ranges.contains(*key)

    @property
    def size(self) -> int:
        """How many addresses the scope holds, counted from its ranges (never enumerated)."""
        return self._ranges.count()

    def canonical(self) -> list[str]:
        """The scope as merged ranges and single addresses, which `Scope.parse` reads back to
        the same scope without reading a file."""
        return _canonical(self._ranges)

    def __repr__(self) -> str:
        return f"Scope(specs={self.specs!r})"

    def outside(self, targets: TargetSet) -> list[str]:
        """One description per target spec with addresses outside this scope, naming the part
        that lies outside (e.g. `10.0.0.0/23 (10.0.1.0-10.0.1.255 outside the scope)`)."""
        outside = targets._ranges.minus(self._ranges)
        if not outside:
            return []
        return targets._parts_within(outside, "outside the scope")


def count_specs(specs: Iterable[str], kind: str = "scope entry") -> tuple[int, int]:
    """(addresses, host names) that address, CIDR, range and name specs hold: addresses counted
    from their merged ranges (a /8 is never enumerated), each distinct name once and never
    resolved. For figures such as a report's scope size; a bad spec raises ConfigError."""
    parts: list[_Ranges] = []
    names: set[str] = set()
    for piece in _pieces(specs, kind):
        ranges = _parse_piece(piece, kind)
        if ranges is None:
            names.add(piece.text.lower().rstrip("."))
        else:
            parts.append(ranges)
    return _Ranges.union_of(parts).count(), len(names)


def _listing(lines: list[str]) -> str:
    shown = "; ".join(lines[:MAX_LISTED])
    if len(lines) > MAX_LISTED:
        shown += f"; … and {len(lines) - MAX_LISTED} more"
    return shown


def check_scope(targets: TargetSet, scope: Scope | None) -> None:
    """Refuse (ScopeError) targets outside `scope`; without a scope, refuse globally routable
    ones. Pure computation: call it before any packet is sent."""
    if scope is None:
        global_parts = targets.has_global()
        if global_parts:
            raise ScopeError(
                f"{len(global_parts)} target(s) include globally routable addresses, which are "
                f"never scanned without an explicit scope: {_listing(global_parts)}. "
                "Pass --scope (or set 'scope' in posture.toml) covering them, "
                "or remove the targets"
            )
        return
    outside = scope.outside(targets)
    if outside:
        empty = " (the scope is empty)" if not scope._ranges else ""
        raise ScopeError(
            f"{len(outside)} target(s) lie outside the scope{empty}, so nothing was scanned: "
            f"{_listing(outside)}. To proceed, widen --scope or remove the targets"
        )
