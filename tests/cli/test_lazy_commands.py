"""The lazily loaded command table matches what the command modules export."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from scanner.cli import LAZY_COMMANDS, cli


def test_every_exported_command_is_in_the_lazy_table() -> None:
    modules = {module for module, _ in LAZY_COMMANDS.values()}
    exported = {
        command.name: (module, command)
        for module in modules
        for command in importlib.import_module(module).COMMANDS
    }
    assert set(exported) == set(LAZY_COMMANDS)
    context = click.Context(cli)
    for name, (module, command) in exported.items():
        assert LAZY_COMMANDS[name][0] == module
        assert cli.get_command(context, name) is command


def test_posture_tls_does_not_import_the_store_or_the_reports() -> None:
    code = (
        "import sys\n"
        "from scanner.cli import cli\n"
        "cli.get_command(__import__('click').Context(cli), 'tls')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scanner.store', 'scanner.report',"
        " 'jinja2', 'sqlite_utils'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
