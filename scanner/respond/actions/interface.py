"""The interface every playbook action implements, and the context a step runs in.

The engine's order for one step is: `validate` the rendered `with:` into `params`; for a plan,
`describe` + `probe` (read-only); for a run, journal the intent, `prestate` (what compensation
restores), `run`, `verify` when the step asks for it, journal the result. A failed later step
makes the engine call `compensate(prestate, outputs)` of completed steps in reverse. After a
crash between intent and result, the engine calls `reconcile` instead of running again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from scanner.respond.connectors.interface import Connector
from scanner.respond.secrets import Redactor, Secret


class Params(BaseModel):
    """Base of every action's `with:` model: unknown keys are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SecretSink:
    """Where an action stores a secret it minted (new private key, new password): the run's
    keystore. Returns the reference (`keystore:NAME`) recorded in outputs instead of the value."""

    def __init__(self, put: Callable[[str, Secret], str]) -> None:
        self._put = put

    def put(self, name: str, value: Secret) -> str:
        return self._put(name, value)


@dataclass
class StepContext:
    """What one step of one run may use. Commands go through `connector`; every command and
    its outcome is reported to `record` (the audit log) after redaction."""

    run_id: str
    step_id: str
    connector: Connector
    timeout: float
    redactor: Redactor
    secrets: SecretSink
    workdir: Path  # the run's own folder (evidence, temporary files)
    record: Callable[[str, Mapping[str, Any]], None] = field(default=lambda kind, data: None)
    management_address: str | None = None  # the address the responder's session comes from


class Action(ABC):
    """One kind of step. Stateless: everything a step needs is in its params and context."""

    name: ClassVar[str]  # "host.isolate"
    params: ClassVar[type[Params]]
    summary: ClassVar[str]  # one line for `posture playbook show` and plans
    changes_state: ClassVar[bool] = True  # False for read-only actions (verify, evidence)

    def validate(self, raw: Mapping[str, Any]) -> Params:
        return self.params.model_validate(dict(raw))

    @abstractmethod
    def describe(self, params: Params, connector: Connector) -> list[str]:
        """Exactly what `run` would do, one line per command (connector.describe of each argv),
        with secret values shown as their references. Pure: no I/O."""

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        """Read-only current state for the plan (e.g. {"isolated": False}). Default: none."""
        return {}

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        """What compensation must restore, read before acting; JSON-able, secret-free."""
        return {}

    @abstractmethod
    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        """Acts; returns outputs (JSON-able, secrets only as references) for later steps."""

    def verify(  # noqa: B027 - optional: most actions have nothing more to prove
        self, params: Params, ctx: StepContext, outputs: Mapping[str, Any]
    ) -> None:
        """Proves the effect; raises VerifyError when it does not hold. Default: nothing."""

    def compensate(  # noqa: B027 - optional: read-only actions have nothing to undo
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        """Restores `prestate` (outputs is None when run never returned). Default: nothing."""

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """After a crash between intent and result: the outputs if the effect is already in
        place, or None to let the engine run the action again. Default for read-only actions
        is None (run again); state-changing actions override it."""
        return None
