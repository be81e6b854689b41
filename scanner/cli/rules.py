"""`posture rules`: list, validate and test rule packs (a broken pack exits 2 with file:line)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from scanner.cli.common import SEVERITY_STYLE, config, console, json_option
from scanner.errors import EXIT_USAGE
from scanner.rules import PackError, Rule, RuleSet, default_pack_paths, load_packs, run_examples
from scanner.safetext import for_terminal

EXIT_EXAMPLES_FAILED = 1

_paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]..."
)


def _load(ctx: click.Context, paths: tuple[Path, ...]) -> RuleSet:
    """The given packs, else the built-in ones plus `packs` from posture.toml; on a broken pack
    print every problem and exit 2."""
    chosen = list(paths) if paths else [*default_pack_paths(), *config(ctx).packs]
    try:
        return load_packs(chosen)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(for_terminal(problem, 2000), err=True)
        count = len(exc.problems)
        click.echo(f"posture: error: {count} problem(s) in rule packs; fix them first", err=True)
        ctx.exit(EXIT_USAGE)


@click.group("rules")
def rules_group() -> None:
    """Rule packs: list their rules, validate them, run their examples."""


@rules_group.command("list")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Pack file or folder to list instead of the built-in and configured packs (repeatable).",
)
@json_option
@click.pass_context
def list_rules(ctx: click.Context, rule_paths: tuple[Path, ...], as_json: bool) -> None:
    """List every rule: id, severity, title, pack."""
    ruleset = _load(ctx, rule_paths)
    if as_json:
        click.echo(json.dumps([_rule_json(rule) for rule in ruleset.rules], indent=2))
        return
    table = Table(show_lines=False, header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("title")
    table.add_column("pack", no_wrap=True)
    labels = {pack.name: pack.label for pack in ruleset.packs}
    for rule in ruleset.rules:
        severity = rule.severity.value
        table.add_row(
            Text(rule.id),
            Text(severity, style=SEVERITY_STYLE[severity]),
            Text(for_terminal(rule.title)),
            Text(for_terminal(labels[rule.pack])),
        )
    console().print(table)
    click.echo(f"{len(ruleset.rules)} rules in {len(ruleset.packs)} packs")


def _rule_json(rule: Rule) -> dict[str, object]:
    return {
        "id": rule.id,
        "severity": rule.severity.value,
        "title": rule.title,
        "pack": rule.pack,
        "source": rule.source,
        "for": rule.subject,
        "confidence": rule.confidence.value if rule.confidence else None,
        "description": rule.description,
        "remediation": rule.remediation,
        "references": list(rule.references),
        "controls": list(rule.controls),
        "cves": list(rule.cves),
    }


@rules_group.command("validate")
@_paths_argument
@click.pass_context
def validate_rules(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check packs (default: built-in plus configured) and report every problem with file:line."""
    ruleset = _load(ctx, paths)
    click.echo(f"ok: {len(ruleset.packs)} packs, {len(ruleset.rules)} rules")


@rules_group.command("test")
@_paths_argument
@click.pass_context
def test_rules(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Run every rule's examples; exit 1 when one fails, 2 when a pack does not load."""
    ruleset = _load(ctx, paths)
    failures = run_examples(ruleset)
    for failure in failures:
        click.echo(for_terminal(failure, 2000))
    if failures:
        click.echo(f"{len(failures)} example failure(s) in {len(ruleset.rules)} rules", err=True)
        ctx.exit(EXIT_EXAMPLES_FAILED)
    examples = sum(len(r.match_examples) + len(r.no_match_examples) for r in ruleset.rules)
    click.echo(f"ok: {examples} examples of {len(ruleset.rules)} rules passed")


COMMANDS: list[click.Command] = [rules_group]
