# ruff: noqa: E501 - playbooks written inline keep their YAML lines whole
"""The engine end to end on a real (file-writing) action: outputs flow between steps, failures
roll back in reverse from recorded pre-state, retries and timeouts, approvals bound to the plan
hash, redaction of secrets everywhere, fan-out over addresses, locks, and resume after a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.respond.engine import ApprovalNeeded, Hooks, resume_run, start_run
from scanner.respond.errors import RespondError
from scanner.respond.journal import Journal, LockHeld
from scanner.respond.secrets import Secret

SECRET_VALUE = "s3cr3t-T0ken-value-42"


pytestmark = pytest.mark.usefixtures("write_action")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal" / "respond.sqlite") as j:
        yield j


stored: dict[str, str] = {}


def _put(name: str, value: Secret) -> str:
    stored[name] = value.reveal()
    return f"keystore:{name}"


def _book(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _start(journal: Journal, book: Path, tmp_path: Path, **kw: Any) -> Any:
    return start_run(
        journal, book, kw.pop("inputs", {}), tmp_path / "runs",
        approve=kw.pop("approve", set()), plan_hash=kw.pop("plan_hash", None),
        hooks=kw.pop("hooks", Hooks()), keystore_put=_put, **kw,
    )  # fmt: skip


def test_outputs_flow_and_the_audit_chain_holds(tmp_path: Path, journal: Journal) -> None:
    book = _book(
        tmp_path,
        f"""
        id: two-writes
        version: 1
        name: two writes
        inputs:
          word: {{type: string, required: true}}
        steps:
          - id: first
            uses: test.write_file
            with: {{path: "{tmp_path}/a.txt", text: "{{{{ inputs.word }}}}"}}
          - id: second
            uses: test.write_file
            with: {{path: "{tmp_path}/b.txt", text: "len={{{{ steps.first.outputs.length }}}}"}}
    """,
    )
    outcome = _start(journal, book, tmp_path, inputs={"word": ["hello"]})
    assert outcome.status == "succeeded"
    assert (tmp_path / "b.txt").read_text() == "len=5\n"
    assert journal.verify_audit(outcome.run_id) == []
    kinds = [e.kind for e in journal.audit_entries(outcome.run_id)]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    assert kinds.index("step.intent") < kinds.index("first.command") < kinds.index("step.succeeded")
    assert journal.locks() == []


def test_a_failure_rolls_back_in_reverse_to_the_recorded_prestate(
    tmp_path: Path, journal: Journal
) -> None:
    (tmp_path / "a.txt").write_text("before\n")
    book = _book(
        tmp_path,
        f"""
        id: rollback
        version: 1
        name: rollback
        steps:
          - {{id: one, uses: test.write_file, with: {{path: "{tmp_path}/a.txt", text: one}}}}
          - {{id: two, uses: test.write_file, with: {{path: "{tmp_path}/b.txt", text: two}}}}
          - id: three
            uses: test.write_file
            with: {{path: "{tmp_path}/c.txt", text: three, fail_times: 9}}
            retry: {{count: 2, delay: 0.01, backoff: 1}}
        always:
          - {{id: tell, uses: test.write_file, with: {{path: "{tmp_path}/always.txt", text: "{{{{ steps.three.status }}}}"}}}}
    """,
    )
    outcome = _start(journal, book, tmp_path)
    assert outcome.status == "rolled_back"
    assert "step three: failing on purpose (attempt 3)" in outcome.error
    assert (tmp_path / "a.txt").read_text() == "before\n"
    assert not (tmp_path / "b.txt").exists()
    assert (tmp_path / "always.txt").read_text() == "failed\n"
    rows = {s.step_id: s for s in journal.steps(outcome.run_id)}
    assert rows["three"].attempts == 3 and rows["three"].status == "failed"
    assert rows["one"].compensation == "done" and rows["two"].compensation == "done"
    undo = [e.data["step"] for e in journal.audit_entries(outcome.run_id)
            if e.kind == "step.compensated"]  # fmt: skip
    assert undo == ["three", "two", "one"]


def test_on_failure_continue_and_abort(tmp_path: Path, journal: Journal) -> None:
    book = _book(
        tmp_path,
        f"""
        id: cont
        version: 1
        name: cont
        steps:
          - id: bad
            uses: test.write_file
            with: {{path: "{tmp_path}/x.txt", text: x, fail_times: 9}}
            on_failure: continue
          - {{id: good, uses: test.write_file, with: {{path: "{tmp_path}/y.txt", text: y}}}}
          - id: stop
            uses: test.write_file
            with: {{path: "{tmp_path}/z.txt", text: z, fail_times: 9}}
            on_failure: abort
    """,
    )
    outcome = _start(journal, book, tmp_path)
    assert outcome.status == "failed"
    assert (tmp_path / "y.txt").read_text() == "y\n"  # aborted: nothing undone
    assert {s.step_id: s.status for s in journal.steps(outcome.run_id)} == {
        "bad": "failed", "good": "succeeded", "stop": "failed",
    }  # fmt: skip


def test_a_step_that_outlasts_its_timeout_fails(tmp_path: Path, journal: Journal) -> None:
    book = _book(
        tmp_path,
        f"""
        id: slow
        version: 1
        name: slow
        steps:
          - id: slow
            uses: test.write_file
            with: {{path: "{tmp_path}/s.txt", text: s, sleep: 1.0}}
            timeout: 0.2
    """,
    )
    outcome = _start(journal, book, tmp_path)
    assert outcome.status == "rolled_back"
    assert "did not finish within 0.2s" in outcome.error
    assert not (tmp_path / "s.txt").exists()  # the late write was undone, after it finished


GATED = """
    id: gated
    version: 1
    name: gated
    steps:
      - {{id: before, uses: test.write_file, with: {{path: "{d}/before.txt", text: b}}}}
      - id: act
        uses: test.write_file
        with: {{path: "{d}/act.txt", text: a}}
        approval: "Write act.txt?"
"""


def test_approval_is_needed_and_bound_to_the_plan_hash(tmp_path: Path, journal: Journal) -> None:
    book = _book(tmp_path, GATED.format(d=tmp_path))
    with pytest.raises(ApprovalNeeded) as info:
        _start(journal, book, tmp_path)
    run_id = info.value.args[0].split("resume ")[1].split()[0]
    plan_hash = info.value.args[0].split("--plan-hash ")[1]
    assert journal.run(run_id).status == "awaiting_approval"
    assert not (tmp_path / "act.txt").exists()
    with pytest.raises(RespondError, match="is not this plan's"):
        resume_run(journal, run_id, approve={"act"}, plan_hash="0" * 64, hooks=Hooks())
    with pytest.raises(RespondError, match="--approve needs --plan-hash"):
        resume_run(journal, run_id, approve={"act"}, plan_hash=None, hooks=Hooks())
    outcome = resume_run(
        journal, run_id, approve={"act"}, plan_hash=plan_hash, hooks=Hooks(), keystore_put=_put
    )
    assert outcome.status == "succeeded"
    assert (tmp_path / "before.txt").read_text() == "b\n"  # not written twice
    assert (tmp_path / "before.txt.attempts").read_text() == "1"
    assert (tmp_path / "act.txt").read_text() == "a\n"
    given = [e.data for e in journal.audit_entries(run_id) if e.kind == "approval.given"]
    assert given == [{"step": "act", "plan_hash": plan_hash, "how": "--approve"}]


def test_approval_up_front_and_at_the_terminal(tmp_path: Path, journal: Journal) -> None:
    book = _book(tmp_path, GATED.format(d=tmp_path))
    asked: list[str] = []

    def no(planned: Any, params: Any) -> bool:
        asked.append(planned.step.id)
        return False

    with pytest.raises(ApprovalNeeded, match="not approved"):
        _start(journal, book, tmp_path, hooks=Hooks(ask_approval=no))
    assert asked == ["act"] and not (tmp_path / "act.txt").exists()
    from scanner.respond.engine import prepare

    plan = prepare(book, {}, tmp_path / "p")[-1]
    outcome = _start(journal, book, tmp_path, approve={"all"}, plan_hash=plan.hash)
    assert outcome.status == "succeeded"


def test_secrets_never_reach_the_journal(
    tmp_path: Path, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTURE_TEST_TOKEN", SECRET_VALUE)
    book = _book(
        tmp_path,
        f"""
        id: secretive
        version: 1
        name: secretive
        credentials:
          token: env:POSTURE_TEST_TOKEN
        steps:
          - id: leak
            uses: test.write_file
            with: {{path: "{tmp_path}/l.txt", text: l, fail_times: 9, token: "{{{{ credentials.token }}}}"}}
    """,
    )
    outcome = _start(journal, book, tmp_path)
    assert outcome.status == "rolled_back"
    assert SECRET_VALUE not in (outcome.error or "")
    assert "[redacted]" in outcome.error
    journal.close()
    for path in (tmp_path / "journal").iterdir():
        assert SECRET_VALUE.encode() not in path.read_bytes(), path


def test_a_step_fans_out_over_addresses(tmp_path: Path, journal: Journal) -> None:
    book = _book(
        tmp_path,
        f"""
        id: fan
        version: 1
        name: fan
        inputs:
          hosts: {{type: ip, multiple: true, required: true}}
        targets:
          each: {{connector: local, address: "{{{{ inputs.hosts }}}}", max_parallel: 4}}
        steps:
          - id: mark
            uses: test.write_file
            target: each
            with: {{path: "{tmp_path}/{{{{ target.address }}}}.txt", text: "{{{{ target.address }}}}"}}
    """,
    )
    hosts = [f"127.0.105.{i}" for i in range(1, 9)]
    outcome = _start(journal, book, tmp_path, inputs={"hosts": hosts})
    assert outcome.status == "succeeded"
    for host in hosts:
        assert (tmp_path / f"{host}.txt").read_text() == f"{host}\n"
    assert len(journal.steps(outcome.run_id)) == 8


def test_a_held_target_is_refused(tmp_path: Path, journal: Journal) -> None:
    book = _book(
        tmp_path,
        f"""
        id: held
        version: 1
        name: held
        targets:
          box: {{connector: local, address: 127.0.105.20}}
        steps:
          - id: act
            uses: test.write_file
            target: box
            with: {{path: "{tmp_path}/held.txt", text: a}}
            approval: true
    """,
    )
    with pytest.raises(ApprovalNeeded):
        _start(journal, book, tmp_path)  # stops before the gated step, holding box
    with pytest.raises(LockHeld, match=r"local:127\.0\.105\.20 is held by run"):
        _start(journal, book, tmp_path)


RUNNER = """
import sys
from scanner.respond.actions import registry
registry.ACTIONS["test.write_file"] = "tests.respond.file_action:WriteFile"
from scanner.cli import cli
cli(sys.argv[1:], prog_name="posture")
"""


def test_kill_9_then_resume_repeats_no_completed_side_effect(tmp_path: Path) -> None:
    """A real process is killed mid-step; resume skips the finished step, reconciles the cut
    one, and finishes the rest."""
    book = _book(
        tmp_path,
        f"""
        id: crash
        version: 1
        name: crash
        steps:
          - {{id: one, uses: test.write_file, with: {{path: "{tmp_path}/one.txt", text: one}}}}
          - {{id: slow, uses: test.write_file, with: {{path: "{tmp_path}/slow.txt", text: slow, sleep: 30}}, timeout: 60}}
          - {{id: three, uses: test.write_file, with: {{path: "{tmp_path}/three.txt", text: three}}}}
    """,
    )
    env = {**os.environ, "POSTURE_JOURNAL": str(tmp_path / "j" / "respond.sqlite")}
    cwd = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "playbook", "run", str(book), "--json"],
        env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "slow.txt.attempts").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "slow.txt.attempts").exists(), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    with sqlite3.connect(env["POSTURE_JOURNAL"]) as db:
        (run_id,) = db.execute("SELECT id FROM runs").fetchone()
    status = subprocess.run(
        [sys.executable, "-c", RUNNER, "playbook", "status", run_id],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "crashed (resume it)" in status.stdout
    assert "slow [localhost] running" in status.stdout
    (tmp_path / "slow.txt").write_text("slow\n")  # as if the killed write had landed
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, "playbook", "resume", run_id, "--json"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"status": "succeeded"' in done.stdout
    assert (tmp_path / "one.txt").read_text() == "one\n"
    assert (tmp_path / "one.txt.attempts").read_text() == "1"  # not run again
    assert (tmp_path / "slow.txt").read_text() == "slow\n"  # reconciled, not written again
    assert (tmp_path / "slow.txt.attempts").read_text() == "1"
    assert (tmp_path / "three.txt").read_text() == "three\n"
    audit = subprocess.run(
        [sys.executable, "-c", RUNNER, "playbook", "audit", run_id, "--verify"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert audit.returncode == 0 and "intact" in audit.stderr
