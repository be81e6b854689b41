"""`posture report`: one scan's findings as HTML, Markdown, JSON, SARIF or CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from scanner.cli.common import config, db_option, load_ruleset, resolve_db, rules_option
from scanner.model import FindingStatus
from scanner.report import FORMATS, get_format
from scanner.report.collect import collect_report
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
    name = _format_name(fmt, output)
    pdf = name == "pdf"
    if pdf and output is None:
        raise click.UsageError("a PDF report needs -o FILE (it is not written to a terminal)")
    if pdf:
        name = "html"
    if profile == "executive":
        _executive(ctx, name, output, since, db_path, pdf=pdf)
        return
    if profile == "compliance":
        _compliance(ctx, name, output, framework, since, db_path, pdf=pdf)
        return
    report_format = get_format(name)
    ruleset = load_ruleset(ctx, rule_paths)
    with Store(resolve_db(ctx, db_path), create=False) as store:
        data = collect_report(
            store,
            scan_id=scan_id,
            statuses={FindingStatus(s) for s in statuses} or None,
            rules=ruleset,
        )
    scan = f"scan {data.scan.id}" if data.scan else "no scan"
    what = "pdf" if pdf else report_format.name
    _emit(
        report_format.render(data),
        output,
        pdf,
        f"the {what} report of {scan} ({len(data.findings)} findings)",
    )


def _emit(text: str, output: Path | None, pdf: bool, what: str) -> None:
    """The rendered report to stdout, or atomically to -o (printed to PDF first with --format
    pdf)."""
    if output is None:
        click.echo(text, nl=False)
        return
    if pdf:
        from scanner.report.pdf import html_to_pdf

        write_atomically(output, html_to_pdf(text))
    else:
        write_atomically(output, text)
    click.echo(f"posture: wrote {what} to {output}", err=True)


def _executive(
    ctx: click.Context,
    fmt: str,
    output: Path | None,
    since: datetime | None,
    db: Path | None,
    *,
    pdf: bool = False,
) -> None:
    from scanner import __version__
    from scanner.report.executive import executive_summary
    from scanner.report.executive_render import render_executive
    from scanner.store.sla import SlaPolicy

    if fmt not in ("html", "md", "json"):
        raise click.UsageError(
            f"the executive profile renders html, md or json; {fmt} lists findings: use "
            "--profile technical"
        )
    policy = config(ctx).sla or SlaPolicy()
    with Store(resolve_db(ctx, db), create=False) as store:
        summary = executive_summary(store, policy, since=since.date() if since else None)
    text = render_executive(summary, fmt, __version__)
    _emit(text, output, pdf, f"the executive {'pdf' if pdf else fmt} report")


def _compliance(
    ctx: click.Context,
    fmt: str,
    output: Path | None,
    framework: str,
    since: datetime | None,
    db: Path | None,
    *,
    pdf: bool = False,
) -> None:
    from scanner import __version__
    from scanner.report.compliance import render_compliance, store_compliance

    if fmt not in ("html", "md", "json"):
        raise click.UsageError(
            f"the compliance profile renders html, md or json; {fmt} lists findings: use "
            "--profile technical"
        )
    today = datetime.now(UTC).date()
    first_day = since.date() if since else today - timedelta(days=365)
    ruleset = load_ruleset(ctx, ())
    with Store(resolve_db(ctx, db), create=False) as store:
        view = store_compliance(store, ruleset.rules, framework, first_day)
    text = render_compliance(view, fmt, first_day.isoformat(), today.isoformat(), __version__)
    _emit(text, output, pdf, f"the {view.name} compliance {'pdf' if pdf else fmt} report")


COMMANDS: list[click.Command] = [report_command]
