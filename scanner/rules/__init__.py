"""The rule-pack engine: load and check YAML packs (errors name file:line), then turn facts
into findings. The scan runner needs only the names exported here.
"""

from scanner.rules.errors import PackError, PackProblem
from scanner.rules.evaluate import evaluate
from scanner.rules.examples import ExampleFailure, run_examples
from scanner.rules.facts import FACTS, host_facts, service_facts
from scanner.rules.loader import default_pack_paths, load_packs
from scanner.rules.ruleset import Example, Pack, Rule, RuleSet

__all__ = [
    "FACTS",
    "Example",
    "ExampleFailure",
    "Pack",
    "PackError",
    "PackProblem",
    "Rule",
    "RuleSet",
    "default_pack_paths",
    "evaluate",
    "host_facts",
    "load_packs",
    "run_examples",
    "service_facts",
]
