"""Run every rule's examples (`posture rules test`): each `match` document must match and each
`no_match` document must not; a rule without both kinds is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.rules.ruleset import RuleSet


@dataclass(frozen=True)
class ExampleFailure:
    rule_id: str
    source: str  # "path:line" of the example (of the rule when examples are missing)
    problem: str

    def __str__(self) -> str:
        return f"{self.source} {self.rule_id}: {self.problem}"


def run_examples(ruleset: RuleSet) -> list[ExampleFailure]:
    failures: list[ExampleFailure] = []
    for rule in ruleset.rules:
        if not rule.match_examples:
            failures.append(ExampleFailure(rule.id, rule.source, "has no 'match' examples"))
        if not rule.no_match_examples:
            failures.append(ExampleFailure(rule.id, rule.source, "has no 'no_match' examples"))
        for number, example in enumerate(rule.match_examples, start=1):
            if rule.when.match(example.facts) is None:
                failures.append(
                    ExampleFailure(
                        rule.id, example.source, f"example {number} should match but did not"
                    )
                )
        for number, example in enumerate(rule.no_match_examples, start=1):
            if rule.when.match(example.facts) is not None:
                failures.append(
                    ExampleFailure(
                        rule.id, example.source, f"no_match example {number} matched but should not"
                    )
                )
    return failures
