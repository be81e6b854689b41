"""`posture sla`: remediation deadlines per severity, what is overdue, and time to remediate."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from scanner.cli.common import SEVERITY_STYLE, config, console, db_option, json_option, resolve_db
from scanner.errors import EXIT_FINDINGS
from scanner.owners import UNASSIGNED, Owners, same_owner
from scanner.safetext import for_terminal
from scanner.store import Store
from scanner.store.export import finding_as_dict
from scanner.store.sla import SlaItem, SlaPolicy, SlaReport, sla_report


def _item_dict(item: SlaItem, owners: Mapping[str, str]) -> dict[str, Any]:
    return {
        **finding_as_dict(item.finding),
        "owner": owners.get(item.finding.fingerprint, UNASSIGNED),
        "opened": item.opened.isoformat(),
        "due": item.due.isoformat() if item.due else None,
        "days_left": item.days_left,
        "breached": item.breached,
        "days_overdue": item.days_overdue,
    }


def report_as_dict(report: SlaReport, owners: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report as JSON; `owners` maps fingerprints to owner names (absent: unassigned)."""
    owners = owners or {}
    return {
        "today": report.today.isoformat(),
        "by_severity": [
            {
                "severity": s.severity.value,
                "sla_days": s.sla_days,
                "active": s.active,
                "breached": s.breached,
                "due_soon": s.due_soon,
                "fixed": s.fixed,
                "fixed_in_time": s.fixed_in_time,
                "mean_days_to_fix": s.mean_days_to_fix,
            }
            for s in report.stats
        ],
        "breached": [_item_dict(i, owners) for i in report.breached],
        "items": [_item_dict(i, owners) for i in report.items],
    }


def sla_owners(owners: Owners, report: SlaReport, store: Store) -> dict[str, str]:
    """Fingerprint -> owner of every finding with an SLA: a person's assignment, else the first
    matching [[owners]] entry, else unassigned."""
    return owners.names((i.finding for i in report.items), store.owner_assignments())


def _summary(report: SlaReport) -> Table:
    table = Table(header_style="bold", title=f"SLAs as of {report.today.isoformat()}")
    for name in ("Severity", "SLA", "Active", "Breached", "Due soon", "Fixed", "In time", "MTTR"):
        table.add_column(name, no_wrap=True)
    for s in report.stats:
        table.add_row(
            Text(s.severity.value, style=SEVERITY_STYLE[s.severity.value]),
            Text(f"{s.sla_days} d" if s.sla_days else "-"),
            Text(str(s.active)),
            Text(str(s.breached), style="bold red" if s.breached else ""),
            Text(str(s.due_soon)),
            Text(str(s.fixed)),
            Text(f"{100 * s.fixed_in_time / s.fixed:.0f} %" if s.fixed else "-"),
            Text(f"{s.mean_days_to_fix:.1f} d" if s.mean_days_to_fix is not None else "-"),
        )
    return table


def _overdue(items: tuple[SlaItem, ...], owners: Mapping[str, str]) -> Table:
    table = Table(header_style="bold", title="Overdue, longest first")
    for name in ("Severity", "Overdue", "Due", "Owner", "Host", "Port", "Title", "Fingerprint"):
        table.add_column(name, overflow="fold", no_wrap=name in ("Severity", "Overdue", "Due"))
    for item in items:
        f = item.finding
        table.add_row(
            Text(f.severity.value, style=SEVERITY_STYLE[f.severity.value]),
            Text(f"{item.days_overdue} d"),
            Text(item.due.isoformat() if item.due else "-"),
            Text(for_terminal(owners.get(f.fingerprint, UNASSIGNED), 100)),
            Text(for_terminal(f.host, 100)),
            Text(f"{f.port}/{f.proto}" if f.port is not None else "-"),
            Text(for_terminal(f.title, 200)),
            Text(f.fingerprint[:12]),
        )
    return table


@click.command("sla")
@click.option("--fail-on-breach", is_flag=True, help="Exit 1 when any finding is overdue.")
@click.option(
    "--owner",
    default=None,
    help="Only findings of this owner (assigned, or by [[owners]]; any case; 'unassigned').",
)
@db_option
@json_option
@click.pass_context
def sla_command(
    ctx: click.Context,
    fail_on_breach: bool,
    owner: str | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Each active finding's due date (days per severity from [sla] in posture.toml; default
    critical 7, high 30, medium 90, low 180), what is overdue and by how long, and per severity
    the fixes made in time and the mean time to remediate."""
    policy = config(ctx).sla or SlaPolicy()
    with Store(resolve_db(ctx, db_path), create=False) as store:
        report = sla_report(store, policy)
        owners = sla_owners(config(ctx).owners, report, store)
    if owner is not None:
        report = dataclasses.replace(
            report,
            items=tuple(
                i for i in report.items if same_owner(owners[i.finding.fingerprint], owner.strip())
            ),
        )
    if as_json:
        click.echo(json.dumps(report_as_dict(report, owners), indent=2))
    else:
        out = console()
        out.print(_summary(report))
        if report.breached:
            out.print(_overdue(report.breached, owners))
    if fail_on_breach and report.breached:
        sys.exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = [sla_command]
