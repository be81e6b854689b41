"""A small real action for engine tests: it writes a file (a real, undoable side effect), can be
told to fail a number of times or to outlast its timeout, and knows how to undo and reconcile."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.errors import ActionError
from scanner.respond.secrets import Secret


class WriteParams(Params):
    path: str
    text: str
    fail_times: int = 0  # fail this many attempts (counted in a file beside `path`)
    sleep: float = 0.0
    token: Secret | None = None


class WriteFile(Action):
    name = "test.write_file"
    params = WriteParams
    summary = "write a file"

    def describe(self, params: Any, connector: Connector) -> list[str]:
        return [connector.describe(["tee", params.path])]

    def probe(self, params: Any, ctx: StepContext) -> dict[str, Any]:
        return {"exists": Path(params.path).exists()}

    def prestate(self, params: Any, ctx: StepContext) -> dict[str, Any]:
        path = Path(params.path)
        return {"existed": path.exists(), "text": path.read_text() if path.exists() else None}

    def run(self, params: Any, ctx: StepContext) -> dict[str, Any]:
        counter = Path(params.path + ".attempts")
        attempts = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempts))
        time.sleep(params.sleep)
        if attempts <= params.fail_times:
            token = params.token.reveal() if params.token else ""
            raise ActionError(f"failing on purpose (attempt {attempts}) {token}")
        with open(params.path, "a") as handle:
            handle.write(params.text + "\n")
        ctx.record("command", {"argv": f"tee {params.path}", "returncode": 0})
        return {"path": params.path, "length": len(params.text)}

    def compensate(
        self, params: Any, ctx: StepContext, prestate: Mapping[str, Any], outputs: Any
    ) -> None:
        path = Path(params.path)
        if prestate["existed"]:
            path.write_text(prestate["text"])
        else:
            path.unlink(missing_ok=True)

    def reconcile(
        self, params: Any, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        path = Path(params.path)
        if path.exists() and params.text + "\n" in path.read_text():
            return {"path": params.path, "length": len(params.text)}
        return None
