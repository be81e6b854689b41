"""posture's encrypted keystore: the secrets a run mints (new private keys, new passwords), and
any a responder puts there, each encrypted with AES-256-GCM under a master key that never
touches the disk in clear.

Versions of a secret go through states: `pending` (put by a rotation before it is proven),
`current` (confirmed), `previous` (the current one before the last confirmation: kept until
the next one, so a rotation can be rolled back), after which older versions are deleted. `get`
returns the current version, or the newest pending one when there is no current yet.

The master key: $POSTURE_KEYSTORE_KEY (64 hex digits or base64 of 32 bytes), else the file
$POSTURE_KEYSTORE_KEY_FILE (mode 0600 or stricter). The keystore file: $POSTURE_KEYSTORE, else
$XDG_DATA_HOME/posture/keystore.sqlite (~/.local/share). Each ciphertext is bound by GCM's
associated data to its name and version, so a row copied onto another name fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scanner.respond.errors import KeystoreError
from scanner.respond.secrets import Secret

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
  name TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, created TEXT NOT NULL,
  nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, PRIMARY KEY (name, version)
);
"""
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")


def default_path() -> Path:
    if os.environ.get("POSTURE_KEYSTORE"):
        return Path(os.environ["POSTURE_KEYSTORE"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "posture" / "keystore.sqlite"


def parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = binascii.unhexlify(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise KeystoreError(
            f"{where}: a keystore key is 32 random bytes, as 64 hex digits or base64 "
            "(make one: python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def key_from_environment() -> bytes:
    if os.environ.get("POSTURE_KEYSTORE_KEY"):
        return parse_key(os.environ["POSTURE_KEYSTORE_KEY"], "$POSTURE_KEYSTORE_KEY")
    path = os.environ.get("POSTURE_KEYSTORE_KEY_FILE")
    if path:
        try:
            info = os.stat(path)
            if info.st_mode & 0o077:
                raise KeystoreError(
                    f"{path}: the keystore key file is readable by others: chmod 600"
                )
            return parse_key(Path(path).read_text(encoding="utf-8"), path)
        except OSError as exc:
            raise KeystoreError(f"{path}: cannot read the keystore key: {exc.strerror}") from None
    raise KeystoreError(
        "no keystore key: set POSTURE_KEYSTORE_KEY (64 hex digits) or POSTURE_KEYSTORE_KEY_FILE"
    )


def _check_value(key: bytes) -> str:
    """Tells a wrong key from a damaged secret, without revealing anything about the key."""
    return hmac.new(key, b"posture keystore key check", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    state: str
    created: str


class Keystore:
    def __init__(self, path: Path, key: bytes) -> None:
        self.path, self._key = path, key
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not path.exists()
        if fresh:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('check', ?)", (_check_value(key),))
        elif not hmac.compare_digest(row[0], _check_value(key)):
            self._db.close()
            raise KeystoreError(f"{path}: this is not the key the keystore was made with")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _aad(name: str, version: int) -> bytes:
        return f"posture-keystore:{name}:{version}".encode()

    def put(self, name: str, value: Secret, *, state: str = "pending") -> str:
        """A new version of `name` (pending until confirmed); returns `keystore:NAME@VERSION`."""
        if not name or len(name) > 128 or not set(name) <= NAME_CHARS:
            raise KeystoreError(f"not a keystore name: {name[:60]!r} (letters, digits, _.-@)")
        nonce = os.urandom(12)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM secrets WHERE name = ?", (name,)
            ).fetchone()
            version = int(row[0]) + 1
            sealed = AESGCM(self._key).encrypt(
                nonce, value.reveal().encode(), self._aad(name, version)
            )
            self._db.execute(
                "INSERT INTO secrets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    version,
                    state,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    nonce,
                    sealed,
                ),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return f"keystore:{name}@{version}"

    def get(self, name: str, version: int | None = None) -> Secret:
        if version is None:
            row = self._db.execute(
                "SELECT version, nonce, ciphertext FROM secrets WHERE name = ? ORDER BY "
                "state = 'current' DESC, state = 'pending' DESC, version DESC LIMIT 1",
                (name,),
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT version, nonce, ciphertext FROM secrets WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        if row is None:
            at = f"@{version}" if version is not None else ""
            raise KeystoreError(f"the keystore has no secret {name}{at}")
        try:
            plain = AESGCM(self._key).decrypt(row[1], row[2], self._aad(name, int(row[0])))
        except InvalidTag:
            raise KeystoreError(
                f"keystore secret {name}@{row[0]} is damaged or was tampered with"
            ) from None
        return Secret(f"keystore:{name}@{row[0]}", plain.decode())

    def confirm(self, name: str, version: int | None = None) -> int:
        """Makes `version` (default: the newest pending) current; the current one becomes
        previous, older previous versions are deleted. Returns the confirmed version."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if version is None:
                row = self._db.execute(
                    "SELECT MAX(version) FROM secrets WHERE name = ? AND state = 'pending'", (name,)
                ).fetchone()
                if row is None or row[0] is None:
                    raise KeystoreError(f"{name} has no pending version to confirm")
                version = int(row[0])
            self._db.execute("DELETE FROM secrets WHERE name = ? AND state = 'previous'", (name,))
            self._db.execute(
                "UPDATE secrets SET state = 'previous' WHERE name = ? AND state = 'current'",
                (name,),
            )
            changed = self._db.execute(
                "UPDATE secrets SET state = 'current' WHERE name = ? AND version = ?",
                (name, version),
            ).rowcount
            if not changed:
                raise KeystoreError(f"the keystore has no secret {name}@{version}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return version

    def discard(self, name: str, version: int) -> None:
        """Drops an unconfirmed version (a rotation that was rolled back)."""
        self._db.execute(
            "DELETE FROM secrets WHERE name = ? AND version = ? AND state = 'pending'",
            (name, version),
        )

    def entries(self) -> list[Entry]:
        rows = self._db.execute(
            "SELECT name, version, state, created FROM secrets ORDER BY name, version"
        )
        return [Entry(*row) for row in rows]

    def rotate_key(self, new_key: bytes) -> int:
        """Re-encrypts every secret under `new_key` in one transaction; the old key no longer
        opens the keystore. Returns how many versions were re-encrypted."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute(
                "SELECT name, version, nonce, ciphertext FROM secrets"
            ).fetchall()
            for name, version, nonce, sealed in rows:
                aad = self._aad(name, int(version))
                try:
                    plain = AESGCM(self._key).decrypt(nonce, sealed, aad)
                except InvalidTag:
                    raise KeystoreError(f"keystore secret {name}@{version} is damaged") from None
                fresh = os.urandom(12)
                self._db.execute(
                    "UPDATE secrets SET nonce = ?, ciphertext = ? WHERE name = ? AND version = ?",
                    (fresh, AESGCM(new_key).encrypt(fresh, plain, aad), name, version),
                )
            self._db.execute(
                "UPDATE meta SET value = ? WHERE name = 'check'", (_check_value(new_key),)
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._key = new_key
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("VACUUM")  # the old ciphertexts leave the file's free pages
        return len(rows)


def default_keystore() -> Keystore:
    return Keystore(default_path(), key_from_environment())
