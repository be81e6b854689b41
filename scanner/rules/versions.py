"""Version ranges for the `version` operator (`>=2.4.0,<2.4.50`), checked at load time.

Versions compare by PEP 440 (packaging) when both sides parse; otherwise by a fallback that
splits each into runs of digits and letters (`8.9p1` → 8, 9, p, 1), compares digit runs as
numbers and letter runs as lower-case text, ranks a letter run below a digit run, and ranks a
version below any longer version it is a prefix of. Ecosystem comparators (dpkg, RPM) are meant
to become further branches of `compare_versions`.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

MAX_RANGE_LENGTH = 200
_CLAUSE = re.compile(r"(>=|<=|==|!=|>|<)?\s*([0-9A-Za-z][0-9A-Za-z.+~_-]*)")
# The version a fact value starts with: "8.9p1 Debian 3ubuntu0.1" → "8.9p1".
_LEADING = re.compile(r"[vV]?(\d[0-9A-Za-z.+~_-]*)")
_TOKEN = re.compile(r"\d+|[A-Za-z]+")


@dataclass(frozen=True)
class VersionRange:
    """Clauses that must all hold, e.g. ((">=", "2.4.0"), ("<", "2.4.50"))."""

    clauses: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return ",".join(f"{op}{version}" for op, version in self.clauses)


def parse_range(text: str) -> VersionRange:
    """Parse `>=1.0,<2` (a bare version means ==); ValueError says what is wrong."""
    if len(text) > MAX_RANGE_LENGTH:
        raise ValueError(f"version range longer than {MAX_RANGE_LENGTH} characters")
    clauses = []
    for part in text.split(","):
        found = _CLAUSE.fullmatch(part.strip())
        if found is None:
            raise ValueError(
                f"bad version range {text!r}: cannot read {part.strip()!r} "
                "(expected clauses like '>=2.4.0' joined by commas)"
            )
        clauses.append((found.group(1) or "==", found.group(2)))
    return VersionRange(tuple(clauses))


def _fallback_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (1, int(token)) if token.isdigit() else (0, token.lower())
        for token in _TOKEN.findall(version)
    )


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is lower than, equal to or higher than `right`."""
    try:
        a, b = Version(left), Version(right)
        return (a > b) - (a < b)
    except InvalidVersion:
        pass
    ka, kb = _fallback_key(left), _fallback_key(right)
    return (ka > kb) - (ka < kb)


_HOLDS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def version_in_range(value: str, wanted: VersionRange) -> bool:
    """Whether the version that `value` starts with satisfies every clause; a value that does
    not start with a version (optionally after a 'v') never matches."""
    found = _LEADING.match(value.strip())
    if found is None:
        return False
    version = found.group(1)
    return all(_HOLDS[op](compare_versions(version, bound), 0) for op, bound in wanted.clauses)
