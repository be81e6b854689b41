"""Pack regexes that can backtrack catastrophically are refused at load time, with file:line
and why; the shipped patterns and ordinary ones still load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanner.rules import PackError, default_pack_paths, load_packs
from scanner.rules.matcher import AllOf, AnyOf, FactCondition, Matcher, NotOf
from scanner.rules.redos import AMBIGUOUS, NESTED, redos_problem

PACK = """pack: rx
version: "1"
rules:
  - id: rx.a
    title: A
    severity: low
    when:
      service.name: ftp
      ftp.banner: {{regex: '{pattern}'}}
    remediation: R
    references: [https://example.org/r]
"""

EVIL_NESTED = [
    r"(a+)+$",
    r"(a*)*b",
    r"(x+x+)+y",
    r"^(\w+\s?)+$",
    r"([a-z]+)*$",
    r"(a{1,3})+$",  # a bounded but variable inner repeat under an unbounded one
    r"(?:(?:a+)b?)+c",  # nested at depth 2 through a non-capturing group
    # A bounded outer count does not help: `.*` backtracks in each of 12 rounds, O(n^12).
    r"(.*a){12}",
    r"(\d+\.){1,4}",
]
EVIL_AMBIGUOUS = [
    r"(a|a)*",
    r"(a|a)+$",
    r"(ab|ab)*c",
    r"(a|aa)+$",
    r"(\d\.|\w\.)*!",
    r"(?i)(ab|Ab)*$",
    r"((a|a)b)*",
    r"(?s)(.|\n)*x",
]
SAFE = [
    r"^vnc(-\d+)?$",
    r"^Elasticsearch (REST|binary) API",
    r"(\d{1,3}\.){3}\d{1,3}",
    r"(\d{1,3}\.){1,4}",
    r"^OpenSSH_(\d+)\.(\d+)",
    r"(foo|bar)+",
    r"(a|ab)*c",
    r"(-?\d)+",
    r"(ab{2})+",
    r"(?:a+)?b",
    r".*foo.*",
    r"(.|\n)*x",  # `.` never matches a newline without DOTALL: no overlap
    r"(a|a){3}",  # ambiguity is harmless when the repeat is bounded
    r"[a-z]+\d*",
]


def load_error(tmp_path: Path, pattern: str) -> list[str]:
    pack = tmp_path / "rx.yaml"
    pack.write_text(PACK.format(pattern=pattern))
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize("pattern", EVIL_NESTED)
def test_nested_repetition_is_refused_with_file_line_and_why(tmp_path: Path, pattern: str) -> None:
    assert re.compile(pattern)  # a valid regex: refused for its shape, not its syntax
    (problem,) = load_error(tmp_path, pattern)
    assert problem == (
        f"{tmp_path / 'rx.yaml'}:9: rule 'rx.a': 'ftp.banner' regex: "
        f"regex {pattern!r} refused: {NESTED}"
    )


@pytest.mark.parametrize("pattern", EVIL_AMBIGUOUS)
def test_ambiguous_alternation_in_a_repeat_is_refused(tmp_path: Path, pattern: str) -> None:
    (problem,) = load_error(tmp_path, pattern)
    assert problem.startswith(f"{tmp_path / 'rx.yaml'}:9: rule 'rx.a': 'ftp.banner' regex: ")
    assert problem.endswith(f"refused: {AMBIGUOUS}")


def test_messages_say_why_and_what_to_do() -> None:
    assert "nested repetition" in NESTED and "bound both" in NESTED
    assert "ambiguous alternation" in AMBIGUOUS and "start differently" in AMBIGUOUS


@pytest.mark.parametrize("pattern", SAFE)
def test_ordinary_patterns_load(tmp_path: Path, pattern: str) -> None:
    assert redos_problem(pattern) is None
    pack = tmp_path / "rx.yaml"
    pack.write_text(PACK.format(pattern=pattern))
    (rule,) = load_packs([pack]).rules
    assert rule.id == "rx.a"


def _regexes(matcher: Matcher) -> list[str]:
    if isinstance(matcher, FactCondition):
        return [operand.pattern for op, operand in matcher.tests if isinstance(operand, re.Pattern)]
    if isinstance(matcher, AllOf | AnyOf):
        return [found for part in matcher.parts for found in _regexes(part)]
    assert isinstance(matcher, NotOf)
    return _regexes(matcher.part)


def test_baseline_patterns_are_accepted() -> None:
    baseline = load_packs(default_pack_paths())
    patterns = [found for rule in baseline.rules for found in _regexes(rule.when)]
    assert len(patterns) >= 3
    assert [p for p in patterns if redos_problem(p) is not None] == []


def test_absurdly_nested_regex_is_a_load_error_not_a_crash(tmp_path: Path) -> None:
    pattern = "(" * 450 + "a" + ")" * 450
    (problem,) = load_error(tmp_path, pattern)
    assert problem.endswith("is nested too deeply")
