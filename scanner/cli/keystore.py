"""`posture keystore init|list|get|put|confirm|discard|rotate-key`: the encrypted store of the
secrets playbooks mint (new keys and passwords) and use."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scanner.cli.common import json_option
from scanner.errors import ConfigError

if TYPE_CHECKING:
    from scanner.respond.keystore import Keystore

MAX_SECRET = 1024 * 1024


def _open(path: Path | None) -> Keystore:
    from scanner.respond.keystore import Keystore, default_path, key_from_environment

    return Keystore(path or default_path(), key_from_environment())


_PATH = click.option(
    "--keystore", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Keystore file [default: $POSTURE_KEYSTORE, else ~/.local/share/posture/keystore.sqlite].",
)  # fmt: skip


@click.group("keystore")
def keystore_group() -> None:
    """The encrypted keystore (AES-256-GCM). Its key: $POSTURE_KEYSTORE_KEY (64 hex digits), or
    else the file named by $POSTURE_KEYSTORE_KEY_FILE (mode 0600)."""


@keystore_group.command("init")
@_PATH
def init_command(path: Path | None) -> None:
    """Create the keystore (or check that the key opens an existing one)."""
    with _open(path) as store:
        click.echo(f"keystore {store.path}: ready ({len(store.entries())} secret versions)")


@keystore_group.command("list")
@_PATH
@json_option
def list_command(path: Path | None, as_json: bool) -> None:
    """Names, versions, states (pending, current, previous) and dates; never values."""
    with _open(path) as store:
        entries = store.entries()
        where = store.path
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"no secrets in {where}")
    for e in entries:
        click.echo(f"{e.name:<40} v{e.version:<4} {e.state:<9} {e.created}")


@keystore_group.command("get")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None,
              help="A version, whatever its state [the current one].")  # fmt: skip
@click.option("--reveal", is_flag=True, help="Print the value (otherwise only its reference).")
@_PATH
def get_command(name: str, version: int | None, reveal: bool, path: Path | None) -> None:
    """A secret's reference, or with --reveal its value on stdout (exactly the value when piped,
    e.g. into a key file; with a final newline at a terminal)."""
    with _open(path) as store:
        secret = store.get(name, version)
    if not reveal:
        click.echo(f"{secret.name} (add --reveal to print the value)")
        return
    sys.stdout.write(secret.reveal())
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    sys.stdout.flush()


@keystore_group.command("put")
@click.argument("name")
@click.option("--pending", is_flag=True,
              help="Store it as pending (confirm it once proven) instead of current.")  # fmt: skip
@_PATH
def put_command(name: str, pending: bool, path: Path | None) -> None:
    """Store a new version of NAME: typed at a hidden prompt, or piped on stdin (never on the
    command line). It becomes current and the current one is kept as previous."""
    from scanner.respond.keystore import check_name
    from scanner.respond.secrets import Secret

    check_name(name)
    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read(MAX_SECRET + 1)
        if len(value) > MAX_SECRET:
            raise ConfigError(f"a keystore secret is at most {MAX_SECRET} bytes")
        value = value if value.startswith("-----BEGIN") else value.rstrip("\r\n")
    if not value:
        raise ConfigError("no value: pipe the secret in (posture keystore put NAME < FILE)")
    with _open(path) as store:
        ref = store.put(name, Secret(name, value), state="pending" if pending else "current")
    click.echo(f"stored {ref} ({'pending' if pending else 'current'})")


@keystore_group.command("confirm")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None,
              help="A version [the newest pending].")  # fmt: skip
@_PATH
def confirm_command(name: str, version: int | None, path: Path | None) -> None:
    """Make a pending version current (the current one is kept as previous)."""
    with _open(path) as store:
        confirmed = store.confirm(name, version)
    click.echo(f"{name}@{confirmed}: current")


@keystore_group.command("discard")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@_PATH
def discard_command(name: str, version: int, path: Path | None) -> None:
    """Undo a rotation: delete a pending version, or the current one (the previous one becomes
    current again)."""
    with _open(path) as store:
        state = store.discard(name, version)
        current = [e.version for e in store.entries() if e.name == name and e.state == "current"]
    if state is None:
        click.echo(f"{name}@{version}: not in the keystore (already discarded?)")
        return
    now = f"current is now {name}@{current[0]}" if current else f"{name} has no current version"
    click.echo(f"{name}@{version} ({state}) discarded; {now}")


@keystore_group.command("rotate-key")
@click.option("--new-key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The new key, in a 0600 file [default: $POSTURE_KEYSTORE_NEW_KEY].")  # fmt: skip
@_PATH
def rotate_key_command(new_key_file: Path | None, path: Path | None) -> None:
    """Re-encrypt every secret under a new master key, in one transaction; the old key is
    refused afterwards."""
    from scanner.respond.credentials import read_private_file
    from scanner.respond.keystore import parse_key

    if new_key_file is not None:
        new = parse_key(read_private_file(new_key_file, "new key file"), str(new_key_file))
    elif os.environ.get("POSTURE_KEYSTORE_NEW_KEY"):
        new = parse_key(os.environ["POSTURE_KEYSTORE_NEW_KEY"], "$POSTURE_KEYSTORE_NEW_KEY")
    else:
        raise ConfigError("give the new key: --new-key-file FILE or $POSTURE_KEYSTORE_NEW_KEY")
    with _open(path) as store:
        count = store.rotate_key(new)
    click.echo(
        f"re-encrypted {count} secret versions; from now on set the new key in "
        "POSTURE_KEYSTORE_KEY or POSTURE_KEYSTORE_KEY_FILE"
    )


COMMANDS: list[click.Command] = [keystore_group]
