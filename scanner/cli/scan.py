"""`posture scan`: validate everything (targets, scope, packs, nmap) before a packet, then scan."""

from __future__ import annotations

import json
import signal
import sys
from itertools import islice
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from scanner.cli.common import (
    config,
    console,
    db_option,
    json_option,
    load_ruleset,
    resolve_db,
    rules_option,
)
from scanner.cli.findings import findings_table, vulnerabilities_table
from scanner.cli.tls import tls_table
from scanner.config import Config
from scanner.errors import EXIT_FINDINGS, ConfigError
from scanner.model import FindingStatus, Severity
from scanner.probes.inventory import Inventory
from scanner.probes.portscan import find_nmap
from scanner.rating.summary import tls_summary
from scanner.report.vulns import vulnerability_rows
from scanner.safetext import for_terminal
from scanner.scan import (
    ScanObserver,
    ScanOptions,
    check_resume_rules,
    is_this_machine,
    resume_scope,
    resume_targets,
    run_scan,
    start_scan,
)
from scanner.store.db import Store
from scanner.store.export import finding_as_dict
from scanner.targets import Scope, check_scope, parse_targets
from scanner.vulndb.bundled import default_path, ensure_database
from scanner.vulndb.db import VulnDbError, status

SEVERITIES = [s.value for s in Severity]


class _ProgressBar(ScanObserver):
    """Hosts done / total and findings so far, on stderr, only on a terminal."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]scan {task.fields[scan_id]}"),
            BarColumn(),
            TextColumn("{task.fields[stored]}/{task.total:.0f} hosts"),
            TextColumn("{task.fields[findings]} findings"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None

    def started(self, scan_id: int, total: int, done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            "scan", total=total, completed=done, scan_id=scan_id, findings=0, stored=done
        )

    def advanced(self, progress: float, hosts_stored: int, findings: int) -> None:
        if self.task is not None:
            self.progress.update(
                self.task, completed=progress, stored=hosts_stored, findings=findings
            )

    def stop(self) -> None:
        self.progress.stop()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM behaves like Ctrl-C: nmap is stopped and the scan marked interrupted (resumable).
    raise KeyboardInterrupt


T = TypeVar("T")


def pick(given: T | None, default: T) -> T:
    """The option when given (even 0), else the config's value."""
    return given if given is not None else default


@click.command("scan")
@click.argument("targets", nargs=-1)
@click.option(
    "--scope",
    "scope_specs",
    multiple=True,
    help="Allowed CIDRs/ranges or @file (repeatable); default: 'scope' in posture.toml.",
)
@click.option("--exclude", "excludes", multiple=True, help="Targets to leave out (repeatable).")
@click.option(
    "--ports",
    default=None,
    help="top100, top1000, all, or a list like 22,80,8000-8100 or T:22,U:69 [default: top1000].",
)
@click.option("--concurrency", type=int, default=None, help="nmap processes at once [4].")
@click.option("--chunk-size", type=int, default=None, help="Hosts per nmap process [16].")
@click.option("--timeout", "host_timeout", default=None, help="Per-host timeout, e.g. 90s, 5m.")
@click.option("--no-ping", is_flag=True, help="Skip host discovery (nmap -Pn).")
@click.option("--no-tls", is_flag=True, help="Do not assess the TLS ports found.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Trust these PEM roots instead of the system store when checking certificates.",
)
@click.option(
    "--cert-warn-days",
    type=int,
    default=30,
    show_default=True,
    help="Flag certificates expiring within this many days [30].",
)
@click.option(
    "--tls-connections",
    type=int,
    default=5,
    show_default=True,
    help="TLS connections at once per host [5].",
)
@click.option(
    "--tls-delay",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds between TLS connections to one host [0].",
)
@click.option(
    "--ssh",
    "ssh_spec",
    default=None,
    metavar="USER[@HOST]",
    help="Log in with SSH (key only) to read installed packages and sshd settings: on HOST, "
    "or on every host with the SSH port open.",
)
@click.option(
    "--ssh-key",
    "--key",
    "ssh_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Private key for --ssh (default: the SSH agent and ~/.ssh).",
)
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="known_hosts file for --ssh (default: ~/.ssh/known_hosts); host keys are checked.",
)
@click.option(
    "--accept-new-host-key",
    is_flag=True,
    help="Trust and record the host key of an SSH server seen for the first time.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Read this machine's own packages and sshd settings (no SSH) and attach them to the "
    "targets that are its addresses; with no targets, scans 127.0.0.1.",
)
@click.option(
    "--vulns/--no-vulns",
    default=True,
    show_default=True,
    help="Match the software found (banners, packages) against the offline advisory database.",
)
@click.option(
    "--vulndb",
    "vulndb_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Advisory database [config 'vulndb', else $POSTURE_VULNDB, else "
    "~/.local/share/posture/vulndb.sqlite]; built from posture's bundled advisories when missing.",
)
@rules_option
@click.option("--resume", "resume_id", type=int, default=None, help="Finish scan ID.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 when an open finding of this severity or worse is in the scan.",
)
@db_option
@json_option
@click.pass_context
def scan_command(
    ctx: click.Context,
    targets: tuple[str, ...],
    scope_specs: tuple[str, ...],
    excludes: tuple[str, ...],
    ports: str | None,
    concurrency: int | None,
    chunk_size: int | None,
    host_timeout: str | None,
    no_ping: bool,
    no_tls: bool,
    ca_file: Path | None,
    cert_warn_days: int | None,
    tls_connections: int | None,
    tls_delay: float | None,
    ssh_spec: str | None,
    ssh_key: Path | None,
    ssh_port: int,
    known_hosts: Path | None,
    accept_new_host_key: bool,
    local: bool,
    vulns: bool,
    vulndb_path: Path | None,
    rule_paths: tuple[Path, ...],
    resume_id: int | None,
    fail_on: str | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Scan TARGETS (addresses, CIDRs, ranges, names, @file) for exposed, insecure services.

    Exit codes: 0 done, 1 an open finding at or above --fail-on, 2 usage or configuration
    error (nothing was sent), 3 the scan failed.
    """
    cfg = config(ctx)
    ruleset = load_ruleset(ctx, rule_paths)
    find_nmap()
    db = resolve_db(ctx, db_path)

    if resume_id is not None:
        if targets:
            raise ConfigError("--resume takes no targets: it scans what scan ID has left")
        store = Store(db, create=False)  # a mistyped --db must not create an empty database
        scan = store.get_scan(resume_id)
        target_set, options = resume_targets(scan)
        check_resume_rules(scan, ruleset)
        check_scope(target_set, resume_scope(scan))
        scan_id = resume_id
    else:
        if not targets and local:
            targets = ("127.0.0.1",)
        if not targets:
            raise click.UsageError("give at least one target (or --resume SCAN_ID)")
        defaults = cfg.scan
        # `is not None`, not `or`: --concurrency 0 is an error, not the default.
        options = ScanOptions(
            ports=ports if ports is not None else defaults.ports,
            host_timeout=host_timeout if host_timeout is not None else defaults.timeout,
            concurrency=concurrency if concurrency is not None else defaults.concurrency,
            chunk_size=chunk_size if chunk_size is not None else defaults.chunk_size,
            no_ping=no_ping,
            tls=defaults.tls and not no_tls,
            ca_file=str(trust_file.resolve())
            if (trust_file := ca_file or defaults.ca_file)
            else None,
            cert_warn_days=pick(cert_warn_days, defaults.cert_warn_days),
            tls_connections=pick(tls_connections, defaults.tls_connections),
            tls_delay=pick(tls_delay, defaults.tls_delay),
            local=local,
            vulndb=str(_vulndb(vulndb_path or cfg.vulndb or default_path(), cfg, as_json))
            if vulns
            else None,
            **_ssh_options(ssh_spec, ssh_key, ssh_port, known_hosts, accept_new_host_key),
        )
        all_excludes = (*cfg.exclude, *excludes)
        target_set = parse_targets(targets, all_excludes)
        scope_list = scope_specs or cfg.scope
        scope = Scope.parse(scope_list) if scope_list else None
        check_scope(target_set, scope)
        if len(target_set) == 0:
            raise ConfigError("no targets left after exclusions")
        if local and not any(is_this_machine(t.address) for t in islice(target_set, 4096)):
            raise click.UsageError(
                "--local reads this machine's own inventory, but none of the targets is one of "
                "its addresses: add 127.0.0.1 (or the machine's own address) to the targets"
            )
        store = Store(db)
        scan_id = start_scan(
            store,
            target_set,
            scope=scope,
            excludes=tuple(all_excludes),
            ruleset=ruleset,
            options=options,
        )

    err = console(stderr=True)
    bar = _ProgressBar(err) if (err.is_terminal and not as_json) else None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = run_scan(store, scan_id, target_set, ruleset, options, bar)
    except KeyboardInterrupt:
        click.echo(
            f"posture: scan {scan_id} interrupted; finished hosts are stored. "
            f"Resume with: posture scan --resume {scan_id} --db {db}",
            err=True,
        )
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.stop()

    found = store.findings(scan_id=scan_id, statuses=list(FindingStatus))
    if as_json:
        doc = {
            "scan_id": scan_id,
            "status": outcome.scan.status.value,
            "hosts": {"total": outcome.scan.hosts_total, **outcome.hosts_by_state},
            "findings_new": outcome.new,
            "findings_reopened": outcome.reopened,
            "findings_fixed": outcome.fixed,
            "tls": [tls_summary(e) for e in store.tls_endpoints(scan_id)],
            "inventories": {
                address: inventory_summary(inventory)
                for address, inventory in store.inventories(scan_id).items()
            },
            "vulnerabilities": [row.as_dict() for row in vulnerability_rows(found)],
            "findings": [finding_as_dict(f) for f in found],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        out = console()
        if found:
            out.print(findings_table(found, title=f"Findings of scan {scan_id}"))
        tls = store.tls_endpoints(scan_id)
        if tls:
            out.print(tls_table(tls, title=f"TLS endpoints of scan {scan_id}"))
        for address, inventory in store.inventories(scan_id).items():
            out.print(
                f"inventory of {address}: {describe_inventory(inventory)}",
                markup=False,
                highlight=False,
            )
        vulnerable = vulnerability_rows(f for f in found if f.status.is_active)
        if vulnerable:
            title = f"Vulnerabilities of scan {scan_id}, most urgent first"
            out.print(vulnerabilities_table(vulnerable, title=title))
        states = ", ".join(f"{n} {s}" for s, n in sorted(outcome.hosts_by_state.items()))
        out.print(
            f"scan {scan_id} {outcome.scan.status.value}: {outcome.scan.hosts_total} hosts "
            f"({states or 'none scanned'}); {len(found)} findings: {outcome.new} new, "
            f"{outcome.reopened} reopened, {outcome.fixed} fixed",
            markup=False,
            highlight=False,
        )
    gate = fail_on is not None and store.has_active_at_least(scan_id, Severity(fail_on))
    store.close()
    if gate:
        sys.exit(EXIT_FINDINGS)


def inventory_summary(inventory: Inventory) -> dict[str, Any]:
    os = inventory.os
    return {
        "inventoried_as": inventory.host,
        "os": {"id": os.id, "version": os.version_id, "name": os.pretty_name} if os else None,
        "kernel": inventory.kernel,
        "manager": inventory.manager,
        "packages": len(inventory.packages),
        "warnings": list(inventory.warnings),
    }


def describe_inventory(inventory: Inventory) -> str:
    """One line for people: OS, kernel, package count, warnings; target text escaped."""
    os = inventory.os
    parts = [for_terminal(os.pretty_name or f"{os.id} {os.version_id or ''}", 80) if os else "OS ?"]
    if inventory.kernel:
        parts.append(f"kernel {for_terminal(inventory.kernel, 60)}")
    manager = inventory.manager or "no package manager"
    parts.append(f"{len(inventory.packages)} packages ({manager})")
    parts.extend(for_terminal(w, 200) for w in inventory.warnings)
    return ", ".join(parts)


def _vulndb(path: Path, cfg: Config, quiet: bool) -> Path:
    """The advisory database to match against: built from the bundled advisories when there
    is none yet; a stale one is used, with a warning on stderr."""
    existed = path.exists()
    try:
        built = ensure_database(path)
        found = status(path, max_age_days=cfg.vulndb_max_age_days)
    except VulnDbError as exc:
        raise ConfigError(f"advisory database: {exc} (or scan with --no-vulns)") from None
    if built is not None and not existed:
        click.echo(
            f"posture: built the advisory database {path} from posture's bundled advisories "
            f"({built.advisories}); import full feeds with `posture vulndb import`",
            err=True,
        )
    elif built is not None:
        click.echo(f"posture: migrated the advisory database {path} to this version", err=True)
    if found.warning and not quiet:
        click.echo(f"posture: warning: {found.warning}", err=True)
    return path


def _ssh_options(
    spec: str | None,
    key: Path | None,
    port: int,
    known_hosts: Path | None,
    accept_new: bool,
) -> dict[str, Any]:
    if spec is None:
        if key is not None or known_hosts is not None or accept_new:
            raise click.UsageError(
                "--ssh-key (--key), --known-hosts and --accept-new-host-key need --ssh"
            )
        return {}
    user, at, host = spec.partition("@")
    if not user or (at and not host):
        raise click.UsageError(f"--ssh {spec!r}: expected USER or USER@HOST")
    return {
        "ssh_user": user,
        "ssh_host": host or None,
        "ssh_port": port,
        "ssh_key": str(key.resolve()) if key else None,
        "known_hosts": str(known_hosts.resolve()) if known_hosts else None,
        "accept_new_host_key": accept_new,
    }


COMMANDS: list[click.Command] = [scan_command]
