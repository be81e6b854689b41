"""posture's encrypted keystore: the secrets a run mints (new private keys, new passwords), and
any a responder puts there, each encrypted with AES-256-GCM under a master key that never
touches the disk in clear.

States of a secret's versions (at most one `current` and one `previous` per name):
- `pending`: put by a rotation before the new credential is proven; `get` does not return it
  while a current version exists (ask for its version explicitly).
- `current`: confirmed. `confirm` makes a pending version current; the version that was current
  becomes `previous`, and the version that was previous is deleted.
- `previous`: kept for one more rotation, so a rotation undone after its confirmation can put it
  back: `discard` of the current version deletes it and makes `previous` current again.
`discard` of a pending version deletes it (a rotation rolled back before it was confirmed).
Both are idempotent (a resumed run may repeat them). `get` without a version returns the current
version, else the newest one.

The master key: $POSTURE_KEYSTORE_KEY (64 hex digits or base64 of 32 bytes) wins; else the file
named by $POSTURE_KEYSTORE_KEY_FILE (regular, ours, mode 0600 or stricter). The keystore file:
$POSTURE_KEYSTORE, else $XDG_DATA_HOME/posture/keystore.sqlite (~/.local/share), mode 0600.

AES-GCM rather than Fernet: its associated data binds each ciphertext to its name and version,
so a row copied onto another name or version fails to decrypt. A key check value (an HMAC of a
constant under the key) tells a wrong key from a damaged row, so neither ends in a bare
InvalidTag. Deleted rows are zeroed in the file (secure_delete).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scanner.respond.errors import KeystoreError
from scanner.respond.secrets import Secret

FORMAT = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
  name TEXT NOT NULL, version INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'current', 'previous')),
  created TEXT NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS issued (name TEXT PRIMARY KEY, last INTEGER NOT NULL);
"""
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_NAME = 128
MAX_VALUE = 1024 * 1024


def default_path() -> Path:
    if os.environ.get("POSTURE_KEYSTORE"):
        return Path(os.environ["POSTURE_KEYSTORE"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "posture" / "keystore.sqlite"


def check_name(name: str) -> str:
    # No '@': it separates the name from the version in `keystore:NAME@VERSION`.
    if not name or len(name) > MAX_NAME or not set(name) <= NAME_CHARS:
        raise KeystoreError(
            f"not a keystore name: {name[:60]!r} (1 to {MAX_NAME} letters, digits, '_', '.', '-')"
        )
    return name


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
    """$POSTURE_KEYSTORE_KEY if set, else the file $POSTURE_KEYSTORE_KEY_FILE."""
    from scanner.respond.credentials import read_private_file

    if os.environ.get("POSTURE_KEYSTORE_KEY"):
        return parse_key(os.environ["POSTURE_KEYSTORE_KEY"], "$POSTURE_KEYSTORE_KEY")
    path = os.environ.get("POSTURE_KEYSTORE_KEY_FILE")
    if path:
        return parse_key(read_private_file(Path(path), "keystore key file"), path)
    raise KeystoreError(
        "no keystore key: set POSTURE_KEYSTORE_KEY (64 hex digits) or POSTURE_KEYSTORE_KEY_FILE "
        "(a file of mode 0600 holding one)"
    )


def _check_value(key: bytes) -> str:
    """Tells a wrong key from a damaged secret, without revealing anything about the key."""
    return hmac.new(key, b"posture keystore key check", hashlib.sha256).hexdigest()


def _aad(name: str, version: int) -> bytes:
    return f"posture-keystore:{name}:{version}".encode()


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    state: str
    created: str


class Keystore:
    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != 32:
            raise KeystoreError("a keystore key is 32 bytes (AES-256)")
        self.path, self._key = path, key
        _prepare_file(path)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise KeystoreError(f"{path}: cannot open the keystore: {exc}") from None
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        with self._sql("open"):
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.executescript(SCHEMA)
            # OR IGNORE: two processes creating the same keystore at once both end up reading
            # the check value the first one wrote.
            check = _check_value(self._key)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('check', ?)", (check,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise KeystoreError(
                f"{self.path}: keystore format {meta.get('format')!r}, this posture reads "
                f"{FORMAT!r}: use the posture version that wrote it"
            )
        if not hmac.compare_digest(meta["check"], _check_value(self._key)):
            raise KeystoreError(
                f"{self.path}: this is not the key the keystore was made with (or last "
                "re-encrypted with): check POSTURE_KEYSTORE_KEY / POSTURE_KEYSTORE_KEY_FILE"
            )

    @contextmanager
    def _sql(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise KeystoreError(f"{self.path}: keystore {doing} failed: {exc}") from None

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is written, or none of it."""
        with self._sql(doing):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, name: str, value: Secret, *, state: str = "pending") -> str:
        """A new version of `name`, `pending` (default) or at once `current` (the current one
        becomes previous, as by `confirm`); returns `keystore:NAME@VERSION`."""
        check_name(name)
        if state not in ("pending", "current"):
            raise KeystoreError(f"a new secret version is pending or current, not {state!r}")
        plain = value.reveal().encode()
        if len(plain) > MAX_VALUE:
            raise KeystoreError(f"{name}: a keystore secret is at most {MAX_VALUE} bytes")
        nonce = os.urandom(12)
        with self._transaction(f"put {name}") as db:
            # Numbers are never reused, even after a discard, so a repeated undo of
            # `keystore:NAME@N` can never hit a later rotation's version.
            row = db.execute(
                "SELECT MAX(COALESCE((SELECT last FROM issued WHERE name = ?), 0), "
                "COALESCE((SELECT MAX(version) FROM secrets WHERE name = ?), 0))",
                (name, name),
            ).fetchone()
            version = int(row[0]) + 1
            db.execute("INSERT OR REPLACE INTO issued VALUES (?, ?)", (name, version))
            sealed = AESGCM(self._key).encrypt(nonce, plain, _aad(name, version))
            created = datetime.now(UTC).isoformat(timespec="seconds")
            db.execute(
                "INSERT INTO secrets VALUES (?, ?, 'pending', ?, ?, ?)",
                (name, version, created, nonce, sealed),
            )
            if state == "current":
                self._promote(db, name, version)
        return f"keystore:{name}@{version}"

    def get(self, name: str, version: int | None = None) -> Secret:
        """The current version (else the newest), or the one asked for, whatever its state."""
        check_name(name)
        with self._sql(f"get {name}"):
            if version is None:
                row = self._db.execute(
                    "SELECT version, nonce, ciphertext FROM secrets WHERE name = ? "
                    "ORDER BY state = 'current' DESC, version DESC LIMIT 1",
                    (name,),
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT version, nonce, ciphertext FROM secrets WHERE name = ? AND version = ?",
                    (name, version),
                ).fetchone()
        if row is None:
            at = f"@{version}" if version is not None else ""
            raise KeystoreError(
                f"the keystore {self.path} has no secret {name}{at} (posture keystore list)"
            )
        found = int(row[0])
        return Secret(f"keystore:{name}@{found}", self._open_row(name, found, row[1], row[2]))

    def _open_row(self, name: str, version: int, nonce: bytes, sealed: bytes) -> str:
        try:
            return AESGCM(self._key).decrypt(nonce, sealed, _aad(name, version)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise KeystoreError(
                f"{self.path}: keystore secret {name}@{version} is damaged or was tampered with; "
                "restore the keystore from a backup or put the secret again"
            ) from None

    def confirm(self, name: str, version: int | None = None) -> int:
        """Makes `version` (default: the newest pending) current; the current one becomes
        previous, the previous one is deleted. Confirming the current version again changes
        nothing. Returns the confirmed version."""
        check_name(name)
        with self._transaction(f"confirm {name}") as db:
            if version is None:
                row = db.execute(
                    "SELECT MAX(version) FROM secrets WHERE name = ? AND state = 'pending'", (name,)
                ).fetchone()
                if row[0] is None:
                    raise KeystoreError(f"{name} has no pending version to confirm")
                version = int(row[0])
            row = db.execute(
                "SELECT state FROM secrets WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                raise KeystoreError(f"the keystore {self.path} has no secret {name}@{version}")
            if row[0] == "previous":
                raise KeystoreError(
                    f"{name}@{version} is the previous version: to go back to it, "
                    "discard the current one"
                )
            if row[0] == "pending":
                self._promote(db, name, version)
        return version

    @staticmethod
    def _promote(db: sqlite3.Connection, name: str, version: int) -> None:
        db.execute("DELETE FROM secrets WHERE name = ? AND state = 'previous'", (name,))
        db.execute(
            "UPDATE secrets SET state = 'previous' WHERE name = ? AND state = 'current'", (name,)
        )
        db.execute(
            "UPDATE secrets SET state = 'current' WHERE name = ? AND version = ?", (name, version)
        )

    def discard(self, name: str, version: int) -> str | None:
        """Undoes a rotation: a pending version is deleted; the current one is deleted and the
        previous one becomes current again. A version already gone is left alone (so an undo can
        be repeated). Returns the state the version had, or None."""
        check_name(name)
        with self._transaction(f"discard {name}") as db:
            row = db.execute(
                "SELECT state FROM secrets WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                return None
            if row[0] == "previous":
                raise KeystoreError(
                    f"{name}@{version} is the previous version, kept to undo the last rotation; "
                    "it goes at the next confirmation"
                )
            db.execute("DELETE FROM secrets WHERE name = ? AND version = ?", (name, version))
            if row[0] == "current":
                db.execute(
                    "UPDATE secrets SET state = 'current' WHERE name = ? AND state = 'previous'",
                    (name,),
                )
            return str(row[0])

    def entries(self) -> list[Entry]:
        """Every version's name, number, state and creation time: never a value."""
        with self._sql("list"):
            rows = self._db.execute(
                "SELECT name, version, state, created FROM secrets ORDER BY name, version"
            ).fetchall()
        return [Entry(*row) for row in rows]

    def rotate_key(self, new_key: bytes) -> int:
        """Re-encrypts every secret under `new_key` in one transaction; the old key no longer
        opens the keystore. Returns how many versions were re-encrypted."""
        if len(new_key) != 32:
            raise KeystoreError("a keystore key is 32 bytes (AES-256)")
        with self._transaction("key rotation") as db:
            rows = db.execute("SELECT name, version, nonce, ciphertext FROM secrets").fetchall()
            for name, version, nonce, sealed in rows:
                # A damaged row stops it all: the transaction rolls back and the old key stays.
                plain = self._open_row(name, int(version), nonce, sealed).encode()
                fresh = os.urandom(12)
                resealed = AESGCM(new_key).encrypt(fresh, plain, _aad(name, int(version)))
                db.execute(
                    "UPDATE secrets SET nonce = ?, ciphertext = ? WHERE name = ? AND version = ?",
                    (fresh, resealed, name, version),
                )
            db.execute("UPDATE meta SET value = ? WHERE name = 'check'", (_check_value(new_key),))
        self._key = new_key
        with suppress(sqlite3.Error):
            self._db.execute("VACUUM")  # the old ciphertexts leave the file's free pages
        return len(rows)


def _prepare_file(path: Path) -> None:
    """A new keystore file is created 0600 in a directory created 0700; an existing one must be a
    regular file only its owner can read, in a directory others cannot write to."""
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise KeystoreError(
                f"{folder}: cannot create the keystore folder: {exc.strerror}"
            ) from None
        else:
            folder.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened
    info = folder.stat()
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise KeystoreError(
            f"{folder}: others may write to the keystore's folder: chmod 700 {folder}"
        )
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise KeystoreError(f"{path}: cannot create the keystore: {exc.strerror}") from None
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise KeystoreError(f"{path}: the keystore is not a regular file")
    if info.st_uid != os.getuid():
        raise KeystoreError(
            f"{path}: the keystore belongs to another user (uid {info.st_uid}): use your own "
            "($POSTURE_KEYSTORE)"
        )
    if info.st_mode & 0o077:
        raise KeystoreError(
            f"{path}: the keystore can be read by others (mode {info.st_mode & 0o777:o}): "
            f"chmod 600 {path}"
        )


def default_keystore() -> Keystore:
    return Keystore(default_path(), key_from_environment())
