"""A real StepContext for action tests: a connector, a fresh redactor, a keystore stand-in that
keeps what it is given in a dict, and every audit record kept in a list to look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.secrets import Redactor, Secret


@dataclass
class Recorded:
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stored: dict[str, Secret] = field(default_factory=dict)

    def put(self, name: str, value: Secret) -> str:
        self.stored[name] = value
        return f"keystore:{name}"

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.records if k == kind]


def step_context(
    workdir: Path, connector: Connector | None = None, *, timeout: float = 20, run_id: str = "r-1"
) -> tuple[StepContext, Recorded]:
    seen = Recorded()
    ctx = StepContext(
        run_id=run_id, step_id="step", connector=connector or LocalConnector(), timeout=timeout,
        redactor=Redactor(), secrets=SecretSink(seen.put), workdir=workdir,
        record=lambda kind, data: seen.records.append((kind, dict(data))),
    )  # fmt: skip
    return ctx, seen
