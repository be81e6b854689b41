"""The `posture` command: a thin Click shell over the library, one module per command group."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scanner import __version__
from scanner.cli import findings, report, rules, scan
from scanner.config import load_config
from scanner.errors import PostureError
from scanner.safetext import for_terminal


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for _module in (scan, findings, report, rules):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Entry point: every PostureError becomes one line on stderr and its exit code."""
    try:
        cli.main(standalone_mode=False)
    except PostureError as exc:
        click.echo(f"posture: error: {for_terminal(exc, 4000)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("posture: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
