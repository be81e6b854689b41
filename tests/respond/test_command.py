"""The `command` action on real processes, locally and through a real sshd on 127.0.104.4:
arguments arrive literally (no shell on either side), failures and stdin secrets are redacted,
timeouts kill, and check/undo argument lists drive probe, reconcile and compensate."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from scanner.respond.actions.command import OUTPUT_KEPT, Command
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ActionError, ConnectorError
from scanner.respond.secrets import Secret
from tests.respond.step_context import step_context

TOKEN = "tok-3f9a8c7e6d5b4a39-secret"
NASTY = ["a b", "$(id)", ";rm -rf /", "`x`", "*", "'\"", "line\nbreak", "-n", "$HOME", "|&>"]
SSH_ADDRESS, SSH_PORT = "127.0.104.4", 2204


def test_arguments_arrive_literally(tmp_path: Path) -> None:
    act = Command()
    ctx, seen = step_context(tmp_path)
    out = act.run(act.validate({"argv": ["printf", "%s|", *NASTY]}), ctx)
    assert out["stdout"] == "".join(f"{a}|" for a in NASTY)
    assert out["returncode"] == 0 and out["stdout_truncated"] is False
    [record] = seen.kinds("command")
    assert record["returncode"] == 0 and record["command"].startswith("printf '%s|' 'a b'")


def test_arguments_arrive_literally_over_ssh(
    tmp_path: Path, private_sshd: Callable[[str, int], tuple[Path, Path]]
) -> None:
    key, _ = private_sshd(SSH_ADDRESS, SSH_PORT)
    connector = SshConnector(SSH_ADDRESS, port=SSH_PORT, identity=key, strict=False)
    act = Command()
    out = act.run(
        act.validate({"argv": ["printf", "%s|", *NASTY]}), step_context(tmp_path, connector)[0]
    )
    assert out["stdout"] == "".join(f"{a}|" for a in NASTY)


def test_a_failure_is_an_error_with_redacted_stderr(tmp_path: Path) -> None:
    act = Command()
    ctx, seen = step_context(tmp_path)
    ctx.redactor.add(TOKEN)
    script = f"echo noise >&2; echo token {TOKEN} leaked >&2; exit 3"
    with pytest.raises(ActionError) as info:
        act.run(act.validate({"argv": ["sh", "-c", script]}), ctx)
    message = str(info.value)
    assert "sh exited with 3 (expected 0): token [redacted] leaked" in message
    assert TOKEN not in message and TOKEN not in json.dumps(seen.records)
    assert seen.kinds("command")[0]["returncode"] == 3
    # An expected non-zero exit is not a failure.
    out = act.run(act.validate({"argv": ["sh", "-c", script], "ok_codes": [0, 3]}), ctx)
    assert out["returncode"] == 3 and TOKEN not in out["stderr"] and "[redacted]" in out["stderr"]


def test_a_secret_goes_in_on_stdin_and_never_comes_out(tmp_path: Path) -> None:
    act = Command()
    ctx, seen = step_context(tmp_path)
    written = tmp_path / "received"
    params = act.validate({"argv": ["tee", str(written)], "input": Secret("api", TOKEN)})
    assert "<secret api>" in act.describe(params, ctx.connector)[0]
    out = act.run(params, ctx)
    assert written.read_text() == TOKEN  # the process got the value itself
    assert out["stdout"] == "[redacted]"
    assert TOKEN not in json.dumps([out, seen.records, act.describe(params, ctx.connector)])


def test_output_is_bounded_and_marked(tmp_path: Path) -> None:
    act = Command()
    out = act.run(
        act.validate({"argv": [sys.executable, "-c", f"print('x' * {OUTPUT_KEPT * 3})"]}),
        step_context(tmp_path)[0],
    )
    assert len(out["stdout"]) == OUTPUT_KEPT and out["stdout_truncated"] is True


def test_timeout_kills_the_command(tmp_path: Path) -> None:
    act = Command()
    ctx, _ = step_context(tmp_path, timeout=0.5)
    with pytest.raises(ConnectorError, match=r"sleep did not finish within 0\.5s and was killed"):
        act.run(act.validate({"argv": ["sleep", "30"]}), ctx)


def test_check_compensate_and_reconcile(tmp_path: Path) -> None:
    act = Command()
    ctx, seen = step_context(tmp_path)
    marker = tmp_path / "marker"
    params = act.validate({"argv": ["touch", str(marker)],
                           "check_argv": ["test", "-e", str(marker)],
                           "compensate_argv": ["rm", "--", str(marker)]})  # fmt: skip
    assert [line.split(":")[0] for line in act.describe(params, ctx.connector)[1:]] == [
        "done when this exits 0",
        "undo",
    ]
    assert act.probe(params, ctx) == {"already_done": False}
    assert act.reconcile(params, ctx, {}) is None  # not done: the engine runs it again
    act.run(params, ctx)
    assert marker.exists() and act.probe(params, ctx) == {"already_done": True}
    assert act.reconcile(params, ctx, {})["reconciled"] is True  # type: ignore[index]
    act.compensate(params, ctx, {}, None)
    assert not marker.exists()
    # An undo that fails says so, with its stderr, and asks for a hand.
    with pytest.raises(ActionError, match=r"undo rm exited with 1: .*No such file.*by hand"):
        act.compensate(params, ctx, {}, None)
    assert [r["returncode"] for r in seen.kinds("command")][-2:] == [0, 1]
    # Without a check the action cannot tell, and without an undo there is nothing to do.
    bare = act.validate({"argv": ["true"]})
    assert act.probe(bare, ctx) == {} and act.reconcile(bare, ctx, {}) is None
    act.compensate(bare, ctx, {}, None)


@pytest.mark.parametrize(
    "raw",
    [
        {"argv": []},
        {"argv": "rm -rf /"},  # a shell line is not an argument list
        {"argv": ["true"], "ok_codes": [256]},
        {"argv": ["true"], "ok_codes": []},
        {"argv": ["true"], "compensate_argv": []},
        {"argv": ["true"], "shell": True},
    ],
)
def test_bad_params_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Command().validate(raw)
