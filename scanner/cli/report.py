"""`posture report`: one scan's findings, or a profile's summary, as HTML, Markdown, JSON,
SARIF, CSV or PDF."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from scanner.cli.common import config, db_option, load_ruleset, resolve_db, rules_option
from scanner.model import FindingStatus
from scanner.report import FORMATS
from scanner.report.output import write_atomically
from scanner.store.db import Store

_BY_EXTENSION = {f.extension: name for name, f in FORMATS.items()} | {"pdf": "pdf"}


def _format_name(fmt: str | None, output: Path | None) -> str:
    """--format, else the one -o's extension names (report.sarif → sarif), else html."""
    if fmt is not None:
        return fmt
    if output is not None:
        return _BY_EXTENSION.get(output.suffix.lstrip(".").lower(), "html")
    return "html"


@click.command("report")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "pdf"]),
    default=None,
    help="Report format [default: from the -o file's extension, else html]; pdf is the html "
    "report printed by headless Chromium (needs -o).",
)
@click.option(
    "--scan", "scan_id", type=click.IntRange(min=1), default=None, help="Scan ID [latest]."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to FILE (atomically) instead of stdout.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in FindingStatus]),
    help="Only findings with this status (repeatable) [default: all].",
)
@click.option(
    "--profile",
    type=click.Choice(["technical", "executive", "compliance"]),
    default="technical",
    show_default=True,
    help="technical: every finding of one scan; executive: severity counts and their change, "
    "trend, aging, SLAs, riskiest hosts, expiring exceptions, coverage; compliance: each "
    "control of --framework as pass, fail or not tested, and the scan history (html, md, json).",
)
@click.option(
    "--framework",
    type=click.Choice(["pci-dss-4.0", "cis-8", "nist-800-53"]),
    default="pci-dss-4.0",
    show_default=True,
    help="compliance: the framework whose controls are shown.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="executive: the trend starts with the scans of this day [default: every scan]; "
    "compliance: scans from this day are the evidence [default: the last 365 days].",
)
@rules_option
@db_option
@click.pass_context
def report_command(
    ctx: click.Context,
    fmt: str | None,
    scan_id: int | None,
    output: Path | None,
    statuses: tuple[str, ...],
    profile: str,
    framework: str,
    since: datetime | None,
    rule_paths: tuple[Path, ...],
    db_path: Path | None,
) -> None:
    """Report the findings one scan observed (default: the latest scan), or with --profile
    executive the figures a manager reads.

    Text from scanned hosts is escaped for the format and clipped; nothing in the HTML report
    loads from the network.
    """
    from scanner.errors import ConfigError
    from scanner.report.profiles import render_profile
    from scanner.store.sla import SlaPolicy

    name = _format_name(fmt, output)
    if name == "pdf" and output is None:
        raise click.UsageError("a PDF report needs -o FILE (it is not written to a terminal)")
    ruleset = load_ruleset(ctx, rule_paths)
    with Store(resolve_db(ctx, db_path), create=False) as store:
        try:
            rendered = render_profile(
                store, profile, name, rules=ruleset, policy=config(ctx).sla or SlaPolicy(),
                framework=framework, since=since.date() if since else None, scan_id=scan_id,
                statuses=[FindingStatus(s) for s in statuses], owners=config(ctx).owners,
            )  # fmt: skip
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    if output is None:
        assert isinstance(rendered.content, str)
        click.echo(rendered.content, nl=False)
        return
    write_atomically(output, rendered.content)
    click.echo(f"posture: wrote {rendered.what} to {output}", err=True)


COMMANDS: list[click.Command] = [report_command]
