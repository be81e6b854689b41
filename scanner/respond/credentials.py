"""Credential references resolved into `Secret` values: `env:NAME`, `file:/PATH` (a regular file
only its owner can read) and `keystore:NAME[@VERSION]`. No error message ever holds a value."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scanner.respond.errors import KeystoreError
from scanner.respond.secrets import Secret

MAX_FILE = 64 * 1024
FORMS = "env:NAME, file:/PATH or keystore:NAME"


def resolve(ref: str) -> Secret:
    kind, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise KeystoreError(f"{ref[:40]!r} is not a credential reference ({FORMS})")
    if kind == "env":
        value = os.environ.get(rest)
        if value is None or value == "":
            raise KeystoreError(f"credential {ref}: the environment variable {rest} is not set")
        return Secret(ref, value)
    if kind == "file":
        return Secret(ref, _read_private(Path(rest)))
    if kind == "keystore":
        from scanner.respond.keystore import default_keystore

        name, _, version = rest.partition("@")
        if version and not version.isdigit():
            raise KeystoreError(f"credential {ref[:60]}: the version after @ is a number")
        with default_keystore() as store:
            return store.get(name, int(version) if version else None)
    raise KeystoreError(f"credential {ref[:40]!r}: unknown kind {kind!r} ({FORMS})")


def _read_private(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeystoreError(f"credential file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreError(f"credential file {path} is not a regular file")
        if info.st_uid not in (os.getuid(), 0):
            raise KeystoreError(
                f"credential file {path} belongs to another user (uid {info.st_uid})"
            )
        if info.st_mode & 0o077:
            raise KeystoreError(
                f"credential file {path} can be read by others (mode {info.st_mode & 0o777:o}): "
                f"chmod 600 {path}"
            )
        data = handle.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise KeystoreError(f"credential file {path} is larger than {MAX_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(f"credential file {path} is not UTF-8 text") from None
    return text.rstrip("\n") if not text.startswith("-----BEGIN") else text
