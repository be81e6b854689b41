"""The `posture` command: a thin Click shell over the library, one module per command group."""

from __future__ import annotations

from pathlib import Path

import click

from scanner import __version__
from scanner.cli import findings, report, rules, scan, tls
from scanner.config import load_config
from scanner.errors import PostureError
from scanner.safetext import for_terminal


class _PostureGroup(click.Group):
    """Turns every PostureError into one escaped line on stderr and its exit code."""

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


for _module in (scan, tls, findings, report, rules):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Entry point: `posture` (Click's standalone mode turns usage errors into exit 2)."""
    cli(prog_name="posture")
