"""`posture vulndb import|status|lookup`: build the offline advisory database and ask it."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from scanner.cli.common import config, console, json_option
from scanner.errors import EXIT_FINDINGS, ConfigError
from scanner.safetext import for_terminal
from scanner.vulndb.bundled import default_path, import_bundle
from scanner.vulndb.db import CPE_ALIASES, Match, VulnDb, VulnDbError, import_files, status
from scanner.vulndb.versions import Ecosystem

ECOSYSTEMS = [e.value for e in Ecosystem]


def _db_path(ctx: click.Context, given: Path | None) -> Path:
    return given or config(ctx).vulndb or default_path()


db_path_option = click.option(
    "--vulndb",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Advisory database file [config 'vulndb', else $POSTURE_VULNDB, else "
    "~/.local/share/posture/vulndb.sqlite].",
)


@click.group("vulndb")
def vulndb_group() -> None:
    """The offline advisory database: OSV, NVD CVE 2.0, CISA KEV and EPSS files."""


@vulndb_group.command("import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--bundled",
    is_flag=True,
    help="Import the advisories that ship with posture (before PATHS, if any).",
)
@db_path_option
@json_option
@click.pass_context
def import_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    bundled: bool,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Import advisory files (OSV .json, folders or all.zip; NVD 2.0 .json[.gz]; KEV .json;
    EPSS .csv[.gz]). All or nothing: a bad file leaves the database as it was (exit 2)."""
    if not paths and not bundled:
        raise click.UsageError("give advisory files to import, or --bundled")
    path = _db_path(ctx, db_path)
    try:
        if bundled:
            first = import_bundle(path)
            if not as_json:
                click.echo(f"posture's bundled advisories: {first.advisories} in {path}")
        report = import_files(path, paths) if paths else first
    except VulnDbError as exc:
        raise ConfigError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({**asdict(report), "database": str(path)}, indent=2))
        return
    for file, kind, count in report.files:
        click.echo(f"{for_terminal(file)}: {kind}, {count} records")
    click.echo(f"{report.advisories} advisories in {path} ({report.seconds:.1f}s)")


@vulndb_group.command("status")
@db_path_option
@json_option
@click.pass_context
def status_command(ctx: click.Context, db_path: Path | None, as_json: bool) -> None:
    """Counts per source, build date and age; exit 1 when older than vulndb_max_age_days."""
    path = _db_path(ctx, db_path)
    try:
        found = status(path, max_age_days=config(ctx).vulndb_max_age_days)
    except VulnDbError as exc:
        raise ConfigError(str(exc)) from None
    if as_json:
        document = {
            "database": str(found.path),
            "built_at": found.built_at.isoformat() if found.built_at else None,
            "age_days": found.age_days,
            "counts": found.counts,
            "sources": [
                {"format": f, "file": file, "records": n, "imported_at": at}
                for f, file, n, at in found.sources
            ],
            "warning": found.warning,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        out = console()
        age = f"{found.age_days:.1f} days old" if found.age_days is not None else "never built"
        out.print(f"{found.path}: {age}")
        for table, count in found.counts.items():
            out.print(f"  {table}: {count}")
        for kind, file, count, at in found.sources[-20:]:
            out.print(f"  imported {kind} {for_terminal(file)} ({count}) at {at}")
        if found.warning:
            out.print(f"warning: {found.warning}", style="yellow")
    if found.warning:
        sys.exit(EXIT_FINDINGS)


def match_as_dict(match: Match) -> dict[str, Any]:
    return {**asdict(match), "priority": list(match.priority)}


@vulndb_group.command("lookup")
@click.argument("product")
@click.argument("version")
@click.option(
    "--ecosystem",
    type=click.Choice(ECOSYSTEMS, case_sensitive=False),
    default="upstream",
    show_default=True,
    help="How VERSION is written: upstream (as vendors do), or a distro package version.",
)
@click.option(
    "--release",
    default=None,
    help="Distro release the package belongs to (12, 22.04, 3.18): only its advisories judge it.",
)
@click.option("--cpe", "cpe_name", default=None, help="CPE vendor:product (default: known).")
@db_path_option
@json_option
@click.pass_context
def lookup_command(
    ctx: click.Context,
    product: str,
    version: str,
    ecosystem: str,
    release: str | None,
    cpe_name: str | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Advisories affecting PRODUCT at VERSION, most urgent first (KEV, EPSS, CVSS)."""
    from scanner.probes.banners import CPE_NAMES

    eco = next(e for e in Ecosystem if e.value.lower() == ecosystem.lower())
    if eco is not Ecosystem.UPSTREAM and release is None and not as_json:
        click.echo(
            f"posture: warning: no --release: every {eco.value} release's advisories judge this "
            "version (a 22.04 package by 24.04's fixed versions too)",
            err=True,
        )
    names: list[tuple[str, str]] = []
    if cpe_name:
        vendor, colon, name = cpe_name.partition(":")
        if not colon or not vendor or not name:
            raise click.BadParameter("expected VENDOR:PRODUCT", param_hint="--cpe")
        names.append((vendor, name))
    else:
        # Every NVD name the product has been filed under (NVD renames vendors over time).
        names.extend(CPE_ALIASES.get(product.lower(), ()))
        if product.lower() in CPE_NAMES and CPE_NAMES[product.lower()] not in names:
            names.append(CPE_NAMES[product.lower()])
    try:
        db = VulnDb(_db_path(ctx, db_path))
    except VulnDbError as exc:
        raise ConfigError(str(exc)) from None
    try:
        matches = db.lookup(product, version, ecosystem=eco, release=release, cpe_names=names)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps([match_as_dict(m) for m in matches], indent=2))
        return
    out = console()
    if not matches:
        out.print(f"no known advisory for {for_terminal(product)} {for_terminal(version)}")
        return
    for m in matches:
        flags = [f"CVSS {m.cvss_score:g}" if m.cvss_score is not None else "CVSS ?"]
        if m.kev:
            flags.append("KEV" + (" (ransomware)" if m.kev_ransomware else ""))
        if m.epss is not None:
            flags.append(f"EPSS {m.epss:.2f}")
        if m.fixed_version:
            flags.append(f"fixed in {m.fixed_version}")
        ids = ", ".join(m.cves) or m.advisory_id
        out.print(f"{for_terminal(ids)}: {', '.join(flags)}", markup=False, highlight=False)
        if m.summary:
            # Advisory text wraps its lines: one paragraph here, controls still escaped.
            summary = " ".join(m.summary.split())
            out.print(f"  {for_terminal(summary, 200)}", markup=False, highlight=False)


COMMANDS = [vulndb_group]
