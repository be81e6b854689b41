"""`command`: an argument list on the target, for what no action covers; never a shell line.

Its outputs (exit code, stdout, stderr) are redacted and bounded. `check_argv` tells whether the
effect is already in place (exit 0): plans show it, and a resumed run does not run the command
again. `compensate_argv` undoes it when a later step fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import CommandResult, Connector
from scanner.respond.errors import ActionError
from scanner.respond.secrets import Secret

OUTPUT_KEPT = 16 * 1024  # characters of stdout/stderr kept in outputs (after redaction)
Argv = Annotated[list[Annotated[str, Field(max_length=65536)]], Field(min_length=1, max_length=256)]


class CommandParams(Params):
    argv: Argv
    input: str | Secret | None = Field(default=None)  # stdin; a secret goes here, never in argv
    ok_codes: list[Annotated[int, Field(ge=0, le=255)]] = Field(default=[0], min_length=1)
    check_argv: Argv | None = None  # exit 0: the effect is already in place
    compensate_argv: Argv | None = None  # undoes the command


class Command(Action):
    name = "command"
    params = CommandParams
    summary = "run an argument list on the target (no shell)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        line = connector.describe(p.argv)
        if isinstance(p.input, Secret):
            line += f"  # stdin: {p.input}"
        elif p.input is not None:
            line += f"  # stdin: {len(p.input.encode())} bytes"
        lines = [line]
        if p.check_argv:
            lines.append("done when this exits 0: " + connector.describe(p.check_argv))
        if p.compensate_argv:
            lines.append("undo: " + connector.describe(p.compensate_argv))
        return lines

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        if p.check_argv is None:
            return {}
        result = _run(ctx, p.check_argv, None)
        return {"already_done": result.ok}

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        if isinstance(p.input, Secret):
            ctx.redactor.add(p.input)
        result = _run(ctx, p.argv, p.input)
        stdout, stderr = ctx.redactor.bytes(result.stdout), ctx.redactor.bytes(result.stderr)
        outputs: dict[str, Any] = {
            "returncode": result.returncode,
            "stdout": stdout[:OUTPUT_KEPT],
            "stderr": stderr[:OUTPUT_KEPT],
            "stdout_truncated": len(stdout) > OUTPUT_KEPT,
            "stderr_truncated": len(stderr) > OUTPUT_KEPT,
        }
        if result.returncode not in p.ok_codes:
            last = stderr.strip().splitlines()[-1:] or ["(no output on stderr)"]
            raise ActionError(
                ctx.redactor(
                    f"{ctx.connector.host}: {p.argv[0][:100]} exited with {result.returncode} "
                    f"(expected {', '.join(map(str, p.ok_codes))}): {last[0][:500]}"
                )
            )
        return outputs

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        p = _p(params)
        if p.compensate_argv is None:
            return
        result = _run(ctx, p.compensate_argv, None)
        if not result.ok:
            reason = ctx.redactor.bytes(result.stderr).strip()[-300:]
            raise ActionError(
                ctx.redactor(
                    f"{ctx.connector.host}: undo {p.compensate_argv[0][:100]} exited with "
                    f"{result.returncode}: {reason or '(no output on stderr)'}; undo it by hand"
                )
            )

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        p = _p(params)
        if p.check_argv is None:
            return None  # cannot tell: run it again
        if not _run(ctx, p.check_argv, None).ok:
            return None
        return {"returncode": 0, "stdout": "", "stderr": "", "stdout_truncated": False,
                "stderr_truncated": False, "reconciled": True}  # fmt: skip


def _p(params: Params) -> CommandParams:
    assert isinstance(params, CommandParams)
    return params


def _run(ctx: StepContext, argv: list[str], stdin: str | Secret | None) -> CommandResult:
    data = None
    if stdin is not None:
        data = (stdin.reveal() if isinstance(stdin, Secret) else stdin).encode()
    result = ctx.connector.run(argv, input=data, timeout=ctx.timeout)
    ctx.record(
        "command",
        {
            "command": ctx.redactor(ctx.connector.describe(argv)),
            "returncode": result.returncode,
            "stderr": ctx.redactor.bytes(result.stderr)[-500:],
        },
    )
    return result
