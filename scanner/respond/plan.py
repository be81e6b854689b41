"""The dry run: every step of a playbook rendered against its inputs, per target address, with the
exact commands it would run, and the plan hash that approvals are bound to.

A value that depends on an earlier step's outputs cannot be known before the run: it is shown as
its template and marked `decided at run time`, and its template text (not a guess) goes into the
hash. Read-only probes of current state (is the host isolated already?) are shown beside the
plan but are not hashed: they describe the world, not the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from scanner.respond.actions.registry import action
from scanner.respond.connect import Connectors, TargetPlan, resolve_targets
from scanner.respond.inputs import shown as shown_input
from scanner.respond.journal import canonical
from scanner.respond.schema import Compensation, LoadedPlaybook, Step
from scanner.respond.secrets import Secret
from scanner.respond.templating import SecretRef, condition, render_value


class NeedsRun(Exception):
    """A template read an earlier step's outputs: the value is decided at run time."""


class _Later:
    """`steps` at plan time: reading any step's outputs means the value is not known yet."""

    def __getattr__(self, name: str) -> Any:
        raise NeedsRun(name)

    def __getitem__(self, name: str) -> Any:
        raise NeedsRun(name)


def base_context(
    inputs: Mapping[str, Any], credential_refs: Mapping[str, str], run_id: str
) -> dict[str, Any]:
    return {
        "inputs": dict(inputs),
        "credentials": {n: SecretRef(n, r) for n, r in credential_refs.items()},
        "run": {"id": run_id},
    }


def to_secrets(value: Any, secrets: Mapping[str, Secret]) -> Any:
    """SecretRefs in rendered values replaced by the resolved Secret objects."""
    if isinstance(value, SecretRef):
        return secrets[value.ref]
    if isinstance(value, dict):
        return {k: to_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [to_secrets(v, secrets) for v in value]
    return value


def shown(value: Any) -> Any:
    """A rendered value as plans and journals show it: secrets as their references."""
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, SecretRef):
        return value.shown()
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown(v) for v in value]
    return value


@dataclass
class PlannedStep:
    section: str
    seq: int
    step: Step
    target: str
    address: str
    state: str  # "ready", "skipped" (when is false), "decided at run time"
    params: Any  # shown form
    commands: list[str] | None
    problem: str | None = None
    probe: dict[str, Any] | None = None
    raw_params: Any = None  # rendered, secrets as references (for probes)
    secrets: Mapping[str, Secret] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.step.id}@{self.address}"

    def hashed(self) -> dict[str, Any]:
        step = self.step
        compensate = (
            {"uses": step.compensate.uses, "with": step.compensate.with_}
            if isinstance(step.compensate, Compensation)
            else step.compensate
        )
        return {
            "section": self.section,
            "id": step.id,
            "uses": step.uses,
            "target": self.target,
            "address": self.address,
            "when": step.when,
            "state": self.state,
            "params": self.params,
            "commands": self.commands,
            "approval": step.approval,
            "verify": step.verify,
            "timeout": step.timeout,
            "retry": step.retry.model_dump(),
            "on_failure": step.on_failure,
            "compensate": compensate,
        }


@dataclass
class Plan:
    loaded: LoadedPlaybook
    inputs: dict[str, Any]
    targets: dict[str, TargetPlan]
    steps: list[PlannedStep] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """What the hash covers."""
        book = self.loaded.playbook
        return {
            "playbook": {"id": book.id, "version": str(book.version), "sha256": self.loaded.sha256},
            "inputs": shown_input(self.inputs),
            "credentials": dict(sorted(book.credentials.items())),
            "targets": {n: t.shown() for n, t in sorted(self.targets.items())},
            "steps": [s.hashed() for s in self.steps],
        }

    @property
    def hash(self) -> str:
        return hashlib.sha256(canonical(self.document()).encode()).hexdigest()

    def gated(self) -> list[str]:
        return list(dict.fromkeys(s.step.id for s in self.steps if s.step.approval))


def render_step(
    step: Step, context: Mapping[str, Any], secrets: Mapping[str, Secret]
) -> tuple[bool, Any, Any]:
    """(runs, params shown, params with secrets) of one step in `context`."""
    if step.when is not None and not condition(step.when, context):
        return False, None, None
    rendered = render_value(step.with_, context)
    return True, shown(rendered), to_secrets(rendered, secrets)


def build_plan(
    loaded: LoadedPlaybook,
    inputs: Mapping[str, Any],
    secrets: Mapping[str, Secret],
    connectors: Connectors | None,
) -> Plan:
    """The plan of `loaded` for `inputs`. `secrets` maps each reference to its Secret (values
    are needed to validate parameters such as keys, never shown); `connectors` builds the
    connectors that describe commands (None: targets only, from `resolve_targets`)."""
    book = loaded.playbook
    context = base_context(inputs, book.credentials, "(plan)")
    targets = resolve_targets(book.targets, context)
    plan = Plan(loaded, dict(inputs), targets)
    context["steps"] = _Later()
    for seq, (section, _, step) in enumerate(book.all_steps()):
        target = targets[step.target]
        for address in target.addresses:
            context["target"] = {"name": step.target, "address": address}
            planned = PlannedStep(section, seq, step, step.target, address, "ready", None, None)
            try:
                runs, params_shown, params = render_step(step, context, secrets)
                if not runs:
                    planned.state = "skipped"
                else:
                    planned.params = params_shown
                    planned.raw_params = render_value(step.with_, context)
                    planned.secrets = secrets
                    act = action(step.uses)
                    model = act.validate(params)
                    if connectors is not None:
                        planned.commands = act.describe(model, connectors.get(step.target, address))
            except NeedsRun as exc:
                planned.state = "decided at run time"
                planned.params = shown(step.with_)
                planned.problem = f"reads steps.{exc.args[0]} (known when that step has run)"
            except ValidationError as exc:
                planned.params = planned.params or shown(step.with_)
                planned.problem = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
            except Exception as exc:  # a template error: shown in the plan, the run refuses
                planned.params = planned.params or shown(step.with_)
                planned.problem = f"{type(exc).__name__}: {exc}"
            plan.steps.append(planned)
    return plan
