# ruff: noqa: E501 - playbook fragments keep their YAML lines whole
"""A broken playbook fails with file, line and reason before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scanner.respond.errors import PlaybookError
from scanner.respond.schema import load_playbook

pytestmark = pytest.mark.usefixtures("write_action")

GOOD = """\
id: good
version: 1
name: good
inputs:
  host: {type: ip, required: true}
credentials:
  key: file:/etc/posture/key
targets:
  box: {connector: ssh, address: "{{ inputs.host }}", key: key}
steps:
  - id: one
    uses: test.write_file
    target: box
    with: {path: /tmp/x, text: "{{ inputs.host }}"}
  - id: two
    uses: test.write_file
    with: {path: /tmp/y, text: "{{ steps.one.outputs.length }}"}
    when: steps.one.status == 'succeeded'
always:
  - id: last
    uses: test.write_file
    with: {path: /tmp/z, text: "{{ steps.two.status }}"}
"""


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "book.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(PlaybookError) as info:
        load_playbook(path)
    return str(info.value).replace(str(path), "book.yaml")


def test_a_good_playbook_loads(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    loaded = load_playbook(path)
    assert [s.id for s in loaded.playbook.steps] == ["one", "two"]
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("name: good\n", "name: good\n  bad: [\n", "book.yaml:4: bad YAML"),
        ("uses: test.write_file\n    target: box", "uses: host.explode\n    target: box",
         "book.yaml:12: unknown action 'host.explode'"),
        ('text: "{{ inputs.host }}"', 'text: "{{ inputs.hots }}"',
         "book.yaml:14: unknown input 'hots'"),
        ("host: {type: ip, required: true}", "host: {type: ipv9, required: true}",
         "book.yaml:5: inputs.host.type: Input should be"),
        ("    target: box\n", "    target: bx\n", "book.yaml:13: unknown target 'bx'"),
        ("steps.one.outputs.length", "steps.two.outputs.length",
         "book.yaml:17: step 'two' refers to itself (a cycle)"),
        ("    target: box\n    with: {path: /tmp/x, text: \"{{ inputs.host }}\"}",
         "    target: box\n    with: {path: /tmp/x, text: \"{{ steps.two.outputs }}\"}",
         "book.yaml:14: step 'two' runs later"),
        ("steps.two.status", "steps.three.status", "book.yaml:22: dangling reference: no step 'three'"),
        ("{path: /tmp/y,", "{path: /tmp/y, colour: red,", "book.yaml:17: test.write_file takes no 'colour'"),
        ("key: file:/etc/posture/key", "key: hunter2", "credential 'key' must be a reference"),
        ("  - id: two\n", "  - id: one\n", "book.yaml:15: duplicate step id 'one'"),
        ("version: 1\n", "version: 1\nsteps_typo: []\n", "book.yaml:3: steps_typo: unknown key"),
        ("    when: steps.one.status == 'succeeded'", "    when: steps.one.status ==",
         "book.yaml:18: bad template"),
        ("key: key}", "key: nokey}", "book.yaml:9: unknown credential or secret input 'nokey'"),
    ],
)  # fmt: skip
def test_each_problem_names_its_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    message = _load(tmp_path, GOOD.replace(old, new, 1))
    assert expected in message, message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace('inputs.host }}"}', 'inputs.nope }}"}').replace("target: box", "target: q")
    message = _load(tmp_path, text)
    assert "unknown input 'nope'" in message and "unknown target 'q'" in message


def test_anchors_and_huge_files_are_refused(tmp_path: Path) -> None:
    assert "YAML anchor '&a' is not allowed in a playbook" in _load(
        tmp_path, GOOD.replace("name: good", "name: &a good\ndescription: *a")
    )
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (6 * 1024 * 1024))
    with pytest.raises(PlaybookError, match="a playbook may have"):
        load_playbook(big)


def test_a_missing_required_parameter(tmp_path: Path) -> None:
    message = _load(tmp_path, GOOD.replace("{path: /tmp/y, ", "{"))
    assert "book.yaml:17: test.write_file needs 'path'" in message
