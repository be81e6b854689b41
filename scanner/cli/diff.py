"""`posture diff [SCAN_A] [SCAN_B]`: new, fixed, reopened and unchanged findings between scans."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from scanner.cli.common import console, db_option, json_option, resolve_db
from scanner.cli.findings import findings_table
from scanner.errors import EXIT_FINDINGS
from scanner.model import Severity
from scanner.store import Store
from scanner.store.diff import KINDS, default_pair, diff_as_dict, diff_scans
from scanner.store.export import finding_as_dict

_SHOWN = {"new": "New", "reopened": "Reopened", "fixed": "Fixed", "not_seen": "Not seen again"}


@click.command("diff")
@click.argument("scan_a", type=click.IntRange(min=1), required=False)
@click.argument("scan_b", type=click.IntRange(min=1), required=False)
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default=None,
    help="Exit 1 when a new or reopened finding has this severity or worse.",
)
@click.option("--all", "show_all", is_flag=True, help="List the unchanged findings too.")
@db_option
@json_option
@click.pass_context
def diff_command(
    ctx: click.Context,
    scan_a: int | None,
    scan_b: int | None,
    fail_on: str | None,
    show_all: bool,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """What changed between SCAN_A and the later SCAN_B: new, reopened, fixed, unchanged, and
    findings the later scan did not see again without fixing them (not covered, undetermined,
    accepted). Default: the last two completed scans of the same targets and scope; SCAN_A
    alone: it and the last completed scan of its scope."""
    with Store(resolve_db(ctx, db_path), create=False) as store:
        if scan_b is None:
            scan_a, scan_b = default_pair(store, scan_a)
        assert scan_a is not None
        diff = diff_scans(store, scan_a, scan_b)
    if as_json:
        click.echo(json.dumps(diff_as_dict(diff, finding_as_dict), indent=2))
    else:
        out = console()
        counts = diff.counts()
        out.print(
            f"scan {diff.before.id} -> scan {diff.after.id}: "
            + ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in KINDS),
            markup=False,
            highlight=False,
        )
        for kind in KINDS:
            found = getattr(diff, kind)
            if found and (kind != "unchanged" or show_all):
                title = _SHOWN.get(kind, "Unchanged")
                out.print(findings_table(found, title=f"{title} ({len(found)})"))
    if fail_on is not None:
        floor = Severity(fail_on)
        if any(f.severity.at_least(floor) for f in (*diff.new, *diff.reopened)):
            sys.exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = [diff_command]
