"""The operators of a `when` condition: how each checks its operand at load time and tests a
fact's value at match time. A missing fact satisfies only `ne`, `not_in` and `exists: false`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanner.rules.facts import FactKind, FactSpec, describe, value_problem
from scanner.rules.redos import redos_problem
from scanner.rules.versions import VersionRange, parse_range, version_in_range
from scanner.safetext import MAX_BANNER

MAX_REGEX_LENGTH = 1000
MAX_REGEX_SUBJECT = MAX_BANNER  # a regex only ever sees this many characters of a value


class OperandError(ValueError):
    """The operand cannot be used with this operator on this fact."""


def same(a: Any, b: Any) -> bool:
    """Equality that never confuses True with 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Operand checks: return the operand as the test wants it, or raise OperandError.


def _value_operand(spec: FactSpec, operand: Any) -> Any:
    problem = value_problem(spec, operand)
    if problem is not None:
        raise OperandError(problem)
    return operand


def _list_operand(spec: FactSpec, operand: Any) -> tuple[Any, ...]:
    if spec.kind is FactKind.STR_LIST:
        raise OperandError(f"'{spec.name}' is a list: test its members with 'contains'")
    if not isinstance(operand, list) or not operand:
        raise OperandError(f"expected a non-empty list of values, not {describe(operand)}")
    return tuple(_value_operand(spec, item) for item in operand)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_operand(spec: FactSpec, operand: Any) -> float:
    if spec.kind not in (FactKind.INT, FactKind.NUMBER):
        raise OperandError(f"'{spec.name}' is not a number (use 'version' to compare versions)")
    if spec.kind is FactKind.INT and not _is_int(operand):
        raise OperandError(f"expected an integer, not {describe(operand)}")
    if not _is_number(operand):
        raise OperandError(f"expected a number, not {describe(operand)}")
    return operand  # type: ignore[no-any-return]


def _regex_operand(spec: FactSpec, operand: Any) -> re.Pattern[str]:
    if spec.kind not in (FactKind.STR, FactKind.STR_LIST):
        raise OperandError(f"'{spec.name}' is not text: regex applies to strings only")
    if not isinstance(operand, str):
        raise OperandError(f"expected a regular expression string, not {describe(operand)}")
    if len(operand) > MAX_REGEX_LENGTH:
        raise OperandError(f"regex longer than {MAX_REGEX_LENGTH} characters")
    try:
        compiled = re.compile(operand)
        # Target text is matched while holding the GIL: refuse what can backtrack for ever.
        problem = redos_problem(operand)
    except re.error as exc:
        raise OperandError(f"bad regex {operand!r}: {exc}") from None
    except RecursionError:
        raise OperandError(f"regex {operand!r} is nested too deeply") from None
    if problem is not None:
        raise OperandError(f"regex {operand!r} refused: {problem}")
    return compiled


def _contains_operand(spec: FactSpec, operand: Any) -> str:
    if spec.kind not in (FactKind.STR, FactKind.STR_LIST):
        raise OperandError(f"'{spec.name}' is neither text nor a list: use eq/in instead")
    if not isinstance(operand, str):
        raise OperandError(f"expected a string, not {describe(operand)}")
    return operand


def _exists_operand(spec: FactSpec, operand: Any) -> bool:
    if not isinstance(operand, bool):
        raise OperandError(f"expected true or false, not {describe(operand)}")
    return operand


def _version_operand(spec: FactSpec, operand: Any) -> VersionRange:
    if spec.kind is not FactKind.STR:
        raise OperandError(f"'{spec.name}' is not a version string")
    if not isinstance(operand, str):
        raise OperandError(f"expected a version range like '>=2.4.0,<2.4.50', not {operand!r}")
    try:
        return parse_range(operand)
    except ValueError as exc:
        raise OperandError(str(exc)) from None


# Tests of a present value against a prepared operand.


def _regex_test(value: Any, pattern: re.Pattern[str]) -> bool:
    texts = value if isinstance(value, list | tuple) else [value]
    return any(
        isinstance(text, str) and pattern.search(text[:MAX_REGEX_SUBJECT]) is not None
        for text in texts
    )


def _contains_test(value: Any, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, list | tuple):
        return any(same(item, needle) for item in value)
    return False


def _ordered(compare: Callable[[float, float], bool]) -> Callable[[Any, float], bool]:
    return lambda value, bound: _is_number(value) and compare(value, bound)


@dataclass(frozen=True)
class Operator:
    name: str
    prepare: Callable[[FactSpec, Any], Any]  # raises OperandError
    test: Callable[[Any, Any], bool]  # (present value, prepared operand)
    if_missing: Callable[[Any], bool] = lambda operand: False


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", _value_operand, same),
        Operator("ne", _value_operand, lambda v, o: not same(v, o), lambda o: True),
        Operator("in", _list_operand, lambda v, o: any(same(v, x) for x in o)),
        Operator(
            "not_in", _list_operand, lambda v, o: not any(same(v, x) for x in o), lambda o: True
        ),
        Operator("lt", _number_operand, _ordered(lambda v, o: v < o)),
        Operator("le", _number_operand, _ordered(lambda v, o: v <= o)),
        Operator("gt", _number_operand, _ordered(lambda v, o: v > o)),
        Operator("ge", _number_operand, _ordered(lambda v, o: v >= o)),
        Operator("regex", _regex_operand, _regex_test),
        Operator("contains", _contains_operand, _contains_test),
        Operator("exists", _exists_operand, lambda v, o: bool(o), lambda o: not o),
        Operator(
            "version",
            _version_operand,
            lambda v, o: isinstance(v, str) and version_in_range(v, o),
        ),
    )
}
