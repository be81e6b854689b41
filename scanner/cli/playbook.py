"""`posture playbook list|show|validate|plan|run|resume|status|audit|abandon`: incident-response
playbooks, with a dry run whose hash approvals are bound to, a crash-safe journal and a
hash-chained audit log.

Exit codes: 0 the run succeeded (or the check passed), 2 a broken playbook or bad input, 3 the
run failed (rolled back or not), 4 the run stopped before a step that needs approval.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from scanner.cli.common import console
from scanner.errors import EXIT_SCAN_FAILED
from scanner.resources import playbooks_dir
from scanner.safetext import for_terminal

EXIT_FAILED = EXIT_SCAN_FAILED


def default_journal() -> Path:
    """$POSTURE_JOURNAL, else $XDG_DATA_HOME/posture/respond.sqlite (~/.local/share)."""
    if os.environ.get("POSTURE_JOURNAL"):
        return Path(os.environ["POSTURE_JOURNAL"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "posture" / "respond.sqlite"


def _journal_option(func: Any) -> Any:
    return click.option(
        "--journal",
        "journal_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Run journal and audit log [default: $POSTURE_JOURNAL, else "
        "~/.local/share/posture/respond.sqlite]; run folders go beside it.",
    )(func)


def _open_journal(path: Path | None) -> Any:
    from scanner.respond.journal import Journal

    return Journal(path or default_journal())


def _find(name: str) -> Path:
    """A playbook file, or the name of a shipped one (`isolate-host`)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = playbooks_dir() / f"{name.removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise click.BadParameter(f"no playbook file or shipped playbook named {name!r}")


def _inputs(pairs: tuple[str, ...]) -> dict[str, list[str]]:
    from scanner.respond.inputs import split_assignments

    try:
        return split_assignments(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--input") from None


def _say(text: str) -> None:
    click.echo(for_terminal(text, 2000), err=True)


@click.group("playbook")
def playbook_group() -> None:
    """Incident-response playbooks: isolate hosts, rotate credentials, collect evidence."""


@playbook_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(as_json: bool) -> None:
    """The shipped playbooks."""
    from scanner.respond.schema import load_playbook

    rows = []
    for path in sorted(playbooks_dir().glob("*.yaml")):
        book = load_playbook(path).playbook
        rows.append({"name": path.stem, "id": book.id, "version": str(book.version),
                     "title": book.name, "inputs": list(book.inputs)})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<22} v{row['version']:<4} {row['title']}")


@playbook_group.command("validate")
@click.argument("playbooks", nargs=-1, required=True)
def validate_command(playbooks: tuple[str, ...]) -> None:
    """Check playbooks (file, line and reason of every problem), running nothing."""
    from scanner.respond.schema import load_playbook

    for name in playbooks:
        loaded = load_playbook(_find(name))
        book = loaded.playbook
        click.echo(f"{loaded.path}: ok ({book.id} v{book.version}, {len(book.steps)} steps)")


@playbook_group.command("show")
@click.argument("playbook")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(playbook: str, as_json: bool) -> None:
    """A playbook's inputs, credentials, targets and steps."""
    from scanner.respond.actions.registry import action
    from scanner.respond.schema import load_playbook

    book = load_playbook(_find(playbook)).playbook
    if as_json:
        click.echo(book.model_dump_json(indent=2, by_alias=True))
        return
    click.echo(f"{book.name} ({book.id} v{book.version})")
    if book.description:
        click.echo(book.description.strip())
    click.echo("inputs:")
    for name, spec in book.inputs.items():
        need = "required" if spec.required else f"default {spec.default!r}"
        click.echo(f"  {name} ({spec.type}{', list' if spec.multiple else ''}; {need}) "
                   f"{spec.description}")  # fmt: skip
    for name, ref in book.credentials.items():
        click.echo(f"credential {name}: {ref}")
    click.echo("steps:")
    for section, _, step in book.all_steps():
        gate = " [approval]" if step.approval else ""
        when = f" when {step.when}" if step.when else ""
        prefix = "always " if section == "always" else ""
        click.echo(f"  {prefix}{step.id}: {step.uses} on {step.target}{gate}{when} - "
                   f"{action(step.uses).summary}")  # fmt: skip


def _plan_json(plan: Any) -> dict[str, Any]:
    return {
        **plan.document(),
        "plan_hash": plan.hash,
        "gated": plan.gated(),
        "probes": {s.key: s.probe for s in plan.steps if s.probe},
        "problems": {s.key: s.problem for s in plan.steps if s.problem},
    }


def _print_plan(plan: Any) -> None:
    out = console()
    book = plan.loaded.playbook
    out.print(f"plan of {book.id} v{book.version} ({plan.loaded.path})")
    for name, target in plan.targets.items():
        if name != "local":
            out.print(f"target {name}: {target.connector} {', '.join(target.addresses)}")
    for s in plan.steps:
        gate = "  [needs approval]" if s.step.approval else ""
        head = "always " if s.section == "always" else ""
        out.print(f"{head}{s.step.id} [{s.address}] {s.step.uses}: {s.state}{gate}")
        if s.params:
            out.print("    with: " + for_terminal(json.dumps(s.params, sort_keys=True), 2000))
        for command in s.commands or []:
            out.print("    $ " + for_terminal(command, 2000))
        if s.probe is not None:
            out.print("    now: " + for_terminal(json.dumps(s.probe, sort_keys=True), 1000))
        if s.problem:
            out.print("    ! " + for_terminal(s.problem, 1000))
    out.print(f"plan hash: {plan.hash}")


@playbook_group.command("plan")
@click.argument("playbook")
@click.option("--input", "-i", "pairs", multiple=True, metavar="NAME=VALUE", help="An input.")
@click.option("--no-probe", is_flag=True, help="Do not read the targets' current state.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_journal_option
def plan_command(
    playbook: str, pairs: tuple[str, ...], no_probe: bool, as_json: bool, journal_path: Path | None
) -> None:
    """The dry run: every step rendered, the exact commands, the current state where an action
    can read it, and the plan hash that --approve binds to. Changes nothing."""
    import tempfile

    from scanner.respond.engine import prepare, probe_plan

    with tempfile.TemporaryDirectory(prefix="posture-plan-") as tmp:
        _, _, redactor, _, connectors, plan = prepare(_find(playbook), _inputs(pairs), Path(tmp))
        try:
            if not no_probe:
                probe_plan(plan, connectors, redactor, Path(tmp))
        finally:
            connectors.close()
    if as_json:
        click.echo(json.dumps(_plan_json(plan), indent=2, sort_keys=True))
        return
    _print_plan(plan)
    gated = plan.gated()
    approve = " ".join(f"--approve {s}" for s in gated)
    inputs = " ".join(f"--input {p}" for p in pairs)
    click.echo(
        f"run it: posture playbook run {playbook} {inputs} {approve} --plan-hash {plan.hash}"
        if gated
        else f"run it: posture playbook run {playbook} {inputs}",
        err=True,
    )


def _hooks(interactive: bool) -> Any:
    from scanner.respond.engine import Hooks

    def ask(planned: Any, params: Any) -> bool:
        step = planned.step
        question = step.approval if isinstance(step.approval, str) else f"Run {step.id}?"
        _say(f"{step.id} ({step.uses}) on {planned.address} with "
             f"{json.dumps(params, sort_keys=True)}")  # fmt: skip
        for command in planned.commands or []:
            _say(f"  $ {command}")
        return click.confirm(for_terminal(question, 500), default=False, err=True)

    return Hooks(say=_say, ask_approval=ask if interactive else None)


def _finish(outcome: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"run_id": outcome.run_id, "status": outcome.status,
                               "error": outcome.error}))  # fmt: skip
    else:
        error = f" ({for_terminal(outcome.error, 1000)})" if outcome.error else ""
        click.echo(f"run {outcome.run_id}: {outcome.status}{error}")
    if outcome.status != "succeeded":
        sys.exit(EXIT_FAILED)


_APPROVE = click.option(
    "--approve", "approve", multiple=True, metavar="STEP|all",
    help="Approve a gated step up front (needs --plan-hash).",
)  # fmt: skip
_PLAN_HASH = click.option(
    "--plan-hash", default=None, help="The hash `posture playbook plan` printed."
)
_LOCK_WAIT = click.option(
    "--lock-wait", type=click.FloatRange(0, 3600), default=0.0, show_default=True,
    help="Seconds to wait for a target another run holds.",
)  # fmt: skip


@playbook_group.command("run")
@click.argument("playbook")
@click.option("--input", "-i", "pairs", multiple=True, metavar="NAME=VALUE", help="An input.")
@_APPROVE
@_PLAN_HASH
@click.option(
    "--yes", is_flag=True, help="Do not ask to confirm the start (approvals still apply)."
)
@_LOCK_WAIT
@click.option("--json", "as_json", is_flag=True, help="Machine-readable outcome.")
@_journal_option
def run_command(
    playbook: str,
    pairs: tuple[str, ...],
    approve: tuple[str, ...],
    plan_hash: str | None,
    yes: bool,
    lock_wait: float,
    as_json: bool,
    journal_path: Path | None,
) -> None:
    """Run a playbook. Gated steps are asked at the terminal, or approved up front with
    --approve and the plan's hash; without either, the run stops before them (exit 4) and
    `posture playbook resume RUN_ID --approve STEP --plan-hash HASH` continues it."""
    from scanner.respond.engine import start_run

    interactive = sys.stdin.isatty() and not as_json
    if interactive and not yes and not click.confirm(f"Run {playbook}?", default=True, err=True):
        raise click.Abort()
    journal_file = journal_path or default_journal()
    with _open_journal(journal_file) as journal:
        outcome = start_run(
            journal, _find(playbook), _inputs(pairs), journal_file.parent / "runs",
            approve=set(approve), plan_hash=plan_hash, hooks=_hooks(interactive),
            lock_wait=lock_wait,
        )  # fmt: skip
    _finish(outcome, as_json)


@playbook_group.command("resume")
@click.argument("run_id")
@_APPROVE
@_PLAN_HASH
@_LOCK_WAIT
@click.option("--json", "as_json", is_flag=True, help="Machine-readable outcome.")
@_journal_option
def resume_command(
    run_id: str,
    approve: tuple[str, ...],
    plan_hash: str | None,
    lock_wait: float,
    as_json: bool,
    journal_path: Path | None,
) -> None:
    """Continue a run that crashed, was killed, or waits for an approval, without repeating a
    completed side effect (a step cut off mid-way is checked before it is run again)."""
    from scanner.respond.engine import resume_run

    interactive = sys.stdin.isatty() and not as_json
    with _open_journal(journal_path) as journal:
        outcome = resume_run(journal, run_id, approve=set(approve), plan_hash=plan_hash,
                             hooks=_hooks(interactive), lock_wait=lock_wait)  # fmt: skip
    _finish(outcome, as_json)


@playbook_group.command("status")
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_journal_option
def status_command(run_id: str | None, as_json: bool, journal_path: Path | None) -> None:
    """Recent runs, or one run's steps."""
    with _open_journal(journal_path) as journal:
        if run_id is None:
            runs = journal.runs()
            rows = [{"run_id": r.id, "playbook": r.playbook_id, "status": _status(r),
                     "started": r.started, "finished": r.finished, "actor": r.actor}
                    for r in runs]  # fmt: skip
            if as_json:
                click.echo(json.dumps(rows, indent=2))
                return
            for row in rows:
                click.echo(f"{row['run_id']}  {row['playbook']:<20} {row['status']:<18} "
                           f"{row['started'][:19]}  {row['actor']}")  # fmt: skip
            return
        run = journal.run(run_id)
        steps = journal.steps(run_id)
    data = {
        "run_id": run.id, "playbook": run.playbook_id, "status": _status(run),
        "plan_hash": run.plan_hash, "started": run.started, "finished": run.finished,
        "error": run.error, "workdir": run.workdir,
        "steps": [{"step": s.step_id, "address": s.address, "uses": s.uses, "status": s.status,
                   "attempts": s.attempts, "error": s.error, "compensation": s.compensation,
                   "outputs": s.outputs} for s in steps],
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"run {run.id} ({run.playbook_id}): {data['status']}")
    if run.error:
        click.echo(f"  error: {for_terminal(run.error, 1000)}")
    for s in data["steps"]:
        undo = f", undo {s['compensation']}" if s["compensation"] else ""
        error = f": {for_terminal(s['error'], 500)}" if s["error"] else ""
        click.echo(f"  {s['step']} [{s['address']}] {s['status']}{undo}{error}")


def _status(run: Any) -> str:
    return "crashed (resume it)" if run.crashed else str(run.status)


@playbook_group.command("audit")
@click.argument("run_id")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 3 if it is broken.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_journal_option
def audit_command(run_id: str, verify: bool, as_json: bool, journal_path: Path | None) -> None:
    """A run's audit log: who did what, when, each command and its outcome (secrets redacted),
    each entry chained to the one before by SHA-256."""
    with _open_journal(journal_path) as journal:
        entries = journal.audit_entries(run_id)
        problems = journal.verify_audit(run_id) if verify else []
        head = journal.run(run_id).audit_head
    if as_json:
        click.echo(json.dumps({
            "run_id": run_id, "head": head,
            "entries": [{"seq": e.seq, "at": e.at, "actor": e.actor, "kind": e.kind,
                         "data": e.data, "hash": e.hash} for e in entries],
            **({"verified": not problems, "problems": problems} if verify else {}),
        }, indent=2))  # fmt: skip
    else:
        for e in entries:
            data = for_terminal(json.dumps(e.data, sort_keys=True), 2000)
            click.echo(f"{e.seq:>4} {e.at[:23]} {e.actor} {e.kind} {data}")
        if verify:
            for problem in problems:
                click.echo(f"BROKEN: {problem}", err=True)
            click.echo(
                f"audit chain of {run_id}: {'intact' if not problems else 'BROKEN'} "
                f"({len(entries)} entries, head {str(head)[:16]})",
                err=True,
            )
    if problems:
        sys.exit(EXIT_FAILED)


@playbook_group.command("abandon")
@click.argument("run_id")
@click.option("--reason", required=True, help="Why the run will not be resumed (audited).")
@_journal_option
def abandon_command(run_id: str, reason: str, journal_path: Path | None) -> None:
    """Give up a crashed or waiting run and release its targets. What it changed stays changed."""
    from scanner.respond.engine import abandon_run

    with _open_journal(journal_path) as journal:
        abandon_run(journal, run_id, reason)
    click.echo(f"run {run_id}: abandoned; its targets are free")


COMMANDS: list[click.Command] = [playbook_group]
