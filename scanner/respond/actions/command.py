"""`command`: an argument list on the target, for what no action covers; never a shell line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import CommandResult, Connector
from scanner.respond.errors import ActionError

OUTPUT_KEPT = 16 * 1024  # characters of stdout/stderr kept in outputs (after redaction)


class CommandParams(Params):
    argv: list[str] = Field(min_length=1, max_length=256)
    input: str | None = None  # stdin
    ok_codes: list[int] = Field(default_factory=lambda: [0])
    check_argv: list[str] | None = None  # exit 0: the effect is already in place
    compensate_argv: list[str] | None = None  # undoes the command


class Command(Action):
    name = "command"
    params = CommandParams
    summary = "run an argument list on the target (no shell)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        lines = [connector.describe(p.argv)]
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
        result = _run(ctx, p.argv, p.input)
        outputs: dict[str, Any] = {
            "returncode": result.returncode,
            "stdout": ctx.redactor.bytes(result.stdout)[:OUTPUT_KEPT],
            "stderr": ctx.redactor.bytes(result.stderr)[:OUTPUT_KEPT],
        }
        if result.returncode not in p.ok_codes:
            last = str(outputs["stderr"]).strip().splitlines()[-1:] or ["(no output)"]
            raise ActionError(f"{p.argv[0]} exited with {result.returncode}: {last[0][:500]}")
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
            raise ActionError(f"undo {p.compensate_argv[0]} exited {result.returncode}: {reason}")

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        p = _p(params)
        if p.check_argv is None:
            return None  # cannot tell: run it again
        result = _run(ctx, p.check_argv, None)
        return (
            {"returncode": 0, "stdout": "", "stderr": "", "reconciled": True} if result.ok else None
        )


def _p(params: Params) -> CommandParams:
    assert isinstance(params, CommandParams)
    return params


def _run(ctx: StepContext, argv: list[str], stdin: str | None) -> CommandResult:
    result = ctx.connector.run(
        argv, input=stdin.encode() if stdin is not None else None, timeout=ctx.timeout
    )
    ctx.record(
        "command",
        {
            "command": ctx.connector.describe(argv),
            "returncode": result.returncode,
            "stderr": ctx.redactor.bytes(result.stderr)[-500:],
        },
    )
    return result
