"""The pack format: check one pack document (as read by `packfile`) key by key, report every
problem with its line, and build the `Pack` when there is none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from scanner.model import Confidence, Severity
from scanner.rules.errors import PackProblem
from scanner.rules.facts import (
    FACTS,
    SUBJECTS,
    FactKind,
    describe,
    unknown_fact_message,
    value_problem,
    visible_facts,
)
from scanner.rules.matcher import compile_when
from scanner.rules.packfile import LocatedList, LocatedMap
from scanner.rules.ruleset import TITLE_FACT, Example, Pack, Rule

_Choice = TypeVar("_Choice", Severity, Confidence)

PACK_KEYS = ("pack", "version", "description", "rules")
RULE_KEYS = (
    "id",
    "title",
    "severity",
    "description",
    "for",
    "when",
    "confidence",
    "severity_from",
    "confidence_from",
    "evidence",
    "discriminator",
    "remediation",
    "references",
    "controls",
    "cves",
    "examples",
)
EXAMPLE_KEYS = ("match", "no_match")

PACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# A pack version is shown and recorded with every scan ("name@version"): no spaces or controls.
PACK_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+")
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}")
URL = re.compile(r"https?://[^\s/]+\S*")
MAX_TEXT = 4000  # characters of a title, description or remediation
# Control ids per framework: PCI DSS requirement numbers, CIS Controls safeguards, and NIST
# SP 800-53 controls with an optional enhancement (IA-5(1)).
CONTROL_IDS = {
    "PCI-DSS-4.0": re.compile(r"\d{1,2}(\.\d{1,2}){1,3}"),
    "CIS-8": re.compile(r"\d{1,2}(\.\d{1,2})?"),
    "NIST-800-53": re.compile(r"[A-Z]{2}-\d{1,2}(\(\d{1,2}\))?"),
}


@dataclass
class ParsedPack:
    """What one file yielded: the pack when it is sound, and every rule id with its place (for
    duplicate detection across packs even when the file has other problems)."""

    pack: Pack | None
    name: str | None
    name_line: int = 0
    rule_ids: list[tuple[str, int]] = field(default_factory=list)


def _keys_problems(node: LocatedMap, allowed: tuple[str, ...]) -> list[tuple[int, str]]:
    return [
        (node.key_lines[key], f"unknown key '{key}' (expected one of: {', '.join(allowed)})")
        for key in node
        if key not in allowed
    ]


class _Pack:
    def __init__(self, path: Path, problems: list[PackProblem]) -> None:
        self.path = path
        self.shown = str(path)
        self.problems = problems
        self.first_problem = len(problems)

    def error(self, line: int, message: str) -> None:
        self.problems.append(PackProblem(self.shown, line, message))

    def parse(self, doc: Any) -> ParsedPack:
        if not isinstance(doc, LocatedMap):
            self.error(
                1, f"a pack must be a mapping with pack, version, rules; not {describe(doc)}"
            )
            return ParsedPack(None, None)
        for line, message in _keys_problems(doc, PACK_KEYS):
            self.error(line, message)
        fields = _Fields(doc, self.error)
        name = fields.text("pack", required=True, pattern=PACK_NAME, what="a pack name")
        version = fields.text("version", required=True, pattern=PACK_VERSION, what="a version")
        description = fields.text("description")
        result = ParsedPack(None, name, doc.key_lines.get("pack", doc.line))
        rules_node = doc.get("rules")
        if "rules" not in doc:
            self.error(doc.line, "missing key 'rules'")
        elif not isinstance(rules_node, LocatedList):
            self.error(
                doc.key_lines["rules"], f"'rules' must be a list, not {describe(rules_node)}"
            )
        else:
            rules = []
            for index, (item, line) in enumerate(
                zip(rules_node, rules_node.item_lines, strict=True), start=1
            ):
                rule = self.rule(item, line, index, name or "?", result)
                if rule is not None:
                    rules.append(rule)
            sound = len(self.problems) == self.first_problem
            if sound and name is not None and version is not None:
                result.pack = Pack(name, version, self.path, tuple(rules), description)
        return result

    def rule(self, node: Any, line: int, index: int, pack: str, result: ParsedPack) -> Rule | None:
        if not isinstance(node, LocatedMap):
            self.error(line, f"rules item {index} must be a mapping, not {describe(node)}")
            return None
        raw_id = node.get("id")
        label = f"rule '{raw_id}': " if isinstance(raw_id, str) else f"rules item {index}: "
        first_problem = len(self.problems)

        def error(at: int, message: str) -> None:
            self.error(at, label + message)

        for at, message in _keys_problems(node, RULE_KEYS):
            error(at, message)
        fields = _Fields(node, error)
        rule_id = fields.text("id", required=True, pattern=RULE_ID, what="a rule id")
        if rule_id is not None:
            result.rule_ids.append((rule_id, line))
        title = fields.text("title", required=True)
        severity = fields.choice("severity", Severity, required=True)
        confidence = fields.choice("confidence", Confidence)
        subject = fields.text("for") or "service"
        if subject not in SUBJECTS:
            error(node.key_lines["for"], f"'for' must be one of: {', '.join(SUBJECTS)}")
            subject = "service"
        description = fields.text("description")
        remediation = fields.text("remediation", required=True)
        references = fields.strings("references", required=True, check=_url_problem)
        controls = fields.strings("controls", check=_control_problem)
        cves = fields.strings("cves", check=_cve_problem)
        evidence = fields.strings("evidence", check=lambda f: _fact_problem(f, subject))
        discriminator = fields.text("discriminator")
        if discriminator is not None and (problem := _fact_problem(discriminator, subject)):
            error(node.key_lines["discriminator"], problem)
        if title is not None:
            for name in TITLE_FACT.findall(title):
                if problem := _fact_problem(name, subject):
                    error(node.key_lines["title"], f"title placeholder {{{name}}}: {problem}")
        severity_from = fields.text("severity_from")
        if severity_from is not None and (
            problem := _choice_fact_problem(severity_from, subject, Severity)
        ):
            error(node.key_lines["severity_from"], f"severity_from: {problem}")
        confidence_from = fields.text("confidence_from")
        if confidence_from is not None and (
            problem := _choice_fact_problem(confidence_from, subject, Confidence)
        ):
            error(node.key_lines["confidence_from"], f"confidence_from: {problem}")
        when = None
        if "when" not in node:
            error(line, "missing key 'when'")
        else:
            when = compile_when(node["when"], node.key_lines["when"], subject, error)
        matches, no_matches = self.examples(node, subject, error)
        # Nothing reported means every required field was read; the None checks tell mypy.
        if len(self.problems) > first_problem or rule_id is None or title is None:
            return None
        if severity is None or remediation is None or when is None:
            return None
        return Rule(
            id=rule_id,
            title=title,
            severity=severity,
            description=description,
            subject=subject,
            when=when,
            confidence=confidence,
            evidence=evidence,
            remediation=remediation,
            references=references,
            controls=controls,
            cves=cves,
            pack=pack,
            source=f"{self.shown}:{line}",
            discriminator=discriminator,
            severity_from=severity_from,
            confidence_from=confidence_from,
            match_examples=matches,
            no_match_examples=no_matches,
        )

    def examples(
        self, rule: LocatedMap, subject: str, error: Callable[[int, str], None]
    ) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
        node = rule.get("examples")
        if node is None:
            return (), ()
        if not isinstance(node, LocatedMap):
            error(rule.key_lines["examples"], "'examples' must be a mapping with match, no_match")
            return (), ()
        for line, message in _keys_problems(node, EXAMPLE_KEYS):
            error(line, f"examples: {message}")
        found: dict[str, tuple[Example, ...]] = {}
        for kind in EXAMPLE_KEYS:
            docs = node.get(kind, LocatedList(node.line))
            if not isinstance(docs, LocatedList):
                error(node.key_lines[kind], f"examples.{kind} must be a list of fact mappings")
                continue
            examples = []
            for doc, line in zip(docs, docs.item_lines, strict=True):
                facts = self.fact_document(doc, line, subject, f"examples.{kind}", error)
                if facts is not None:
                    examples.append(Example(facts, f"{self.shown}:{line}"))
            found[kind] = tuple(examples)
        return found.get("match", ()), found.get("no_match", ())

    def fact_document(
        self, doc: Any, line: int, subject: str, where: str, error: Callable[[int, str], None]
    ) -> dict[str, Any] | None:
        if not isinstance(doc, LocatedMap):
            error(line, f"{where}: each example must be a mapping of facts, not {describe(doc)}")
            return None
        known = visible_facts(subject)
        facts: dict[str, Any] = {}
        for name, value in doc.items():
            at = doc.key_lines[name]
            spec = known.get(name)
            if spec is None:
                error(at, f"{where}: {unknown_fact_message(name, subject)}")
            elif value is None and not spec.always:
                continue  # null spells a missing fact
            elif problem := value_problem(spec, value):
                error(at, f"{where}: {problem}")
            else:
                facts[name] = list(value) if isinstance(value, list) else value
        return facts


class _Fields:
    """Typed reads of a mapping's keys that report what is wrong, at the key's line."""

    def __init__(self, node: LocatedMap, error: Callable[[int, str], None]) -> None:
        self.node = node
        self.error = error

    def _line(self, key: str) -> int:
        return self.node.key_lines.get(key, self.node.line)

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str | None:
        if key not in self.node:
            if required:
                self.error(self.node.line, f"missing key '{key}'")
            return None
        value = self.node[key]
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, int | float) else ""
            self.error(self._line(key), f"'{key}' must be a string, not {describe(value)}{hint}")
            return None
        value = value.strip()
        if not value:
            self.error(self._line(key), f"'{key}' is empty")
            return None
        if len(value) > MAX_TEXT:
            self.error(self._line(key), f"'{key}' is longer than {MAX_TEXT} characters")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(self._line(key), f"'{key}' {value!r} is not {what} ({pattern.pattern})")
            return None
        return value

    def choice(self, key: str, kind: type[_Choice], *, required: bool = False) -> _Choice | None:
        text = self.text(key, required=required)
        if text is None:
            return None
        try:
            return kind(text)
        except ValueError:
            expected = ", ".join(member.value for member in kind)
            self.error(self._line(key), f"'{key}' {text!r} is not one of: {expected}")
            return None

    def strings(
        self,
        key: str,
        *,
        required: bool = False,
        check: Callable[[str], str | None],
    ) -> tuple[str, ...]:
        if key not in self.node:
            if required:
                self.error(self.node.line, f"missing key '{key}'")
            return ()
        items = self.node[key]
        if not isinstance(items, LocatedList):
            self.error(self._line(key), f"'{key}' must be a list, not {describe(items)}")
            return ()
        if required and not items:
            self.error(self._line(key), f"'{key}' needs at least one entry")
        values = []
        for item, line in zip(items, items.item_lines, strict=True):
            if not isinstance(item, str):
                self.error(line, f"'{key}' entries must be strings, not {describe(item)}")
            elif problem := check(item):
                self.error(line, f"{key}: {problem}")
            else:
                values.append(item)
        return tuple(values)


def _url_problem(text: str) -> str | None:
    return None if URL.fullmatch(text) else f"{text!r} is not an http(s) URL"


def _cve_problem(text: str) -> str | None:
    return None if CVE_ID.fullmatch(text) else f"{text!r} is not a CVE id (CVE-2024-12345)"


def _control_problem(text: str) -> str | None:
    framework, colon, ident = text.partition(":")
    pattern = CONTROL_IDS.get(framework)
    if pattern is None or not colon:
        known = ", ".join(CONTROL_IDS)
        what = "unknown framework in" if pattern is None else "no control id in"
        return f"{what} {text!r} (expected FRAMEWORK:ID with one of: {known})"
    if not pattern.fullmatch(ident):
        return f"{text!r}: {ident!r} is not a {framework} control id"
    return None


def _fact_problem(name: str, subject: str) -> str | None:
    return None if name in visible_facts(subject) else unknown_fact_message(name, subject)


def _choice_fact_problem(name: str, subject: str, kind: type[_Choice]) -> str | None:
    """Why `name` cannot give a finding's severity (or confidence): it must be a string fact
    whose every allowed value is one."""
    if problem := _fact_problem(name, subject):
        return problem
    spec = FACTS[name]
    allowed = {member.value for member in kind}
    if spec.kind is not FactKind.STR or not spec.choices or not set(spec.choices) <= allowed:
        return f"fact '{name}' does not hold a {kind.__name__.lower()} ({', '.join(allowed)})"
    return None


def parse_pack(doc: Any, path: Path, problems: list[PackProblem]) -> ParsedPack:
    """Check one pack document; problems are appended to `problems`."""
    return _Pack(path, problems).parse(doc)
