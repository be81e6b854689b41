"""A rule's `when`, compiled once at load time into a tree of conditions (never eval'd).

`match` returns the facts that made the tree hold (name → value), which become the finding's
evidence, or None when it does not hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.rules.facts import describe, unknown_fact_message, visible_facts
from scanner.rules.operators import OPERATORS, OperandError, Operator
from scanner.rules.packfile import LocatedList, LocatedMap

COMBINATORS = ("all", "any", "not")


class Matcher(ABC):
    @abstractmethod
    def match(self, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        """The facts that made this hold, or None when it does not."""

    @abstractmethod
    def fact_names(self) -> frozenset[str]:
        """Every fact this condition looks at."""


@dataclass(frozen=True)
class FactCondition(Matcher):
    """One fact against one or more operators, all of which must hold."""

    fact: str
    tests: tuple[tuple[Operator, Any], ...]

    def match(self, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        value = facts.get(self.fact)
        if value is None:
            held = all(op.if_missing(operand) for op, operand in self.tests)
            return {} if held else None
        if all(op.test(value, operand) for op, operand in self.tests):
            return {self.fact: value}
        return None

    def fact_names(self) -> frozenset[str]:
        return frozenset((self.fact,))


@dataclass(frozen=True)
class AllOf(Matcher):
    parts: tuple[Matcher, ...]

    def match(self, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        hits: dict[str, Any] = {}
        for part in self.parts:
            found = part.match(facts)
            if found is None:
                return None
            hits.update(found)
        return hits

    def fact_names(self) -> frozenset[str]:
        return frozenset().union(*(part.fact_names() for part in self.parts))


@dataclass(frozen=True)
class AnyOf(Matcher):
    parts: tuple[Matcher, ...]

    def match(self, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        # Every branch that holds contributes evidence, not just the first.
        found = [hit for hit in (part.match(facts) for part in self.parts) if hit is not None]
        if not found:
            return None
        hits: dict[str, Any] = {}
        for hit in found:
            hits.update(hit)
        return hits

    def fact_names(self) -> frozenset[str]:
        return frozenset().union(*(part.fact_names() for part in self.parts))


@dataclass(frozen=True)
class NotOf(Matcher):
    part: Matcher

    def match(self, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.part.match(facts) is not None:
            return None
        # The present values of what was negated are why it held (e.g. tunnel: none vs ssl).
        return {name: facts[name] for name in self.part.fact_names() if facts.get(name) is not None}

    def fact_names(self) -> frozenset[str]:
        return self.part.fact_names()


Report = Callable[[int, str], None]  # (line, message)


class _Compiler:
    def __init__(self, subject: str, report: Report) -> None:
        self.facts = visible_facts(subject)
        self.subject = subject
        self.report = report
        self.failed = False

    def error(self, line: int, message: str) -> None:
        self.failed = True
        self.report(line, message)

    def mapping(self, node: Any, line: int, where: str) -> Matcher | None:
        if not isinstance(node, LocatedMap):
            self.error(
                line, f"{where} must be a mapping of facts/all/any/not, not {describe(node)}"
            )
            return None
        if not node:
            self.error(line, f"{where} is empty")
            return None
        parts: list[Matcher] = []
        for key, value in node.items():
            part = self.entry(key, value, node.key_lines[key])
            if part is not None:
                parts.append(part)
        if len(parts) != len(node):
            return None
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def entry(self, key: str, value: Any, line: int) -> Matcher | None:
        if key == "not":
            inner = self.mapping(value, line, "'not'")
            return NotOf(inner) if inner is not None else None
        if key in ("all", "any"):
            if not isinstance(value, LocatedList) or not value:
                self.error(line, f"'{key}' must be a non-empty list of conditions")
                return None
            parts = [
                self.mapping(item, item_line, f"'{key}' item")
                for item, item_line in zip(value, value.item_lines, strict=True)
            ]
            if any(part is None for part in parts):
                return None
            done = tuple(part for part in parts if part is not None)
            return AllOf(done) if key == "all" else AnyOf(done)
        return self.condition(key, value, line)

    def condition(self, fact: str, value: Any, line: int) -> Matcher | None:
        spec = self.facts.get(fact)
        if spec is None:
            self.error(line, unknown_fact_message(fact, self.subject))
            return None
        if value is None:
            self.error(line, f"'{fact}': null is not a condition (use {{exists: false}})")
            return None
        if isinstance(value, list):
            self.error(line, f"'{fact}': a list is not a condition (use {{in: [...]}})")
            return None
        operators: list[tuple[str, Any, int]]
        shorthand = not isinstance(value, LocatedMap)  # `port: 23` means `port: {eq: 23}`
        if isinstance(value, LocatedMap):
            if not value:
                self.error(line, f"'{fact}': empty operator mapping")
                return None
            operators = [(op, operand, value.key_lines[op]) for op, operand in value.items()]
        else:
            operators = [("eq", value, line)]
        tests: list[tuple[Operator, Any]] = []
        for name, operand, op_line in operators:
            operator = OPERATORS.get(name)
            if operator is None:
                expected = ", ".join(OPERATORS)
                self.error(op_line, f"unknown operator '{name}' (expected one of: {expected})")
                continue
            try:
                tests.append((operator, operator.prepare(spec, operand)))
            except OperandError as exc:
                self.error(op_line, str(exc) if shorthand else f"'{fact}' {name}: {exc}")
        if len(tests) != len(operators):
            return None
        return FactCondition(fact, tuple(tests))


def compile_when(when: Any, line: int, subject: str, report: Report) -> Matcher | None:
    """The compiled matcher, or None after reporting every problem through `report`."""
    compiler = _Compiler(subject, report)
    matcher = compiler.mapping(when, line, "'when'")
    return None if compiler.failed else matcher
