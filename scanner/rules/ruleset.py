"""Loaded rule packs as frozen values: `Rule`, `Pack`, and the `RuleSet` the scan runs."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.model import Confidence, Severity
from scanner.rules.facts import check_namespace
from scanner.rules.matcher import Matcher
from scanner.safetext import clip

# `{fact.name}` in a title stands for that fact's value in each finding.
TITLE_FACT = re.compile(r"\{([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")
TITLE_VALUE_CHARS = 80


@dataclass(frozen=True)
class Example:
    """A fact document a rule must (or must not) match, and where it is written."""

    facts: Mapping[str, Any] = field(hash=False)
    source: str  # "path:line"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    description: str | None
    subject: str  # "service" | "host" | "vulnerability"
    when: Matcher = field(hash=False, compare=False)
    confidence: Confidence | None
    evidence: tuple[str, ...]
    remediation: str
    references: tuple[str, ...]
    controls: tuple[str, ...]
    cves: tuple[str, ...]
    pack: str
    source: str  # "path:line" of the rule
    discriminator: str | None = None  # fact whose value tells findings of one port apart
    # Facts whose value, when present, is the finding's severity / confidence instead of the
    # rule's own (a vulnerability's CVSS decides its severity, not the rule).
    severity_from: str | None = None
    confidence_from: str | None = None
    match_examples: tuple[Example, ...] = ()
    no_match_examples: tuple[Example, ...] = ()
    # The active checks ("redis", "ftp", ...: keys of Service.checks) whose facts `when` reads
    # anywhere inside all/any/not. When such a check ran on a service but got no answer, the
    # rule is undetermined there: its absence must not mark a finding fixed.
    check_namespaces: frozenset[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        names = (check_namespace(name) for name in self.when.fact_names())
        spaces = frozenset(name for name in names if name is not None)
        object.__setattr__(self, "check_namespaces", spaces)

    def title_for(self, facts: Mapping[str, Any]) -> str:
        """The title with each `{fact}` replaced by its value in `facts` ("?" when missing)."""
        if "{" not in self.title:
            return self.title

        def value(found: re.Match[str]) -> str:
            raw = facts.get(found.group(1))
            if raw is None:
                return "?"
            text = ", ".join(map(str, raw)) if isinstance(raw, list | tuple) else str(raw)
            return clip(text, TITLE_VALUE_CHARS)

        return TITLE_FACT.sub(value, self.title)


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    path: Path
    rules: tuple[Rule, ...]
    description: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class RuleSet:
    """Every loaded pack; rule ids are unique across them (the loader guarantees it)."""

    def __init__(self, packs: Iterable[Pack]) -> None:
        self.packs: tuple[Pack, ...] = tuple(packs)
        self.rules: tuple[Rule, ...] = tuple(rule for pack in self.packs for rule in pack.rules)
        self._by_id = {rule.id: rule for rule in self.rules}

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def pack_labels(self) -> tuple[str, ...]:
        """Each pack as "name@version", the way a scan records them."""
        return tuple(pack.label for pack in self.packs)

    def only(self, keep: Callable[[Rule], bool]) -> RuleSet:
        """The same packs holding only the rules `keep` accepts (packs left empty are dropped)."""
        packs = []
        for pack in self.packs:
            rules = tuple(rule for rule in pack.rules if keep(rule))
            if rules:
                packs.append(dataclasses.replace(pack, rules=rules))
        return RuleSet(packs)
