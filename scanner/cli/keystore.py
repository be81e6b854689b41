"""`posture keystore init|list|get|put|confirm|rotate-key`: the encrypted store of the secrets
playbooks mint (new keys and passwords) and use."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scanner.errors import ConfigError

if TYPE_CHECKING:
    from scanner.respond.keystore import Keystore


def _open(path: Path | None) -> Keystore:
    from scanner.respond.keystore import Keystore, default_path, key_from_environment

    return Keystore(path or default_path(), key_from_environment())


_PATH = click.option(
    "--keystore", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Keystore file [default: $POSTURE_KEYSTORE, else ~/.local/share/posture/keystore.sqlite].",
)  # fmt: skip


@click.group("keystore")
def keystore_group() -> None:
    """The encrypted keystore (AES-256-GCM; key from $POSTURE_KEYSTORE_KEY or a 0600
    $POSTURE_KEYSTORE_KEY_FILE)."""


@keystore_group.command("init")
@_PATH
def init_command(path: Path | None) -> None:
    """Create the keystore (or check that the key opens an existing one)."""
    with _open(path) as store:
        click.echo(f"keystore {store.path}: ready ({len(store.entries())} secret versions)")


@keystore_group.command("list")
@_PATH
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(path: Path | None, as_json: bool) -> None:
    """Names, versions, states (pending, current, previous) and dates; never values."""
    with _open(path) as store:
        entries = store.entries()
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in entries], indent=2))
        return
    for e in entries:
        click.echo(f"{e.name:<32} v{e.version:<4} {e.state:<9} {e.created}")


@keystore_group.command("get")
@click.argument("name")
@click.option("--version", type=int, default=None, help="A version [current].")
@click.option("--reveal", is_flag=True, help="Print the value (otherwise only its reference).")
@_PATH
def get_command(name: str, version: int | None, reveal: bool, path: Path | None) -> None:
    """A secret: its reference, or with --reveal its value on stdout."""
    with _open(path) as store:
        secret = store.get(name, version)
    if not reveal:
        click.echo(f"{secret!r} (add --reveal to print the value)")
        return
    sys.stdout.write(secret.reveal())
    if sys.stdout.isatty():
        sys.stdout.write("\n")


@keystore_group.command("put")
@click.argument("name")
@_PATH
def put_command(name: str, path: Path | None) -> None:
    """Store a new version of NAME, read from stdin (never from the command line), as current."""
    from scanner.respond.secrets import Secret

    value = sys.stdin.read(1024 * 1024 + 1)
    if len(value) > 1024 * 1024:
        raise ConfigError("a secret is at most 1 MiB")
    value = value.removesuffix("\n")
    if not value:
        raise ConfigError("nothing on stdin: pipe the secret in (e.g. < file)")
    with _open(path) as store:
        ref = store.put(name, Secret(name, value))
        store.confirm(name, int(ref.rsplit("@", 1)[1]))
    click.echo(f"stored {ref}")


@keystore_group.command("confirm")
@click.argument("name")
@click.option("--version", type=int, default=None, help="A version [the newest pending].")
@_PATH
def confirm_command(name: str, version: int | None, path: Path | None) -> None:
    """Make a pending version current (the current one is kept as previous)."""
    with _open(path) as store:
        confirmed = store.confirm(name, version)
    click.echo(f"{name}@{confirmed}: current")


@keystore_group.command("rotate-key")
@click.option("--new-key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The new key (0600) [default: $POSTURE_KEYSTORE_NEW_KEY].")  # fmt: skip
@_PATH
def rotate_key_command(new_key_file: Path | None, path: Path | None) -> None:
    """Re-encrypt every secret under a new master key, in one transaction."""
    from scanner.respond.keystore import parse_key

    if new_key_file is not None:
        if new_key_file.stat().st_mode & 0o077:
            raise ConfigError(f"{new_key_file}: the new key file is readable by others: chmod 600")
        new = parse_key(new_key_file.read_text(encoding="utf-8"), str(new_key_file))
    elif os.environ.get("POSTURE_KEYSTORE_NEW_KEY"):
        new = parse_key(os.environ["POSTURE_KEYSTORE_NEW_KEY"], "$POSTURE_KEYSTORE_NEW_KEY")
    else:
        raise ConfigError("give the new key: --new-key-file FILE or $POSTURE_KEYSTORE_NEW_KEY")
    with _open(path) as store:
        count = store.rotate_key(new)
    click.echo(f"re-encrypted {count} secret versions; use the new key from now on")


COMMANDS: list[click.Command] = [keystore_group]
