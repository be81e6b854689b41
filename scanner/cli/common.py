"""Options and helpers shared by the command modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scanner.config import Config

if TYPE_CHECKING:
    from rich.console import Console
from scanner.rules import RuleSet, default_pack_paths, load_packs

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """`--db PATH`: the findings database (default ./posture.db or `db` in posture.toml)."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Findings database (default: ./posture.db, or 'db' in posture.toml).",
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout, nothing else."
    )(func)


def rules_option(func: F) -> F:
    """`--rules PATH` (repeatable): extra packs, beside the built-in ones and the config's."""
    return click.option(
        "--rules",
        "rule_paths",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Extra rule pack file or folder (repeatable).",
    )(func)


def load_ruleset(
    ctx: click.Context, extra: tuple[Path, ...], *, builtin_namespace: str | None = None
) -> RuleSet:
    """The built-in packs, the config's `packs`, then `extra`: a broken one raises PackError.

    `builtin_namespace` ("tls") skips the built-in packs whose text never names a fact of that
    namespace: they cannot hold a rule reading one, and parsing them would only cost start-up
    time. The site's own packs are always loaded (and so always validated)."""
    builtin = default_pack_paths()
    if builtin_namespace is not None:
        mention = re.compile(rf"(?<![\w.]){re.escape(builtin_namespace)}\.\w")
        builtin = [p for p in builtin if mention.search(p.read_text(encoding="utf-8"))]
    return load_packs([*builtin, *config(ctx).packs, *extra])


def config(ctx: click.Context) -> Config:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Config) else Config()


def resolve_db(ctx: click.Context, db_path: Path | None) -> Path:
    return db_path if db_path is not None else config(ctx).db


# Terminal style of each severity, keyed by its value ("critical" ...).
SEVERITY_STYLE: dict[str, str] = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}

PIPED_WIDTH = 160  # piped or captured output: one line per row rather than 80 wrapped columns


def console(*, stderr: bool = False) -> Console:
    """A rich console that never interprets markup or emoji codes in what it prints (target
    text is hostile even after escaping), wide enough for a table when output is piped."""
    from rich.console import Console  # not at import: `--json` runs never need rich

    out = Console(stderr=stderr, highlight=False, emoji=False, markup=False)
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out
