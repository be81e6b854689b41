"""`posture compliance`: each control of a framework as pass, fail or not tested, and the scans
that are the evidence."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from scanner.cli.common import console, db_option, json_option, load_ruleset, resolve_db
from scanner.errors import EXIT_FINDINGS
from scanner.report.compliance import (
    FRAMEWORKS,
    ComplianceView,
    store_compliance,
    view_as_dict,
)
from scanner.safetext import for_terminal
from scanner.store import Store

_STYLE = {"pass": "green", "fail": "bold red", "not tested": "yellow"}


def _controls_table(view: ComplianceView) -> Table:
    table = Table(header_style="bold", title=f"{view.name}: controls")
    for name in ("Control", "Status", "Rules", "Failing", "Exceptions", "Tested by scans"):
        table.add_column(name, overflow="fold", no_wrap=name in ("Control", "Status"))
    for c in view.controls:
        tested = ", ".join(map(str, c.tested_by[-5:])) + (" …" if len(c.tested_by) > 5 else "")
        table.add_row(
            Text(c.control),
            Text(c.status, style=_STYLE[c.status]),
            Text(str(len(c.rules))),
            Text(str(len(c.failing))),
            Text(str(len(c.exceptions))),
            Text(tested or "-"),
        )
    return table


def _scans_table(view: ComplianceView) -> Table:
    table = Table(header_style="bold", title="Scan history (evidence)")
    for name in ("Scan", "Started", "Finished", "Status", "Hosts", "Targets", "Scope"):
        table.add_column(name, overflow="fold", no_wrap=name in ("Scan", "Status", "Hosts"))
    for s in view.scans:
        table.add_row(
            Text(str(s.id)),
            Text(s.started),
            Text(s.finished or "-"),
            Text(s.status.value),
            Text(f"{s.hosts_done}/{s.hosts_total}"),
            Text(for_terminal(" ".join(s.targets), 200)),
            Text(for_terminal(" ".join(s.scope), 200) or "-"),
        )
    return table


@click.command("compliance")
@click.option(
    "--framework",
    type=click.Choice(list(FRAMEWORKS)),
    default="pci-dss-4.0",
    show_default=True,
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Scans from this day on are the evidence [default: the last 365 days].",
)
@click.option("--fail-on-fail", is_flag=True, help="Exit 1 when a control fails.")
@db_option
@json_option
@click.pass_context
def compliance_command(
    ctx: click.Context,
    framework: str,
    since: datetime | None,
    fail_on_fail: bool,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Each control the rule packs map to FRAMEWORK: fail while a finding of one of its rules
    is open, pass when a completed scan since SINCE evaluated its rules and none is open
    (accepted risks listed as exceptions), else not tested; and the scans since SINCE, the
    evidence PCI DSS 11.3.1 asks for."""
    ruleset = load_ruleset(ctx, ())
    first_day: date = since.date() if since else datetime.now(UTC).date() - timedelta(days=365)
    with Store(resolve_db(ctx, db_path), create=False) as store:
        view = store_compliance(store, ruleset.rules, framework, first_day)
    if as_json:
        click.echo(json.dumps({**view_as_dict(view), "since": first_day.isoformat()}, indent=2))
    else:
        out = console()
        counts = view.counts()
        out.print(
            f"{view.name} since {first_day.isoformat()}: {counts['pass']} pass, "
            f"{counts['fail']} fail, {counts['not tested']} not tested; {len(view.scans)} scans",
            markup=False,
            highlight=False,
        )
        out.print(_controls_table(view))
        out.print(_scans_table(view))
    if fail_on_fail and view.counts()["fail"]:
        sys.exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = [compliance_command]
