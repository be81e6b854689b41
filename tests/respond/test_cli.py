"""`posture playbook` through the CLI: validate, show, plan (commands, probes, a stable hash),
run with approvals bound to that hash, status, audit --verify on a tampered log, abandon."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from scanner.cli import cli
from tests.respond.test_engine import RUNNER

pytestmark = pytest.mark.usefixtures("write_action")

BOOK = """\
id: cli-book
version: 2
name: cli book
inputs:
  word: {{type: string, required: true, pattern: "[a-z]+"}}
steps:
  - id: first
    uses: test.write_file
    with: {{path: "{d}/first.txt", text: "{{{{ inputs.word }}}}"}}
  - id: gated
    uses: test.write_file
    with: {{path: "{d}/gated.txt", text: "n={{{{ steps.first.outputs.length }}}}"}}
    approval: true
"""


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(BOOK.format(d=tmp_path))
    return path


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    env = {"POSTURE_JOURNAL": str(tmp_path / "j" / "respond.sqlite")}
    result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_validate_and_show(tmp_path: Path, book: Path) -> None:
    code, out, _ = invoke(tmp_path, "playbook", "validate", str(book))
    assert code == 0 and "ok (cli-book v2, 2 steps)" in out
    code, out, _ = invoke(tmp_path, "playbook", "show", str(book))
    assert "word (string; required)" in out and "gated: test.write_file on local [approval]" in out
    broken = tmp_path / "broken.yaml"
    broken.write_text(BOOK.format(d=tmp_path).replace("inputs.word", "inputs.wrd"))
    code, _, err = invoke(tmp_path, "playbook", "validate", str(broken))
    assert code == 2 and f"{broken}:9: unknown input 'wrd'" in err


def test_plan_shows_commands_probes_and_a_stable_hash(tmp_path: Path, book: Path) -> None:
    code, out, err = invoke(tmp_path, "playbook", "plan", str(book), "-i", "word=hello")
    assert code == 0, err
    assert f"$ tee {tmp_path}/first.txt" in out
    assert 'now: {"exists": false}' in out
    assert "gated [localhost] test.write_file: decided at run time  [needs approval]" in out
    hash_line = next(line for line in out.splitlines() if line.startswith("plan hash: "))
    plan_hash = hash_line.split(": ")[1]
    assert f"--approve gated --plan-hash {plan_hash}" in err
    _, again, _ = invoke(tmp_path, "playbook", "plan", str(book), "-i", "word=hello", "--json")
    document = json.loads(again)
    assert document["plan_hash"] == plan_hash and document["gated"] == ["gated"]
    _, other, _ = invoke(tmp_path, "playbook", "plan", str(book), "-i", "word=world", "--json")
    assert json.loads(other)["plan_hash"] != plan_hash
    assert not (tmp_path / "first.txt").exists()  # a plan changes nothing
    code, _, err = invoke(tmp_path, "playbook", "plan", str(book), "-i", "word=NO;rm")
    assert code == 3 and "does not match [a-z]+" in err


def test_run_stops_before_the_gate_then_resumes_with_the_plan_hash(
    tmp_path: Path, book: Path
) -> None:
    _, plan_out, _ = invoke(tmp_path, "playbook", "plan", str(book), "-i", "word=hello", "--json")
    plan_hash = json.loads(plan_out)["plan_hash"]
    code, out, err = invoke(tmp_path, "playbook", "run", str(book), "-i", "word=hello", "--json")
    assert code == 4, err
    assert "needs approval" in err
    run_id = err.split("resume ")[1].split()[0]
    code, out, _ = invoke(tmp_path, "playbook", "status", run_id)
    assert f"run {run_id} (cli-book): awaiting_approval" in out
    code, out, err = invoke(
        tmp_path, "playbook", "resume", run_id, "--approve", "gated", "--plan-hash", plan_hash
    )
    assert code == 0, err
    assert (tmp_path / "gated.txt").read_text() == "n=5\n"
    code, out, _ = invoke(tmp_path, "playbook", "status", "--json")
    assert json.loads(out)[0]["status"] == "succeeded"
    code, out, err = invoke(tmp_path, "playbook", "audit", run_id, "--verify")
    assert code == 0 and "intact" in err and "approval.given" in out

    with sqlite3.connect(tmp_path / "j" / "respond.sqlite") as db:
        db.execute("UPDATE audit SET actor = 'mallory@x' WHERE run_id = ? AND seq = 4", (run_id,))
    code, out, err = invoke(tmp_path, "playbook", "audit", run_id, "--verify", "--json")
    assert code == 3
    verdict = json.loads(out)
    assert verdict["verified"] is False
    assert verdict["problems"] == [
        f"entry 4 ({verdict['entries'][3]['kind']}) was altered after it was written"
    ]


def test_a_run_approved_up_front_with_a_stale_hash_is_refused(tmp_path: Path, book: Path) -> None:
    code, _, err = invoke(
        tmp_path, "playbook", "run", str(book), "-i", "word=hello", "--approve", "all",
        "--plan-hash", "f" * 64,
    )  # fmt: skip
    assert code == 3 and "is not this plan's" in err
    assert not (tmp_path / "first.txt").exists()


def test_abandon_releases_a_waiting_run(tmp_path: Path, book: Path) -> None:
    code, _, err = invoke(tmp_path, "playbook", "run", str(book), "-i", "word=hello")
    run_id = err.split("resume ")[1].split()[0]
    code, out, _ = invoke(tmp_path, "playbook", "abandon", run_id, "--reason", "handled by hand")
    assert code == 0 and "abandoned" in out
    code, _, err = invoke(tmp_path, "playbook", "resume", run_id)
    assert code == 3 and "has ended (abandoned)" in err


def test_shipped_playbooks_validate(tmp_path: Path) -> None:
    code, out, err = invoke(tmp_path, "playbook", "list", "--json")
    assert code == 0, err
    names = {row["name"] for row in json.loads(out)}
    expected = {"isolate-host", "release-host", "rotate-ssh-key", "rotate-db-password",
                "compromised-host"}  # fmt: skip
    assert expected <= names


def test_approval_asked_at_a_terminal(tmp_path: Path, book: Path) -> None:
    """A real pseudo-terminal: the gated step's parameters and question are shown, and the
    answer typed there approves it (bound to the plan hash in the audit log)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "POSTURE_JOURNAL": str(tmp_path / "j" / "respond.sqlite")}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "playbook", "run", str(book), "-i", "word=hello", "--yes"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    os.close(secondary)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            seen += os.read(primary, 4096)
        assert b"Run gated?" in seen and b'"text": "n=5"' in seen
        os.write(primary, b"y\n")
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                seen += os.read(primary, 4096)
            except OSError:
                break
        assert proc.wait(timeout=30) == 0, seen.decode(errors="replace")
    finally:
        proc.kill()
        os.close(primary)
    assert (tmp_path / "gated.txt").read_text() == "n=5\n"
    _, out, _ = invoke(tmp_path, "playbook", "status", "--json")
    run_id = json.loads(out)[0]["run_id"]
    _, audit, _ = invoke(tmp_path, "playbook", "audit", run_id, "--json")
    given = [e["data"] for e in json.loads(audit)["entries"] if e["kind"] == "approval.given"]
    assert given and given[0]["how"] == "terminal" and given[0]["step"] == "gated"
