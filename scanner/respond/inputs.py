"""Typed playbook inputs: the declared kinds (ip, cidr, hostname, port, string, enum, int, bool,
secret) and the parsing of `--input NAME=VALUE` against them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scanner.respond.templating import SecretRef

InputKind = Literal["ip", "cidr", "hostname", "port", "string", "enum", "int", "bool", "secret"]
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)
SECRET_REF = re.compile(
    r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/.{1,4095}|keystore:[A-Za-z0-9_.@-]{1,128})$"
)
MAX_STRING = 4096
MAX_ITEMS = 4096


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: InputKind
    description: str = ""
    required: bool = False
    default: Any = None
    pattern: str | None = None
    values: tuple[str, ...] | None = None  # enum
    multiple: bool = False  # a list of values (comma-separated or --input repeated)
    min_items: int = Field(default=0, ge=0)
    max_items: int = Field(default=MAX_ITEMS, ge=1, le=MAX_ITEMS)

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum input lists its 'values'")
        if self.type != "enum" and self.values is not None:
            raise ValueError("'values' belongs to enum inputs")
        if self.pattern is not None:
            if self.type != "string":
                raise ValueError("'pattern' belongs to string inputs")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from None
        if self.required and self.default is not None:
            raise ValueError("a required input has no default")
        if self.type == "secret" and self.default is not None and not isinstance(self.default, str):
            raise ValueError("a secret's default is a reference such as env:NAME")
        return self


def parse_one(name: str, spec: InputSpec, text: Any) -> Any:
    """One value of input `name` as its kind (ValueError with a message naming the input)."""
    kind = spec.type
    if kind == "secret":
        if isinstance(text, SecretRef):  # already parsed (a resumed run's journaled inputs)
            return SecretRef(name, text.ref)
        if not isinstance(text, str) or not SECRET_REF.match(text):
            raise ValueError(
                f"input '{name}' is a secret: give a reference (env:NAME, file:/PATH or "
                "keystore:NAME), never the value itself"
            )
        return SecretRef(name, text)
    if isinstance(text, bool) and kind == "bool":
        return text
    if isinstance(text, int) and not isinstance(text, bool) and kind in ("int", "port"):
        value: Any = text
    else:
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise ValueError(f"input '{name}' must be a {kind}, not {type(text).__name__}")
        value = str(text).strip()
    try:
        if kind in ("ip", "cidr"):
            try:
                if kind == "ip":
                    return str(ipaddress.ip_address(value))
                return str(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ValueError() from None
        if kind == "hostname":
            if not _HOSTNAME.match(value):
                raise ValueError
            return value.lower()
        if kind in ("port", "int"):
            number = int(value)
            if kind == "port" and not 1 <= number <= 65535:
                raise ValueError
            return number
        if kind == "bool":
            lowered = value.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if kind == "enum":
            assert spec.values is not None
            if value not in spec.values:
                raise ValueError(f"input '{name}' must be one of {', '.join(spec.values)}")
            return value
    except ValueError as exc:
        if str(exc):
            raise
        raise ValueError(f"input '{name}': {str(text)[:80]!r} is not a valid {kind}") from None
    # string
    if len(value) > MAX_STRING or any(ord(c) < 32 and c not in "\t" for c in value):
        raise ValueError(f"input '{name}': at most {MAX_STRING} characters, no control characters")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueError(f"input '{name}': {value[:80]!r} does not match {spec.pattern}")
    return value


def parse_value(name: str, spec: InputSpec, raw: Any) -> Any:
    if not spec.multiple:
        if isinstance(raw, list):
            if len(raw) != 1:
                raise ValueError(f"input '{name}' takes one value")
            raw = raw[0]
        return parse_one(name, spec, raw)
    items: list[Any] = []
    for part in raw if isinstance(raw, list) else [raw]:
        pieces = [p for p in str(part).split(",") if p.strip()] if isinstance(part, str) else [part]
        items.extend(parse_one(name, spec, p) for p in pieces)
    unique = list(dict.fromkeys(items))
    if not spec.min_items <= len(unique) <= spec.max_items:
        raise ValueError(
            f"input '{name}' takes {spec.min_items} to {spec.max_items} values, not {len(unique)}"
        )
    return unique


def split_assignments(pairs: Iterable[str]) -> dict[str, list[str]]:
    """`--input k=v` options as name -> values (a repeated name collects its values)."""
    values: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--input takes NAME=VALUE, not {pair[:80]!r}")
        values.setdefault(name.strip(), []).append(value)
    return values


def resolve_inputs(specs: Mapping[str, InputSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared input as its typed value: given, else its default; unknown or missing
    required inputs are errors, all reported at once."""
    problems = [
        f"unknown input '{n}' (declared: {', '.join(specs) or 'none'})"
        for n in given
        if n not in specs
    ]
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in given:
            raw = given[name]
        elif spec.default is not None:
            raw = spec.default
        elif spec.required:
            about = f": {spec.description}" if spec.description else ""
            problems.append(f"input '{name}' is required ({spec.type}{about})")
            continue
        else:
            values[name] = [] if spec.multiple else None
            continue
        try:
            values[name] = parse_value(name, spec, raw)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return values


def shown(value: Any) -> Any:
    """An input value as plans, journals and audit entries show it (secrets as references)."""
    if isinstance(value, SecretRef):
        return value.shown()
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value
