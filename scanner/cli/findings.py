"""`posture findings` (list, show, set-status, assign) and `posture scans`: read and judge the
store.

Target-derived text (titles, hostnames, evidence) is hostile: every such string goes through
`for_terminal` and into rich `Text`, which never interprets markup.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from scanner.cli.common import (
    SEVERITY_STYLE,
    config,
    console,
    db_option,
    json_option,
    resolve_db,
)
from scanner.model import FindingStatus, ScanRecord, Severity, StoredFinding
from scanner.owners import UNASSIGNED, ResolvedOwner, same_owner
from scanner.report.vulns import VulnRow
from scanner.safetext import for_terminal
from scanner.store import FindingEvent, OwnerAssignment, Store
from scanner.store.export import (
    event_as_dict,
    finding_as_dict,
    owner_assignment_as_dict,
    scan_as_dict,
)

FINGERPRINT_SHOWN = 12  # hex digits of a fingerprint in tables; any unique 8+ are accepted back
DEFAULT_STATUSES = (FindingStatus.OPEN, FindingStatus.REOPENED)
_NO_WRAP = {"Severity", "Status", "Port", "Fingerprint", "At", "Id", "Started", "Finished"}
_LISTING_OPTIONS = {
    "severity": "--severity",
    "host": "--host",
    "port": "--port",
    "rule_id": "--rule",
    "statuses": "--status",
    "scan_id": "--scan",
    "owner": "--owner",
    "as_of": "--as-of",
    "as_json": "--json",
}


def _safe(value: object, limit: int = 200, style: str = "") -> Text:
    """A cell from hostile text: controls escaped, length bounded, never parsed as markup."""
    return Text(for_terminal(value, limit), style=style)


def _open_store(ctx: click.Context, db_path: Path | None) -> Store:
    # Read commands never create a database: a typo in --db must not look like "no findings".
    if db_path is None and ctx.parent is not None:
        db_path = ctx.parent.params.get("db_path")
    return Store(resolve_db(ctx, db_path), create=False)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _where(finding: StoredFinding) -> str:
    return f"{finding.port}/{finding.proto}" if finding.port is not None else "-"


def findings_table(
    findings: Iterable[StoredFinding],
    title: str | None = None,
    owners: Mapping[str, str] | None = None,
) -> Table:
    """Findings as a rich table; every target-derived cell escaped and bounded. With `owners`
    (fingerprint -> name), an Owner column."""
    table = Table(show_lines=False, header_style="bold", title=title)
    columns = ["Severity", "Status", "Host", "Port", "Rule", "Title", "Fingerprint"]
    if owners is not None:
        columns.insert(2, "Owner")
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in _NO_WRAP)
    for f in findings:
        host = f.host if not f.hostname else f"{f.host} ({f.hostname})"
        cells = [
            Text(f.severity.value, style=SEVERITY_STYLE[f.severity.value]),
            Text(f.status.value),
            _safe(host),
            _safe(_where(f)),
            _safe(f.rule_id),
            _safe(f.title),
            Text(f.fingerprint[:FINGERPRINT_SHOWN]),
        ]
        if owners is not None:
            cells.insert(2, _safe(owners.get(f.fingerprint, UNASSIGNED), 100))
        table.add_row(*cells)
    return table


def vulnerabilities_table(rows: Iterable[VulnRow], title: str | None = None) -> Table:
    """Vulnerability findings, most urgent first (KEV, then EPSS, then CVSS)."""
    table = Table(show_lines=False, header_style="bold", title=title)
    for name in ("Priority", "Severity", "Where", "Software", "Advisory", "CVSS", "EPSS"):
        table.add_column(name, overflow="fold", no_wrap=name in ("Priority", "Severity", "CVSS"))
    table.add_column("Fixed in", overflow="fold")
    table.add_column("Confidence", no_wrap=True)
    for row in rows:
        f = row.finding
        priority = row.priority
        if row.kev:
            priority = "KEV, ransomware" if row.kev_ransomware else "KEV"
        software = " ".join(part for part in (row.product, row.version) if part)
        table.add_row(
            Text(priority, style="bold red" if row.kev else ""),
            Text(f.severity.value, style=SEVERITY_STYLE[f.severity.value]),
            _safe(row.where),
            _safe(software),
            _safe(row.advisory_id),
            Text(f"{row.cvss:.1f}" if row.cvss is not None else "-"),
            Text(f"{row.epss:.2f}" if row.epss is not None else "-"),
            _safe(row.fixed_version or "-"),
            Text(f.confidence.value),
        )
    return table


@click.group("findings", invoke_without_command=True)
@db_option
@click.option(
    "--severity",
    type=click.Choice([s.value for s in Severity], case_sensitive=False),
    help="Only findings of at least this severity.",
)
@click.option("--host", help="Only findings on this address or hostname.")
@click.option("--port", type=click.IntRange(0, 65535), help="Only findings on this port.")
@click.option("--rule", "rule_id", help="Only findings of this rule id.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in FindingStatus] + ["all"], case_sensitive=False),
    help="Only findings in this status (repeatable; default: open and reopened; 'all').",
)
@click.option(
    "--scan", "scan_id", type=click.IntRange(min=1), help="Only findings observed in this scan."
)
@click.option(
    "--owner",
    help="Only findings of this owner (assigned, or by [[owners]] in posture.toml; any case; "
    "'unassigned' for those nobody owns).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The findings as they stood at the end of this day (UTC), statuses then.",
)
@json_option
@click.pass_context
def findings_cmd(
    ctx: click.Context,
    db_path: Path | None,
    severity: str | None,
    host: str | None,
    port: int | None,
    rule_id: str | None,
    statuses: tuple[str, ...],
    scan_id: int | None,
    owner: str | None,
    as_of: datetime | None,
    as_json: bool,
) -> None:
    """List stored findings, most severe first, with their owners; subcommands show one, judge
    it, or give it an owner."""
    if ctx.invoked_subcommand is not None:
        given = [
            flag
            for name, flag in _LISTING_OPTIONS.items()
            if ctx.params.get(name) not in (None, (), False)
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)}: listing options; give them to `posture findings` "
                f"alone, not with `{ctx.invoked_subcommand}`"
            )
        return
    wanted: list[FindingStatus] | None
    if "all" in statuses:
        wanted = None
    else:
        wanted = [FindingStatus(s) for s in statuses] if statuses else list(DEFAULT_STATUSES)
    with _open_store(ctx, db_path) as store:
        found = store.findings(
            min_severity=Severity.parse(severity) if severity else None,
            host=host,
            port=port,
            rule=rule_id,
            statuses=wanted if as_of is None else None,
            scan_id=scan_id,
        )
        if as_of is not None:
            then = store.statuses_as_of(as_of.strftime("%Y-%m-%dT23:59:59Z"))
            found = [
                dataclasses.replace(f, status=then[f.fingerprint])
                for f in found
                if f.fingerprint in then and (wanted is None or then[f.fingerprint] in wanted)
            ]
        owners = config(ctx).owners.names(found, store.owner_assignments())
    if owner is not None:
        found = [f for f in found if same_owner(owners[f.fingerprint], owner.strip())]
    if as_json:
        _echo_json([{**finding_as_dict(f), "owner": owners[f.fingerprint]} for f in found])
        return
    if not found:
        shown = "any status" if wanted is None else ", ".join(s.value for s in wanted)
        of = f", owner {owner.strip()}" if owner is not None else ""
        click.echo(for_terminal(f"No findings match ({shown}{of}).", 300))
        return
    out = console()
    out.print(findings_table(found, owners=owners))
    out.print(Text(f"{len(found)} finding(s)"))


def _event_table(events: Iterable[FindingEvent]) -> Table:
    table = Table(title="History", title_justify="left", header_style="bold")
    for name in ("At", "Change", "Scan", "By", "Note"):
        table.add_column(name, overflow="fold", no_wrap=name in _NO_WRAP)
    for e in events:
        change = f"{e.from_status.value} → " if e.from_status else "new → "
        table.add_row(
            Text(e.at),
            Text(change + e.to_status.value),
            Text("" if e.scan_id is None else str(e.scan_id)),
            _safe(e.actor or ""),
            _safe(e.note or "", 400),
        )
    return table


@findings_cmd.command("show")
@click.argument("fingerprint")
@db_option
@json_option
@click.pass_context
def show_cmd(ctx: click.Context, fingerprint: str, db_path: Path | None, as_json: bool) -> None:
    """Show one finding (fingerprint or a unique prefix of 8+ digits) with its history."""
    with _open_store(ctx, db_path) as store:
        finding = store.get_finding(fingerprint)
        events = store.events(finding.fingerprint)
        assigned = store.owner_assignment(finding.fingerprint)
        history = store.owner_history(finding.fingerprint)
    owner = config(ctx).owners.resolve(
        finding, {finding.fingerprint: assigned} if assigned else None
    )
    if as_json:
        _echo_json(
            {
                **finding_as_dict(finding),
                "owner": owner.name,
                "owner_detail": _owner_dict(owner, assigned),
                "events": [event_as_dict(e) for e in events],
                "owner_history": [owner_assignment_as_dict(a) for a in history],
            }
        )
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    rows: list[tuple[str, object]] = [
        ("Fingerprint", finding.fingerprint),
        ("Title", finding.title),
        ("Rule", finding.rule_id),
        ("Severity", finding.severity.value),
        ("Confidence", finding.confidence.value),
        ("Status", finding.status.value),
        ("Owner", _owner_line(owner, assigned)),
        ("Host", finding.host),
        ("Hostname", finding.hostname),
        ("Port", _where(finding)),
        ("Discriminator", finding.discriminator),
        ("CVEs", ", ".join(finding.cves)),
        ("Controls", ", ".join(finding.controls)),
        ("First seen", finding.first_seen),
        ("Last seen", f"{finding.last_seen} (scan {finding.last_scan_id})"),
        ("Fixed at", finding.fixed_at),
        ("Status note", finding.status_note),
        ("Accepted until", finding.accept_expires),
    ]
    for label, value in rows:
        if value:
            grid.add_row(Text(label), _safe(value, 400))
    for key, value in sorted(finding.evidence.items()):
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        grid.add_row(_safe(f"evidence.{key}", 80), _safe(shown, 400))
    out = console()
    out.print(grid)
    out.print(_event_table(events))
    if history:
        out.print(_owner_table(history))


def _owner_line(owner: ResolvedOwner, assigned: OwnerAssignment | None) -> str:
    contact = f" <{owner.contact}>" if owner.contact else ""
    if assigned is not None:
        by = f" by {assigned.actor}" if assigned.actor else ""
        note = f": {assigned.note}" if assigned.note else ""
        return f"{owner.name}{contact} (assigned{by} at {assigned.at}{note})"
    if owner.source == "config":
        return f"{owner.name}{contact} ([[owners]] entry {owner.entry} of posture.toml)"
    return owner.name


def _owner_dict(owner: ResolvedOwner, assigned: OwnerAssignment | None) -> dict[str, Any]:
    return {
        "name": owner.name,
        "contact": owner.contact,
        "source": owner.source,  # "assigned", "config" or "none"
        "entry": owner.entry,  # the [[owners]] entry (source "config")
        "assigned_by": assigned.actor if assigned else None,
        "assigned_at": assigned.at if assigned else None,
        "note": assigned.note if assigned else None,
    }


def _owner_table(history: Iterable[OwnerAssignment]) -> Table:
    table = Table(title="Owner history", title_justify="left", header_style="bold")
    for name in ("At", "Owner", "By", "Note"):
        table.add_column(name, overflow="fold", no_wrap=name in _NO_WRAP)
    for a in history:
        owner = f"{a.owner} <{a.contact}>" if a.owner and a.contact else a.owner
        table.add_row(
            Text(a.at),
            _safe(owner or "(cleared)", 320),
            _safe(a.actor or ""),
            _safe(a.note or "", 400),
        )
    return table


def _current_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return None


@findings_cmd.command("set-status")
@click.argument("fingerprint")
@click.option(
    "--status",
    "status",
    required=True,
    type=click.Choice(["risk_accepted", "false_positive", "open"], case_sensitive=False),
    help="The verdict; scans never undo risk_accepted or false_positive.",
)
@click.option("--reason", required=True, help="Why (kept with the finding and its history).")
@click.option(
    "--expires",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="YYYY-MM-DD: the risk acceptance ends on this day (risk_accepted only).",
)
@db_option
@click.pass_context
def set_status_cmd(
    ctx: click.Context,
    fingerprint: str,
    status: str,
    reason: str,
    expires: datetime | None,
    db_path: Path | None,
) -> None:
    """Accept a finding's risk, mark it a false positive, or open it again."""
    with _open_store(ctx, db_path) as store:
        finding = store.set_status(
            fingerprint,
            FindingStatus(status.lower()),
            reason,
            expires=expires.date() if expires else None,
            actor=_current_user(),
        )
    until = f" until {finding.accept_expires}" if finding.accept_expires else ""
    line = (
        f"{finding.fingerprint[:FINGERPRINT_SHOWN]} is now {finding.status.value}{until}: "
        f"{finding.rule_id} on {finding.host} {_where(finding)} ({finding.status_note})"
    )
    click.echo(for_terminal(line, 1000))


@findings_cmd.command("assign")
@click.argument("fingerprint")
@click.option("--owner", help="The team or person who owns this finding (1-100 characters).")
@click.option("--contact", help="How to reach the owner, e.g. an e-mail address (with --owner).")
@click.option("--note", help="Why (kept with the assignment and its history).")
@click.option(
    "--clear", is_flag=True, help="Remove the assignment: posture.toml's [[owners]] decide again."
)
@db_option
@click.pass_context
def assign_cmd(
    ctx: click.Context,
    fingerprint: str,
    owner: str | None,
    contact: str | None,
    note: str | None,
    clear: bool,
    db_path: Path | None,
) -> None:
    """Give one finding an owner, over the [[owners]] of posture.toml (who and when are kept);
    --clear removes it."""
    if clear == (owner is not None):
        raise click.UsageError("give --owner NAME, or --clear to remove the assignment")
    with _open_store(ctx, db_path) as store:
        assigned = store.assign_owner(
            fingerprint, owner, contact=contact, note=note, actor=_current_user()
        )
        finding = store.get_finding(fingerprint)
    short = finding.fingerprint[:FINGERPRINT_SHOWN]
    if assigned is not None:
        line = f"{short} is now owned by {assigned.owner}"
    else:
        fallback = config(ctx).owners.resolve(finding).name
        line = f"{short} has no assigned owner; by posture.toml it is {fallback}"
    click.echo(for_terminal(f"{line}: {finding.rule_id} on {finding.host} {_where(finding)}", 1000))


def _scans_table(scans: Iterable[ScanRecord]) -> Table:
    table = Table(header_style="bold")
    for name in ("Id", "Started", "Finished", "Status", "Hosts", "Targets"):
        table.add_column(name, overflow="fold", no_wrap=name in _NO_WRAP)
    for s in scans:
        table.add_row(
            Text(str(s.id)),
            Text(s.started),
            Text(s.finished or "-"),
            Text(s.status.value),
            Text(f"{s.hosts_done}/{s.hosts_total}"),
            _safe(" ".join(s.targets)),
        )
    return table


@click.command("scans")
@db_option
@json_option
@click.pass_context
def scans_cmd(ctx: click.Context, db_path: Path | None, as_json: bool) -> None:
    """List the scans in the database, oldest first."""
    with _open_store(ctx, db_path) as store:
        scans = store.list_scans()
    if as_json:
        _echo_json([scan_as_dict(s) for s in scans])
        return
    if not scans:
        click.echo("No scans yet.")
        return
    console().print(_scans_table(scans))


COMMANDS: list[click.Command] = [findings_cmd, scans_cmd]
