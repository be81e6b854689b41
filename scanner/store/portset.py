"""Sets of port numbers in nmap's services syntax (`1,3-4,80`), to know what a scan covered."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from scanner.errors import ConfigError

MIN_PORT = 0
MAX_PORT = 65535


@dataclass(frozen=True)
class PortSet:
    """Disjoint, sorted, non-adjacent inclusive ranges; equal sets compare equal."""

    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> PortSet:
        """Read `1,3-4,80`; like nmap, `-100` starts at 1 and `1000-` ends at 65535."""
        ranges: list[tuple[int, int]] = []
        for raw in text.split(","):
            part = raw.strip()
            if not part:
                continue
            low_text, dash, high_text = part.partition("-")
            try:
                low = int(low_text) if low_text.strip() else 1
                high = (int(high_text) if high_text.strip() else MAX_PORT) if dash else low
            except ValueError:
                raise ConfigError(
                    f"invalid port list {text!r}: {part!r} is not a port or a range like 3-4"
                ) from None
            if not (MIN_PORT <= low <= high <= MAX_PORT):
                raise ConfigError(
                    f"invalid port list {text!r}: {part!r} is outside {MIN_PORT}-{MAX_PORT} "
                    "or runs backwards"
                )
            ranges.append((low, high))
        return cls.of_ranges(ranges)

    @classmethod
    def of_ranges(cls, ranges: Iterable[tuple[int, int]]) -> PortSet:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return cls(tuple(merged))

    def __contains__(self, port: object) -> bool:
        if not isinstance(port, int):
            return False
        index = bisect.bisect_right(self.ranges, (port, MAX_PORT + 1)) - 1
        return index >= 0 and self.ranges[index][0] <= port <= self.ranges[index][1]

    def __or__(self, other: PortSet) -> PortSet:
        return PortSet.of_ranges(self.ranges + other.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)
