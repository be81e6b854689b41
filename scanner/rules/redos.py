"""Refuse pack regexes that can backtrack catastrophically (ReDoS) before they ever see target
text: Python's `re` holds the GIL while it matches, so one `(a+)+$` against a hostile banner
would stall every thread of the scan.

The check walks the pattern as `re._parser` parses it and refuses two shapes:

- **Nested repetition**: a repeat that can run more than once containing, at any depth, a
  repeat of variable length that can run more than once, where one of the two is unbounded:
  `(a+)+`, `(a*)*b`, `(x+x+)+y`, `(a{1,3})+`. A bounded outer count does not make it safe:
  `(.*a){12}` backtracks in O(n^12) on a text without enough a's, so it is refused too.
  Fixed-width or optional inner parts (`(ab{2})+`, `(-?\\d)+`) and optional outer groups
  (`(\\d+)?`) are fine. Harmless delimited forms such as `(\\d+\\.)+` are refused as well: bound
  both levels (`(\\d{1,3}\\.){1,4}` is accepted, `(\\d+\\.){1,4}` is not). Possessive and atomic
  repeats count as repeats too (conservative).
- **Ambiguous alternation**: inside an unbounded repeat, two alternatives whose first elements
  are the same or are single characters that can be the same character: `(a|a)*`, `(a|aa)+`
  (the parser factors out the shared `a`; the empty rest starts with the next round's `a`),
  `(\\d\\.|\\w\\.)*`. Only first elements are compared: `(ab|ac|d)*` is refused though harmless,
  and an alternative starting with an optional part (`(a?b|b)*`) is not compared.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

_parser: Any = importlib.import_module("re._parser")  # 3.11+: sre_parse is deprecated
_c: Any = importlib.import_module("re._constants")

MAXREPEAT: int = _c.MAXREPEAT
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT}
_ZERO_WIDTH = {_c.AT}
# Characters tried when asking whether two single-character atoms can match the same one.
_SAMPLE = [chr(code) for code in range(0x250)]

NESTED = (
    "nested repetition: a repeated group contains a variable-length repeat and one of the two "
    "is unbounded (like '(a+)+' or '(.*a){12}'), which can backtrack for exponential or "
    "high-polynomial time on target text; remove one repeat, or bound both "
    "(e.g. '(\\d{1,3}\\.){1,4}')"
)
AMBIGUOUS = (
    "ambiguous alternation: inside an unbounded repeat two alternatives can start with the "
    "same text (like '(a|a)*' or '(a|aa)+'), which can backtrack for exponential time on target "
    "text; make the alternatives start differently"
)


def redos_problem(pattern: str) -> str | None:
    """Why `pattern` (which compiles) may backtrack catastrophically, or None."""
    parsed = _parser.parse(pattern)
    if _nested(parsed, ()):
        return NESTED
    dotall = bool(parsed.state.flags & re.DOTALL)
    if _ambiguous(list(parsed), None, in_unbounded=False, dotall=dotall):
        return AMBIGUOUS
    return None


def _children(op: Any, av: Any) -> list[Sequence[Any]]:
    """The sub-sequences of one parsed node."""
    if op in _REPEATS:
        return [av[2]]
    if op is _c.SUBPATTERN:
        return [av[3]]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op is _c.ATOMIC_GROUP:
        return [av]
    if op is _c.BRANCH:
        return list(av[1])
    if op is _c.GROUPREF_EXISTS:
        return [part for part in av[1:] if part is not None]
    return []


def _nested(seq: Sequence[Any], outer: tuple[int, ...]) -> bool:
    """Whether a variable repeat of max > 1 sits inside a repeat of max > 1, one of the two
    unbounded. `outer` holds the max counts of the enclosing repeats of max > 1."""
    for op, av in seq:
        inside = outer
        if op in _REPEATS:
            low, high = av[0], av[1]
            varies = high > low and high > 1
            if varies and any(high == MAXREPEAT or o == MAXREPEAT for o in outer):
                return True
            if high > 1:
                inside = (*outer, high)
        if any(_nested(child, inside) for child in _children(op, av)):
            return True
    return False


def _first(items: list[Any], follow: Any) -> Any:
    """The first element that consumes text in `items` (looking into groups and repeats),
    or `follow` (what comes after) when `items` may consume nothing before it."""
    while items:
        op, av = items[0]
        if op in _ZERO_WIDTH:
            items = items[1:]
        elif op is _c.SUBPATTERN:
            items = [*av[3], *items[1:]]
        elif op is _c.ATOMIC_GROUP:
            items = [*av, *items[1:]]
        elif op in _REPEATS and av[0] >= 1:
            items = [*av[2], *items[1:]]
        else:
            return items[0]
    return follow


def _codes(ch: str) -> set[int]:
    """`ch` and its other cases (single characters only: 'ß'.upper() is 'SS')."""
    return {ord(c) for c in (ch, ch.lower(), ch.upper()) if len(c) == 1}


def _one_char_matches(node: Any, ch: str, dotall: bool) -> bool | None:
    """Whether a single-character atom matches `ch` (ignoring case), None for other nodes."""
    op, av = node
    if op is _c.ANY:
        return dotall or ch != "\n"
    if op in (_c.LITERAL, _c.NOT_LITERAL):
        same = av in _codes(ch)
        return same if op is _c.LITERAL else not same
    if op is _c.IN:
        negate = bool(av) and av[0][0] is _c.NEGATE
        hit = any(_set_item_matches(item, ch) for item in av)
        return hit != negate
    return None


def _set_item_matches(item: Any, ch: str) -> bool:
    op, av = item
    codes = _codes(ch)
    if op is _c.LITERAL:
        return av in codes
    if op is _c.RANGE:
        return any(av[0] <= code <= av[1] for code in codes)
    if op is _c.CATEGORY:
        word = ch.isalnum() or ch == "_"
        return {
            _c.CATEGORY_DIGIT: ch.isdecimal(),
            _c.CATEGORY_NOT_DIGIT: not ch.isdecimal(),
            _c.CATEGORY_SPACE: ch.isspace(),
            _c.CATEGORY_NOT_SPACE: not ch.isspace(),
            _c.CATEGORY_WORD: word,
            _c.CATEGORY_NOT_WORD: not word,
        }.get(av, True)  # anything else: assume it may match
    return False  # NEGATE marker


def _start_chars(node: Any, dotall: bool) -> frozenset[str] | None:
    """The sample characters a single-character atom can match; None for other nodes."""
    if node is None or _one_char_matches(node, "a", dotall) is None:
        return None
    return frozenset(ch for ch in _SAMPLE if _one_char_matches(node, ch, dotall))


def _alike_pair(starts: list[Any], dotall: bool) -> bool:
    """Whether two of the alternatives' first elements are equal or can match one character."""
    chars = [_start_chars(start, dotall) for start in starts]
    for i, start in enumerate(starts):
        for j in range(i + 1, len(starts)):
            if start is not None and start == starts[j]:
                return True
            mine, theirs = chars[i], chars[j]
            if mine is not None and theirs is not None and mine & theirs:
                return True
    return False


def _ambiguous(items: list[Any], follow: Any, *, in_unbounded: bool, dotall: bool) -> bool:
    """Whether an alternation inside an unbounded repeat has two alternatives that can start
    with the same text. `follow` is the first element of what comes after `items` within the
    innermost unbounded repeat (its own start again, for the next round)."""
    for index, (op, av) in enumerate(items):
        after = _first(items[index + 1 :], follow)
        if op in _REPEATS and av[1] == MAXREPEAT:
            body = list(av[2])
            if _ambiguous(body, _first(body, None), in_unbounded=True, dotall=dotall):
                return True
            continue
        if op is _c.BRANCH and in_unbounded:
            starts = [_first(list(branch), after) for branch in av[1]]
            if _alike_pair(starts, dotall):
                return True
        for child in _children(op, av):
            if _ambiguous(list(child), after, in_unbounded=in_unbounded, dotall=dotall):
                return True
    return False
