"""Playbook templating: Jinja2's sandbox over inputs, credentials (as references) and earlier
steps' outputs.

A value that is one expression (`"{{ inputs.hosts }}"`) keeps its type (a list stays a list, a
credential stays a reference); any other template renders to text. A secret can be passed only
as a whole value: embedding one in text (`"token={{ credentials.api }}"`) is an error, so a
secret never lands in a string that could be logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.S)
MAX_RENDERED = 64 * 1024  # characters of one rendered string


class SecretInTextError(TemplateError):
    pass


@dataclass(frozen=True)
class SecretRef:
    """A credential as templates see it: its name and reference (`env:PG_ADMIN`), never a value."""

    name: str
    ref: str

    def __str__(self) -> str:
        raise SecretInTextError(
            f"the secret '{self.name}' cannot be embedded in text: pass it as a whole value "
            f"('{{{{ credentials.{self.name} }}}}')"
        )

    def shown(self) -> str:
        return f"<secret {self.name}: {self.ref}>"


ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def expression_of(text: str) -> str | None:
    """The expression inside a value that is exactly one `{{ ... }}`, else None."""
    match = _ONE_EXPRESSION.match(text)
    if match and "{{" not in match["expr"] and "}}" not in match["expr"]:
        return match["expr"].strip()
    return None


def render_text(text: str, context: Mapping[str, Any]) -> Any:
    """One string of a playbook rendered against `context` (TemplateError when it cannot be)."""
    if not is_template(text):
        return text
    expr = expression_of(text)
    if expr is not None:
        return _defined(ENV.compile_expression(expr, undefined_to_none=False)(**context))
    rendered = ENV.from_string(text).render(**context)
    if len(rendered) > MAX_RENDERED:
        raise TemplateError(f"renders to {len(rendered)} characters; the limit is {MAX_RENDERED}")
    return rendered


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Strings rendered, mappings and lists walked; everything else as it is."""
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def condition(text: str, context: Mapping[str, Any]) -> bool:
    """A `when:` (an expression, with or without its `{{ }}`) as a truth value."""
    expr = expression_of(text) or text
    return bool(_defined(ENV.compile_expression(expr, undefined_to_none=False)(**context)))


def _defined(value: Any) -> Any:
    """An expression's value; an undefined one raises (StrictUndefined only raises when used)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


@dataclass(frozen=True)
class Reference:
    root: str  # inputs, credentials, steps, target, run
    name: str | None  # the attribute right after the root, when written as one


def references(text: str, *, expression: bool = False) -> Iterator[Reference]:
    """Every `root.name` (or `root['name']`) a template reads; TemplateSyntaxError if it is bad."""
    source = "{{ " + (expression_of(text) or text) + " }}" if expression else text
    for node in ENV.parse(source).find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            yield Reference(node.node.name, node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            yield Reference(node.node.name, node.arg.value)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            yield Reference(node.name, None)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
