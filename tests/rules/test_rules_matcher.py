"""The `when` matcher: every operator, the combinators, missing facts, recorded evidence, and
the operand checks that turn a bad condition into a load error with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.rules import FACTS, PackError, default_pack_paths, load_packs
from scanner.rules.matcher import Matcher
from scanner.rules.operators import MAX_REGEX_SUBJECT

BASELINE = load_packs(default_pack_paths())

PACK = """pack: t
version: "1"
rules:
  - id: t.r
    title: T
    severity: low
    for: {subject}
    when: {when}
    remediation: R
    references: [https://example.org/r]
"""


def compile_when(tmp_path: Path, when: str, subject: str = "service") -> Matcher:
    pack = tmp_path / "t.yaml"
    pack.write_text(PACK.format(when=when, subject=subject))
    return load_packs([pack]).rules[0].when


def load_error(tmp_path: Path, when: str) -> list[str]:
    pack = tmp_path / "t.yaml"
    pack.write_text(PACK.format(when=when, subject="service"))
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    prefix = "rule 't.r': "
    assert all(p.message.startswith(prefix) for p in caught.value.problems)
    return [f"{p.line}: {p.message.removeprefix(prefix)}" for p in caught.value.problems]


BANNER = "220 (vsFTPd 2.3.4)"

OPERATOR_TABLE: list[tuple[str, dict[str, Any], bool]] = [
    # equality shorthand and eq
    ("{port: 23}", {"port": 23}, True),
    ("{port: 23}", {"port": 24}, False),
    ("{port: 23}", {}, False),
    ("{port: {eq: 23}}", {"port": 23}, True),
    ("{ftp.anonymous: true}", {"ftp.anonymous": True}, True),
    ("{ftp.anonymous: true}", {"ftp.anonymous": 1}, False),  # True is not 1
    ("{service.cpe: {eq: ['cpe:/a:x']}}", {"service.cpe": ["cpe:/a:x"]}, True),
    # ne: a missing fact is "not equal"
    ("{service.tunnel: {ne: ssl}}", {"service.tunnel": "ssl"}, False),
    ("{service.tunnel: {ne: ssl}}", {}, True),
    ("{service.tunnel: {ne: ssl}}", {"service.tunnel": None}, True),
    # in / not_in
    ("{port: {in: [21, 23]}}", {"port": 23}, True),
    ("{port: {in: [21, 23]}}", {"port": 22}, False),
    ("{port: {in: [21, 23]}}", {}, False),
    ("{port: {not_in: [21, 23]}}", {"port": 22}, True),
    ("{port: {not_in: [21, 23]}}", {"port": 21}, False),
    ("{port: {not_in: [21, 23]}}", {}, True),
    # ordering, with both ends of each boundary
    ("{port: {lt: 1024}}", {"port": 1023}, True),
    ("{port: {lt: 1024}}", {"port": 1024}, False),
    ("{port: {le: 1024}}", {"port": 1024}, True),
    ("{port: {le: 1024}}", {"port": 1025}, False),
    ("{port: {gt: 1024}}", {"port": 1025}, True),
    ("{port: {gt: 1024}}", {"port": 1024}, False),
    ("{port: {ge: 1024}}", {"port": 1024}, True),
    ("{port: {ge: 1024}}", {"port": 1023}, False),
    ("{port: {ge: 5900, le: 5906}}", {"port": 5906}, True),
    ("{port: {ge: 5900, le: 5906}}", {"port": 5907}, False),
    ("{port: {gt: 1}}", {"port": "23"}, False),  # a mistyped runtime value never compares
    ("{port: {gt: 1}}", {}, False),
    # regex: search, not anchored; strings and string lists only
    ("{ftp.banner: {regex: 'vsFTPd 2\\.3\\.4'}}", {"ftp.banner": BANNER}, True),
    ("{ftp.banner: {regex: '^vsFTPd'}}", {"ftp.banner": BANNER}, False),
    ("{ftp.banner: {regex: 'vsftpd'}}", {"ftp.banner": BANNER}, False),
    ("{ftp.banner: {regex: '(?i)vsftpd'}}", {"ftp.banner": BANNER}, True),
    (
        "{service.cpe: {regex: '^cpe:/a:redis'}}",
        {"service.cpe": ["cpe:/o:linux", "cpe:/a:redis"]},
        True,
    ),
    ("{service.cpe: {regex: '^cpe:/a:redis'}}", {"service.cpe": ["cpe:/o:linux"]}, False),
    ("{ftp.banner: {regex: 'x'}}", {"ftp.banner": 5}, False),
    ("{ftp.banner: {regex: 'x'}}", {}, False),
    # contains: substring, or list member (whole element)
    ("{ftp.banner: {contains: vsFTPd}}", {"ftp.banner": BANNER}, True),
    ("{ftp.banner: {contains: proftpd}}", {"ftp.banner": BANNER}, False),
    ("{service.cpe: {contains: 'cpe:/a:redis'}}", {"service.cpe": ["cpe:/a:redis"]}, True),
    ("{service.cpe: {contains: 'cpe:/a'}}", {"service.cpe": ["cpe:/a:redis"]}, False),
    ("{ftp.banner: {contains: x}}", {}, False),
    # exists
    ("{service.product: {exists: true}}", {"service.product": "nginx"}, True),
    ("{service.product: {exists: true}}", {}, False),
    ("{service.product: {exists: false}}", {}, True),
    ("{service.product: {exists: false}}", {"service.product": "nginx"}, False),
    # version ranges
    ("{service.version: {version: '>=2.4.0,<2.4.50'}}", {"service.version": "2.4.49"}, True),
    ("{service.version: {version: '>=2.4.0,<2.4.50'}}", {"service.version": "2.4.50"}, False),
    ("{service.version: {version: '>=2.4.0,<2.4.50'}}", {"service.version": "2.3.9"}, False),
    ("{service.version: {version: '<8.9p2'}}", {"service.version": "8.9p1 Ubuntu 3"}, True),
    ("{service.version: {version: '<8.9p2'}}", {"service.version": "8.10p1"}, False),
    ("{service.version: {version: '2.4.41'}}", {"service.version": "2.4.41"}, True),
    ("{service.version: {version: '>=1'}}", {"service.version": "unknown"}, False),
    ("{service.version: {version: '>=1'}}", {}, False),
    # combinators
    ("{port: 23, proto: tcp}", {"port": 23, "proto": "udp"}, False),
    ("{port: 23, proto: tcp}", {"port": 23, "proto": "tcp"}, True),
    ("{all: [{port: 23}, {proto: tcp}]}", {"port": 23, "proto": "tcp"}, True),
    ("{all: [{port: 23}, {proto: tcp}]}", {"port": 23}, False),
    ("{any: [{port: 23}, {service.name: telnet}]}", {"port": 2323, "service.name": "telnet"}, True),
    ("{any: [{port: 23}, {service.name: telnet}]}", {"port": 22, "service.name": "ssh"}, False),
    ("{not: {service.tunnel: ssl}}", {}, True),
    ("{not: {service.tunnel: ssl}}", {"service.tunnel": "ssl"}, False),
    ("{not: {any: [{port: 22}, {port: 23}]}}", {"port": 23}, False),
    ("{not: {any: [{port: 22}, {port: 23}]}}", {"port": 24}, True),
]


@pytest.mark.parametrize(("when", "facts", "expected"), OPERATOR_TABLE)
def test_operator_table(tmp_path: Path, when: str, facts: dict[str, Any], expected: bool) -> None:
    matched = compile_when(tmp_path, when).match(facts)
    assert (matched is not None) is expected


def test_regex_sees_only_a_bounded_prefix_of_a_value(tmp_path: Path) -> None:
    matcher = compile_when(tmp_path, "{ftp.banner: {regex: 'NEEDLE'}}")
    assert matcher.match({"ftp.banner": "x" * (MAX_REGEX_SUBJECT - 6) + "NEEDLE"}) is not None
    assert matcher.match({"ftp.banner": "x" * MAX_REGEX_SUBJECT + "NEEDLE"}) is None


def test_match_records_the_facts_that_made_it_hold(tmp_path: Path) -> None:
    matcher = compile_when(
        tmp_path,
        "{service.tunnel: {ne: ssl}, any: [{service.name: ftp}, {port: 21}], "
        "not: {ftp.anonymous: true}}",
    )
    facts = {"port": 21, "proto": "tcp", "service.name": "ftp", "ftp.anonymous": False}
    # Both `any` branches held; `ne` on a missing fact records nothing; the negated fact is
    # recorded with its present value.
    assert matcher.match(facts) == {"port": 21, "service.name": "ftp", "ftp.anonymous": False}
    assert matcher.match({"port": 21}) == {"port": 21}
    assert matcher.match({"port": 21, "service.tunnel": "ssl"}) is None


def test_fact_names_lists_everything_a_condition_reads(tmp_path: Path) -> None:
    matcher = compile_when(tmp_path, "{port: 1, any: [{proto: tcp}, {not: {state: open}}]}")
    assert matcher.fact_names() == {"port", "proto", "state"}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{port: {regexp: x}}", "8: unknown operator 'regexp' (expected one of: eq, ne, in"),
        ("{service.name: {regex: '(('}}", "8: 'service.name' regex: bad regex '(('"),
        ("{service.name: {regex: " + "'" + "a" * 1001 + "'}}", "regex longer than 1000"),
        ("{port: {regex: '2'}}", "8: 'port' regex: 'port' is not text"),
        ("{port: {lt: '1024'}}", "8: 'port' lt: expected an integer, not a string"),
        ("{port: {lt: true}}", "8: 'port' lt: expected an integer, not a boolean"),
        ("{service.name: {gt: a}}", "8: 'service.name' gt: 'service.name' is not a number"),
        ("{port: {in: []}}", "8: 'port' in: expected a non-empty list of values"),
        ("{port: {in: 23}}", "8: 'port' in: expected a non-empty list of values, not an integer"),
        ("{port: {in: [23, '24']}}", "8: 'port' in: 'port' must be an integer, not a string"),
        ("{service.cpe: {in: [a]}}", "'service.cpe' is a list: test its members with 'contains'"),
        ("{service.product: {exists: 1}}", "8: 'service.product' exists: expected true or false"),
        ("{port: {contains: '2'}}", "'port' is neither text nor a list"),
        ("{port: {version: '>=1'}}", "8: 'port' version: 'port' is not a version string"),
        ("{service.version: {version: '>>1'}}", "bad version range '>>1'"),
        ("{service.version: {version: 1}}", "expected a version range like"),
        ("{state: opne}", "8: 'state' cannot be 'opne' (expected one of: open, filtered"),
        ("{port: null}", "8: 'port': null is not a condition (use {exists: false})"),
        ("{port: [22, 23]}", "8: 'port': a list is not a condition (use {in: [...]})"),
        ("{port: {}}", "8: 'port': empty operator mapping"),
        ("{}", "8: 'when' is empty"),
        ("[port]", "8: 'when' must be a mapping of facts/all/any/not, not a list"),
        ("{any: {port: 1}}", "8: 'any' must be a non-empty list of conditions"),
        ("{all: [port]}", "8: 'all' item must be a mapping"),
        ("{not: [{port: 1}]}", "8: 'not' must be a mapping"),
        ("{redis.unauth: true}", "8: unknown fact 'redis.unauth' (did you mean"),
    ],
)
def test_bad_conditions_are_load_errors_with_their_line(
    tmp_path: Path, when: str, expected: str
) -> None:
    problems = load_error(tmp_path, when)
    assert any(expected in problem for problem in problems), problems


def test_multi_line_when_reports_the_operator_line(tmp_path: Path) -> None:
    pack = tmp_path / "t.yaml"
    pack.write_text(
        PACK.format(subject="service", when="").replace(
            "    when: \n",
            "    when:\n      any:\n        - port: 23\n        - ftp.banner:\n"
            "            contains: x\n            regexp: y\n",
        )
    )
    with pytest.raises(PackError) as caught:
        load_packs([pack])
    assert [p.line for p in caught.value.problems] == [13]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(FACTS)),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            st.text(max_size=50),
            st.lists(st.text(max_size=10), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    )
)
def test_hostile_fact_values_never_crash_the_baseline(facts: dict[str, Any]) -> None:
    # Check results come from other code and banners from targets: whatever their type, a
    # rule either matches or not.
    for rule in BASELINE.rules:
        result = rule.when.match(facts)
        assert result is None or isinstance(result, dict)
