"""`posture job run|list|install|uninstall`: the scheduled scans of posture.toml's [jobs]."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from scanner.cli.common import config, console, json_option, load_ruleset, resolve_db
from scanner.config import Config
from scanner.errors import ConfigError, ScanFailedError
from scanner.jobs import (
    Job,
    cron_to_calendar,
    job_lock,
    last_run,
    notify,
    prune,
    record_run,
    run_folder,
)
from scanner.model import FindingStatus, Severity
from scanner.report.output import write_atomically
from scanner.report.profiles import render_profile
from scanner.safetext import for_terminal
from scanner.scan import ScanOptions, run_scan, start_scan
from scanner.store import Store
from scanner.targets import Scope, check_scope, parse_targets

SYSTEMD_UNITS = Path("/etc/systemd/system")
CRON_TAG = "# posture-job:"


def _job(cfg: Config, name: str) -> Job:
    job = cfg.jobs.get(name)
    if job is None:
        known = ", ".join(sorted(cfg.jobs)) or "none"
        where = cfg.path or "no posture.toml"
        raise ConfigError(f"no job {name!r} in {where} (jobs: {known})")
    return job


@click.group("job")
def job_group() -> None:
    """Scheduled scans: [jobs.NAME] in posture.toml."""


@job_group.command("run")
@click.argument("name")
@json_option
@click.pass_context
def run_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Run job NAME end to end: scan, reports in a dated folder, retention, webhook. Exit 2 when
    it is already running, 3 when the scan failed."""
    cfg = config(ctx)
    job = _job(cfg, name)
    ruleset = load_ruleset(ctx, job.packs)
    with job_lock(job):
        started = datetime.now(UTC)
        targets = parse_targets(job.targets, (*cfg.exclude, *job.exclude))
        scope_specs = job.scope or cfg.scope
        scope = Scope.parse(scope_specs) if scope_specs else None
        check_scope(targets, scope)
        options = ScanOptions(
            ports=job.ports or cfg.scan.ports,
            host_timeout=cfg.scan.timeout,
            concurrency=cfg.scan.concurrency,
            chunk_size=cfg.scan.chunk_size,
            tls=cfg.scan.tls,
        )
        outcome: dict[str, Any] = {"job": job.name, "started": started.isoformat()}
        with Store(resolve_db(ctx, None)) as store:
            scan_id = start_scan(
                store,
                targets,
                scope=scope,
                excludes=(*cfg.exclude, *job.exclude),
                ruleset=ruleset,
                options=options,
            )
            try:
                result = run_scan(store, scan_id, targets, ruleset, options)
            except ScanFailedError as exc:
                outcome.update(scan_id=scan_id, status="failed", error=str(exc))
                record_run(job, outcome)
                raise
            folder = run_folder(job, started)
            reports = []
            for spec in job.reports:
                for fmt in spec.formats:
                    rendered = render_profile(
                        store, spec.profile, fmt, rules=ruleset, policy=cfg.sla,
                        framework=spec.framework, scan_id=scan_id, owners=cfg.owners,
                    )  # fmt: skip
                    path = folder / spec.file_name(fmt)
                    write_atomically(path, rendered.content)
                    reports.append(str(path))
            found = store.findings(scan_id=scan_id, statuses=list(FindingStatus))
            new_critical = [
                f.fingerprint
                for f in found
                if f.severity is Severity.CRITICAL and f.first_seen >= result.scan.started
            ]
        counts = {s.value: sum(1 for f in found if f.severity is s) for s in Severity}
        outcome.update(
            scan_id=scan_id,
            status=result.scan.status.value,
            finished=datetime.now(UTC).isoformat(),
            counts=counts,
            new=result.new,
            reopened=result.reopened,
            fixed=result.fixed,
            new_critical=len(new_critical),
            reports=reports,
            pruned=[str(p) for p in prune(job)],
        )
        if job.webhook and (
            job.notify == "always" or (job.notify == "new-critical" and new_critical)
        ):
            failure = notify(job, outcome)
            outcome["webhook"] = "sent" if failure is None else f"failed: {failure}"
        record_run(job, outcome)
    if as_json:
        click.echo(json.dumps(outcome, indent=2))
    else:
        click.echo(
            f"job {job.name}: scan {scan_id} {outcome['status']}, {sum(counts.values())} "
            f"findings ({outcome['new']} new, {outcome['fixed']} fixed); reports in {folder}"
        )


def _schedule(job: Job) -> str:
    unit = SYSTEMD_UNITS / f"posture-job-{job.name}.timer"
    if unit.exists():
        return "systemd timer"
    if shutil.which("crontab"):
        listing = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
        tag = CRON_TAG + job.name
        line = next((x for x in listing.stdout.splitlines() if x.endswith(tag)), None)
        if line:
            return "cron: " + " ".join(line.split()[:5])
    return "-"


@job_group.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """The jobs of posture.toml with their schedule, last run and its outcome."""
    cfg = config(ctx)
    rows: list[dict[str, Any]] = []
    for job in cfg.jobs.values():
        last = last_run(job) or {}
        rows.append(
            {
                "name": job.name,
                "targets": list(job.targets),
                "formats": list(job.formats),
                "reports": [
                    {"profile": r.profile, "formats": list(r.formats)} for r in job.reports
                ],
                "output": str(job.output),
                "schedule": _schedule(job),
                "last_run": last.get("started"),
                "last_status": last.get("status"),
                "last_scan_id": last.get("scan_id"),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(header_style="bold", title="Jobs")
    for column in ("Job", "Targets", "Schedule", "Last run", "Outcome", "Scan"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            Text(str(row["name"])),
            Text(for_terminal(" ".join(row["targets"]), 200)),
            Text(str(row["schedule"])),
            Text(str(row["last_run"] or "never")),
            Text(str(row["last_status"] or "-")),
            Text(str(row["last_scan_id"] or "-")),
        )
    console().print(table)


def _command_line(cfg: Config, job: Job) -> list[str]:
    if cfg.path is None:
        raise ConfigError("jobs come from a posture.toml: give --config or run where it is")
    exe = shutil.which("posture") or f"{sys.executable} -m scanner"
    return [*exe.split(" "), "--config", str(cfg.path.resolve()), "job", "run", job.name]


@job_group.command("install")
@click.argument("name")
@click.option("--cron", "cron", required=True, help='When, in cron syntax: "0 3 * * 1".')
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Write the systemd units here [{SYSTEMD_UNITS} when systemd runs].",
)
@click.pass_context
def install_command(ctx: click.Context, name: str, cron: str, unit_dir: Path | None) -> None:
    """Schedule job NAME: a systemd service and timer where systemd runs (or --unit-dir),
    else a line in root's crontab."""
    cfg = config(ctx)
    job = _job(cfg, name)
    calendar = cron_to_calendar(cron)  # checks the schedule whichever way it is installed
    argv = _command_line(cfg, job)
    systemd = Path("/run/systemd/system").is_dir()
    if unit_dir is not None or systemd:
        folder = unit_dir or SYSTEMD_UNITS
        folder.mkdir(parents=True, exist_ok=True)
        base = f"posture-job-{job.name}"
        (folder / f"{base}.service").write_text(
            f"[Unit]\nDescription=posture job {job.name}\n\n[Service]\nType=oneshot\n"
            f"WorkingDirectory={cfg.path.resolve().parent if cfg.path else os.getcwd()}\n"
            f"ExecStart={' '.join(argv)}\n",
            encoding="utf-8",
        )
        (folder / f"{base}.timer").write_text(
            f"[Unit]\nDescription=posture job {job.name} ({cron})\n\n[Timer]\n"
            f"OnCalendar={calendar}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n",
            encoding="utf-8",
        )
        if unit_dir is None:
            subprocess.run(["systemctl", "daemon-reload"], check=True)
            subprocess.run(["systemctl", "enable", "--now", f"{base}.timer"], check=True)
        click.echo(f"job {job.name}: {folder / base}.timer, OnCalendar={calendar}")
        return
    _crontab_edit(job, f"{cron} {' '.join(argv)} {CRON_TAG}{job.name}")
    click.echo(f"job {job.name}: crontab line added ({cron})")


def _crontab_edit(job: Job, line: str | None) -> None:
    if shutil.which("crontab") is None:
        raise ConfigError(
            "neither systemd nor crontab here: install cron (apt-get install -y cron) or give "
            "--unit-dir"
        )
    listing = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    lines = [x for x in listing.stdout.splitlines() if not x.endswith(CRON_TAG + job.name)]
    if line is not None:
        lines.append(line)
    subprocess.run(["crontab", "-"], input="\n".join(lines) + "\n", text=True, check=True)


@job_group.command("uninstall")
@click.argument("name")
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.pass_context
def uninstall_command(ctx: click.Context, name: str, unit_dir: Path | None) -> None:
    """Remove job NAME's schedule (its timer and service, or its crontab line)."""
    job = _job(config(ctx), name)
    base = f"posture-job-{job.name}"
    folder = unit_dir or SYSTEMD_UNITS
    removed = []
    if unit_dir is None and (folder / f"{base}.timer").exists() and shutil.which("systemctl"):
        subprocess.run(["systemctl", "disable", "--now", f"{base}.timer"], check=False)
    for suffix in (".timer", ".service"):
        path = folder / f"{base}{suffix}"
        if path.exists():
            path.unlink()
            removed.append(str(path))
    if unit_dir is None and shutil.which("crontab"):
        _crontab_edit(job, None)
        removed.append("crontab line")
    click.echo(f"job {job.name}: removed {', '.join(removed) or 'nothing (not installed)'}")


COMMANDS: list[click.Command] = [job_group]
