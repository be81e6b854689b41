"""Typed inputs and the sandboxed templating of playbooks."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from scanner.respond.inputs import InputSpec, resolve_inputs, split_assignments
from scanner.respond.templating import (
    SecretInTextError,
    SecretRef,
    condition,
    references,
    render_value,
)


def spec(**kw: object) -> InputSpec:
    return InputSpec.model_validate(kw)


def test_each_kind_is_parsed_and_normalised() -> None:
    specs = {
        "host": spec(type="ip", required=True),
        "net": spec(type="cidr", default="10.1.2.3/24"),
        "name": spec(type="hostname", default="DB-1.Example.org"),
        "port": spec(type="port", default=22),
        "level": spec(type="enum", values=["low", "high"], default="low"),
        "dry": spec(type="bool", default="no"),
        "hosts": spec(type="ip", multiple=True, default="10.0.0.1,10.0.0.2,10.0.0.1"),
        "token": spec(type="secret", default="env:TOKEN"),
    }
    values = resolve_inputs(specs, {"host": ["2001:DB8::1"]})
    assert values["host"] == "2001:db8::1"
    assert values["net"] == "10.1.2.0/24"
    assert values["name"] == "db-1.example.org"
    assert values["port"] == 22 and values["level"] == "low" and values["dry"] is False
    assert values["hosts"] == ["10.0.0.1", "10.0.0.2"]
    assert values["token"] == SecretRef("token", "env:TOKEN")


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("ip", "10.0.0.256", "is not a valid ip"),
        ("port", "0", "is not a valid port"),
        ("hostname", "a b", "is not a valid hostname"),
        ("secret", "hunter2", "never the value itself"),
        ("string", "a\x1b[31m", "no control characters"),
    ],
)
def test_bad_values_are_refused_with_the_input_named(kind: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        resolve_inputs({"x": spec(type=kind)}, {"x": value})
    assert "'x'" in str(info.value)
    if kind == "secret":
        assert "hunter2" not in str(info.value)


def test_missing_and_unknown_inputs_are_all_reported() -> None:
    with pytest.raises(ValueError) as info:
        resolve_inputs({"host": spec(type="ip", required=True)}, {"hots": "1.2.3.4"})
    assert "unknown input 'hots'" in str(info.value)
    assert "input 'host' is required" in str(info.value)


def test_string_pattern_and_enum() -> None:
    specs = {"ticket": spec(type="string", pattern=r"INC-\d+")}
    assert resolve_inputs(specs, {"ticket": "INC-42"}) == {"ticket": "INC-42"}
    with pytest.raises(ValueError, match="does not match"):
        resolve_inputs(specs, {"ticket": "INC-42; rm -rf /"})
    with pytest.raises(ValueError, match="must be one of low, high"):
        resolve_inputs({"l": spec(type="enum", values=["low", "high"])}, {"l": "mid"})


def test_split_assignments() -> None:
    assert split_assignments(["a=1", "b=x=y", "a=2"]) == {"a": ["1", "2"], "b": ["x=y"]}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        split_assignments(["novalue"])


CONTEXT = {
    "inputs": {"host": "10.0.0.5", "hosts": ["10.0.0.1", "10.0.0.2"]},
    "credentials": {"key": SecretRef("key", "file:/etc/posture/key")},
    "steps": {"evidence": {"outputs": {"manifest": "ab12"}, "status": "succeeded"}},
}


def test_one_expression_keeps_its_type_text_renders_to_text() -> None:
    rendered = render_value(
        {"a": "{{ inputs.hosts }}", "b": "host {{ inputs.host }}", "c": ["{{ credentials.key }}"]},
        CONTEXT,
    )
    assert rendered == {
        "a": ["10.0.0.1", "10.0.0.2"],
        "b": "host 10.0.0.5",
        "c": [SecretRef("key", "file:/etc/posture/key")],
    }


def test_a_secret_cannot_be_embedded_in_text() -> None:
    with pytest.raises(SecretInTextError, match="'key' cannot be embedded in text"):
        render_value("Bearer {{ credentials.key }}", CONTEXT)


def test_undefined_names_fail_instead_of_rendering_empty() -> None:
    with pytest.raises(UndefinedError):
        render_value("{{ inputs.nope }}", CONTEXT)


def test_the_sandbox_refuses_attribute_escapes() -> None:
    with pytest.raises(SecurityError):
        render_value("{{ inputs.__class__.__mro__[1].__subclasses__() }}", CONTEXT)


def test_conditions_with_or_without_braces() -> None:
    assert condition("steps.evidence.status == 'succeeded'", CONTEXT)
    assert not condition("{{ inputs.hosts | length > 2 }}", CONTEXT)


def test_references_are_found() -> None:
    refs = {(r.root, r.name) for r in references("{{ inputs.host }} {{ steps['ev'].outputs }}")}
    assert ("inputs", "host") in refs and ("steps", "ev") in refs
