"""The `posture` command: a thin Click shell over the library, one module per command group."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from scanner import __version__
from scanner.config import load_config
from scanner.errors import PostureError
from scanner.safetext import for_terminal

# Command name -> (module, attribute). Only the command being run is imported: `posture tls`
# needs neither the store nor the report templates, and Python start-up is most of the wall
# time of a one-endpoint assessment.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "compliance": ("scanner.cli.compliance", "compliance_command"),
    "diff": ("scanner.cli.diff", "diff_command"),
    "findings": ("scanner.cli.findings", "findings_cmd"),
    "job": ("scanner.cli.job", "job_group"),
    "keystore": ("scanner.cli.keystore", "keystore_group"),
    "playbook": ("scanner.cli.playbook", "playbook_group"),
    "report": ("scanner.cli.report", "report_command"),
    "rules": ("scanner.cli.rules", "rules_group"),
    "scan": ("scanner.cli.scan", "scan_command"),
    "scans": ("scanner.cli.findings", "scans_cmd"),
    "sla": ("scanner.cli.sla", "sla_command"),
    "tls": ("scanner.cli.tls", "tls_command"),
    "vulndb": ("scanner.cli.vulndb", "vulndb_group"),
}


class _PostureGroup(click.Group):
    """Loads each command's module on first use, and turns every PostureError into one escaped
    line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PostureError as exc:
            # One escaped line per line of the message (pack and scope errors list several).
            lines = [for_terminal(line, 4000) for line in str(exc).splitlines()[:200]]
            click.echo("posture: error: " + "\n".join(lines), err=True)
            ctx.exit(exc.exit_code)


@click.group(
    cls=_PostureGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="posture")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: ./posture.toml when present).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """posture: scan networks for insecure services, keep findings, report, respond."""
    ctx.obj = load_config(config_path)


def main() -> None:
    """Entry point: `posture` (Click's standalone mode turns usage errors into exit 2)."""
    cli(prog_name="posture")
