"""The playbook format, and its loading: a broken playbook (bad YAML, unknown action, unknown
input, wrong type, missing target, cyclic or dangling reference) fails with file, line and
reason before anything runs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scanner.respond.actions.registry import ACTIONS, action
from scanner.respond.errors import PlaybookError
from scanner.respond.inputs import SECRET_REF, InputSpec, parse_value
from scanner.respond.templating import is_template, references, strings_in
from scanner.rules.packfile import LocatedList, LocatedMap, PackFileError, read_pack_file

NAME = r"^[a-z][a-z0-9_-]{0,63}$"
LOCAL = "local"  # the target every playbook has: the responder's own machine
ROOTS = {"inputs", "credentials", "steps", "target", "run"}
_JINJA_NAMES = {"true", "false", "none", "True", "False", "None", "loop", "range", "namespace"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpec(_Model):
    """How a host is reached. `address` may be a template that renders to one address or to a
    list (then every step on this target runs once per address, `max_parallel` at a time)."""

    connector: Literal["local", "ssh"]
    address: str = "localhost"
    user: str = "root"
    port: int | str = 22
    key: str | None = None  # a credential, or a secret input, holding the private key
    known_hosts: str | None = None  # a file (a template; empty: ssh's own ~/.ssh/known_hosts)
    strict_host_keys: bool = True
    netns: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    max_parallel: int = Field(default=10, ge=1, le=256)


class Retry(_Model):
    count: int = Field(default=0, ge=0, le=20)
    delay: float = Field(default=1.0, ge=0, le=600)
    backoff: float = Field(default=2.0, ge=1, le=10)


class Compensation(_Model):
    """A step's own undo, when the action's built-in compensation is not the right one."""

    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    timeout: float = Field(default=60, gt=0, le=3600)


class Step(_Model):
    id: str = Field(pattern=NAME)
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    target: str = LOCAL
    when: str | None = None
    timeout: float = Field(default=60, gt=0, le=3600)
    retry: Retry = Retry()
    approval: bool | str = False  # True, or the question to ask
    verify: bool = True
    compensate: bool | Compensation = True
    on_failure: Literal["rollback", "continue", "abort"] = "rollback"
    description: str = ""


class Playbook(_Model):
    id: str = Field(pattern=NAME)
    version: int | str
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    credentials: dict[str, str] = Field(default_factory=dict)
    targets: dict[str, TargetSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1, max_length=200)
    always: list[Step] = Field(default_factory=list, max_length=50)

    @field_validator("inputs", "targets", "credentials")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(NAME, name):
                raise ValueError(f"'{name}' is not a name (lower-case letters, digits, - and _)")
        return value

    @field_validator("credentials")
    @classmethod
    def _refs(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ref in value.items():
            if not SECRET_REF.match(ref):
                raise ValueError(
                    f"credential '{name}' must be a reference (env:NAME, file:/PATH or "
                    "keystore:NAME), never a value"
                )
        return value

    def all_steps(self) -> Iterator[tuple[str, int, Step]]:
        for i, step in enumerate(self.steps):
            yield "steps", i, step
        for i, step in enumerate(self.always):
            yield "always", i, step


@dataclass(frozen=True)
class LoadedPlaybook:
    path: Path
    sha256: str  # of the file's bytes: a run resumes only the same playbook
    playbook: Playbook
    raw: Any  # the Located document, for lines


def _line(raw: Any, loc: Sequence[Any]) -> int:
    """The line of the deepest part of `loc` that the document has."""
    node, line = raw, getattr(raw, "line", 0)
    for part in loc:
        part = "with" if part == "with_" else part
        if isinstance(node, LocatedMap) and part in node:
            line, node = node.key_lines.get(part, line), node[part]
        elif isinstance(node, LocatedList) and isinstance(part, int) and part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


class _Problems:
    def __init__(self, path: Path, raw: Any) -> None:
        self.path, self.raw = path, raw
        self.items: list[tuple[int, str]] = []

    def add(self, loc: Sequence[Any], message: str) -> None:
        self.items.append((_line(self.raw, loc), message))

    def raise_if_any(self) -> None:
        if self.items:
            lines = sorted(set(self.items))
            raise PlaybookError("\n".join(f"{self.path}:{line}: {msg}" for line, msg in lines))


def _pydantic_message(error: Mapping[str, Any]) -> str:
    loc = ".".join("with" if p == "with_" else str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "missing (required)"
    return f"{loc}: {message}" if loc else message


def load_playbook(path: Path) -> LoadedPlaybook:
    """The playbook at `path`, checked through; PlaybookError lists every problem with its line."""
    try:
        data = path.read_bytes()
        raw, read_problems = read_pack_file(
            path, kind="playbook", expected="a mapping with id, name, steps"
        )
    except PackFileError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise PlaybookError(f"{where}: {exc.message}") from None
    except OSError as exc:
        raise PlaybookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    problems = _Problems(path, raw)
    for line, message in read_problems:
        problems.items.append((line, message))
    if not isinstance(raw, dict):
        problems.add((), "a playbook is a mapping with id, name, steps")
        problems.raise_if_any()
    try:
        playbook = Playbook.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(error["loc"], _pydantic_message(error))
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    problems.raise_if_any()
    _check(playbook, problems)
    problems.raise_if_any()
    return LoadedPlaybook(path, hashlib.sha256(data).hexdigest(), playbook, raw)


def _check(playbook: Playbook, problems: _Problems) -> None:
    """What a schema cannot say: names that must exist, references that must point backwards."""
    for name, spec in playbook.inputs.items():
        if spec.default is not None:
            try:
                parse_value(name, spec, spec.default)
            except ValueError as exc:
                problems.add(("inputs", name, "default"), str(exc))
    for name, target in playbook.targets.items():
        if name == LOCAL:
            problems.add(
                ("targets", name), f"'{LOCAL}' is the responder's machine; pick another name"
            )
        secret_inputs = {n for n, spec in playbook.inputs.items() if spec.type == "secret"}
        if target.key is not None and target.key not in {*playbook.credentials, *secret_inputs}:
            problems.add(
                ("targets", name, "key"), f"unknown credential or secret input '{target.key}'"
            )
        if target.known_hosts is not None:
            _check_templates(playbook, problems, ("targets", name, "known_hosts"),
                             target.known_hosts, None)  # fmt: skip
        if target.connector == "local" and (target.key or target.known_hosts):
            problems.add(("targets", name), "a local target takes no key or known_hosts")
        _check_templates(playbook, problems, ("targets", name, "address"), target.address, None)
    seen: dict[str, tuple[str, int]] = {}
    main_ids = [s.id for s in playbook.steps]
    for section, index, step in playbook.all_steps():
        at = (section, index)
        if step.id in seen:
            problems.add((*at, "id"), f"duplicate step id '{step.id}'")
        seen[step.id] = (section, index)
        earlier = set(main_ids) if section == "always" else set(main_ids[:index])
        _check_step(playbook, problems, at, step, earlier)


def _check_step(
    playbook: Playbook, problems: _Problems, at: tuple[str, int], step: Step, earlier: set[str]
) -> None:
    if step.target != LOCAL and step.target not in playbook.targets:
        known = ", ".join([LOCAL, *playbook.targets])
        problems.add((*at, "target"), f"unknown target '{step.target}' (known: {known})")
    uses: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [(step.uses, step.with_, (*at,))]
    if isinstance(step.compensate, Compensation):
        uses.append((step.compensate.uses, step.compensate.with_, (*at, "compensate")))
    for name, with_, loc in uses:
        if name not in ACTIONS:
            problems.add(
                (*loc, "uses"), f"unknown action '{name}' (known: {', '.join(sorted(ACTIONS))})"
            )
            continue
        fields = action(name).params.model_fields
        for key in with_:
            if key not in fields and not any(f.alias == key for f in fields.values()):
                problems.add(
                    (*loc, "with", key), f"{name} takes no '{key}' (it takes: {', '.join(fields)})"
                )
        for key, field in fields.items():
            if field.is_required() and key not in with_ and (field.alias or key) not in with_:
                problems.add((*loc, "with"), f"{name} needs '{field.alias or key}'")
        for key, value in with_.items():
            for text in strings_in(value):
                _check_templates(playbook, problems, (*loc, "with", key), text, earlier, step.id)
    if step.when is not None:
        _check_templates(
            playbook, problems, (*at, "when"), step.when, earlier, step.id, expression=True
        )


def _check_templates(
    playbook: Playbook,
    problems: _Problems,
    loc: tuple[Any, ...],
    text: str,
    earlier: set[str] | None,
    step_id: str | None = None,
    *,
    expression: bool = False,
) -> None:
    if not expression and not is_template(text):
        return
    try:
        refs = list(references(text, expression=expression))
    except TemplateSyntaxError as exc:
        problems.add(loc, f"bad template: {exc.message}")
        return
    step_ids = {s.id for _, _, s in playbook.all_steps()}
    for ref in refs:
        if ref.root in _JINJA_NAMES:
            continue
        if ref.root not in ROOTS:
            problems.add(
                loc, f"unknown name '{ref.root}' (templates read {', '.join(sorted(ROOTS))})"
            )
        elif ref.name is None:
            continue
        elif ref.root == "inputs" and ref.name not in playbook.inputs:
            problems.add(loc, f"unknown input '{ref.name}'")
        elif ref.root == "credentials" and ref.name not in playbook.credentials:
            problems.add(loc, f"unknown credential '{ref.name}'")
        elif ref.root == "steps":
            if earlier is None:
                problems.add(loc, "a target's address cannot depend on a step's outputs")
            elif ref.name == step_id:
                problems.add(loc, f"step '{ref.name}' refers to itself (a cycle)")
            elif ref.name not in step_ids:
                problems.add(loc, f"dangling reference: no step '{ref.name}'")
            elif ref.name not in earlier:
                problems.add(
                    loc, f"step '{ref.name}' runs later: a step reads only earlier steps (a cycle)"
                )
