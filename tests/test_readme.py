"""The README keeps pace with the CLI: every command is shown, and it opens with the two
set-up commands."""

from __future__ import annotations

from pathlib import Path

import click

from scanner.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _command_paths(group: click.Group, prefix: str = "posture") -> list[str]:
    paths = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, path))
    return paths


def test_readme_opens_with_make_demo_and_make_test() -> None:
    head = README.split("```", 2)[1]
    assert "make demo" in head and "make test" in head


def test_every_command_is_in_the_readme() -> None:
    missing = [path for path in _command_paths(cli) if path not in README]
    assert not missing, f"README does not show: {missing}"
