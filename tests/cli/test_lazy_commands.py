"""The lazily loaded command table matches what the command modules export."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click

from scanner.cli import LAZY_COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]


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


def test_posture_tls_skips_builtin_packs_without_tls_rules(tmp_path: Path) -> None:
    from scanner.cli.common import load_ruleset
    from scanner.config import Config

    extra = tmp_path / "site.yaml"
    extra.write_text((ROOT / "tests" / "rules" / "data" / "good.yaml").read_text())
    context = click.Context(cli, obj=Config())
    everything = load_ruleset(context, (extra,))
    tls_only = load_ruleset(context, (extra,), builtin_namespace="tls")
    packs = {label.split("@")[0] for label in tls_only.pack_labels()}
    assert "baseline" in {label.split("@")[0] for label in everything.pack_labels()}
    assert "baseline" not in packs and "tls" in packs
    assert len(packs) == 2  # the site's pack is still loaded (and so validated)
    tls_rules = {r.id for r in everything.rules if r.id.startswith("tls.")}
    assert {r.id for r in tls_only.rules if r.id.startswith("tls.")} == tls_rules
