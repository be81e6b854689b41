"""Credential references resolved into `Secret` values: `env:NAME`, `file:/PATH` (a regular file
only its owner can read) and `keystore:NAME[@VERSION]`. No error message ever holds a value."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from scanner.respond.errors import KeystoreError
from scanner.respond.secrets import Secret

MAX_FILE = 64 * 1024
FORMS = "env:NAME, file:/PATH or keystore:NAME[@VERSION]"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KIND = re.compile(r"[a-z]{1,16}")


def resolve(ref: str) -> Secret:
    kind, sep, rest = ref.partition(":")
    if not sep or not _KIND.fullmatch(kind):
        # Not echoed: text that is no reference may well be the password itself.
        raise KeystoreError(
            f"a credential must be a reference ({FORMS}), not a value ({len(ref)} characters given)"
        )
    if kind == "env":
        if not _ENV_NAME.fullmatch(rest):
            raise KeystoreError(f"credential env:…: {FORMS}, where NAME is a variable name")
        value = os.environ.get(rest)
        if not value:
            raise KeystoreError(f"credential {ref}: the environment variable {rest} is not set")
        return Secret(ref, value)
    if kind == "file":
        if not rest:
            raise KeystoreError(f"credential file: needs a path ({FORMS})")
        return Secret(ref, _strip_newline(read_private_file(Path(rest), "credential file")))
    if kind == "keystore":
        from scanner.respond.keystore import check_name, default_keystore

        name, _, version = rest.partition("@")
        check_name(name)
        if version and not (version.isdigit() and len(version) < 10):
            raise KeystoreError(f"credential keystore:{name}@…: the version after @ is a number")
        with default_keystore() as store:
            return store.get(name, int(version) if version else None)
    raise KeystoreError(f"credential {kind}:…: unknown kind {kind!r} ({FORMS})")


def read_private_file(path: Path, what: str) -> str:
    """The UTF-8 text of a small regular file that only its owner (us or root) can read; checked
    on the open descriptor, so the file cannot be swapped between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeystoreError(
                f"{what} {path} is a symbolic link: give the path of the file itself"
            ) from None
        raise KeystoreError(f"{what} {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise KeystoreError(f"{what} {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_uid not in (os.getuid(), 0):
            raise KeystoreError(
                f"{what} {path} belongs to another user (uid {info.st_uid}): "
                f"chown it to uid {os.getuid()}"
            )
        if info.st_mode & 0o077:
            raise KeystoreError(
                f"{what} {path} can be read by others (mode {info.st_mode & 0o777:o}): "
                f"chmod 600 {path}"
            )
        data = handle.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise KeystoreError(f"{what} {path} is larger than {MAX_FILE} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(f"{what} {path} is not UTF-8 text") from None


def _strip_newline(text: str) -> str:
    # A PEM key keeps its final newline: OpenSSH refuses a private key file without one.
    return text if text.startswith("-----BEGIN") else text.rstrip("\r\n")
