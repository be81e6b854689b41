"""`posture report`: one scan's findings as HTML, Markdown, JSON, SARIF or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from scanner.cli.common import db_option, load_ruleset, resolve_db, rules_option
from scanner.model import FindingStatus
from scanner.report import FORMATS, get_format
from scanner.report.collect import collect_report
from scanner.report.output import write_atomically
from scanner.store.db import Store

_BY_EXTENSION = {f.extension: name for name, f in FORMATS.items()}


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
    type=click.Choice(list(FORMATS)),
    default=None,
    help="Report format [default: from the -o file's extension, else html].",
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
@rules_option
@db_option
@click.pass_context
def report_command(
    ctx: click.Context,
    fmt: str | None,
    scan_id: int | None,
    output: Path | None,
    statuses: tuple[str, ...],
    rule_paths: tuple[Path, ...],
    db_path: Path | None,
) -> None:
    """Report the findings one scan observed (default: the latest scan).

    Text from scanned hosts is escaped for the format and clipped; nothing in the HTML report
    loads from the network.
    """
    report_format = get_format(_format_name(fmt, output))
    ruleset = load_ruleset(ctx, rule_paths)
    with Store(resolve_db(ctx, db_path), create=False) as store:
        data = collect_report(
            store,
            scan_id=scan_id,
            statuses={FindingStatus(s) for s in statuses} or None,
            rules=ruleset,
        )
    text = report_format.render(data)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)
        scan = f"scan {data.scan.id}" if data.scan else "no scan"
        click.echo(
            f"posture: wrote the {report_format.name} report of {scan} "
            f"({len(data.findings)} findings) to {output}",
            err=True,
        )


COMMANDS: list[click.Command] = [report_command]
