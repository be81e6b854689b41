"""Credential references: env:NAME, file:/PATH (regular, ours, 0600, bounded) and
keystore:NAME[@VERSION]; anything else refused naming the accepted forms, no value in any error."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from scanner.respond.credentials import MAX_FILE, resolve
from scanner.respond.errors import KeystoreError
from scanner.respond.keystore import Keystore
from scanner.respond.secrets import Secret

KEY = bytes(range(32))
VALUE = "correct horse battery staple 0042"


def _refused(ref: str, match: str) -> str:
    with pytest.raises(KeystoreError, match=match) as info:
        resolve(ref)
    assert VALUE not in str(info.value)
    return str(info.value)


def test_env_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTURE_TEST_PW", VALUE)
    secret = resolve("env:POSTURE_TEST_PW")
    assert secret.reveal() == VALUE
    assert VALUE not in repr(secret) + str(secret) + f"{secret}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    monkeypatch.delenv("POSTURE_NOPE", raising=False)
    _refused("env:POSTURE_NOPE", "the environment variable POSTURE_NOPE is not set")
    monkeypatch.setenv("POSTURE_EMPTY", "")
    _refused("env:POSTURE_EMPTY", "POSTURE_EMPTY is not set")
    _refused("env:not a name", "NAME is a variable name")


def test_file_references(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(VALUE + "\r\n")
    secret_file.chmod(0o600)
    assert resolve(f"file:{secret_file}").reveal() == VALUE  # the final newline stripped
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    pem.chmod(0o600)
    assert resolve(f"file:{pem}").reveal().endswith("KEY-----\n")  # OpenSSH needs it
    for mode in (0o640, 0o604, 0o620):
        secret_file.chmod(mode)
        _refused(f"file:{secret_file}", f"can be read by others .*chmod 600 {secret_file}")
    secret_file.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(secret_file)
    _refused(f"file:{link}", "is a symbolic link")  # not followed: O_NOFOLLOW
    _refused(f"file:{tmp_path}", "is not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    _refused(f"file:{fifo}", "is not a regular file")  # and the open did not hang
    _refused(f"file:{tmp_path / 'missing'}", "No such file")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_FILE + 1))
    big.chmod(0o600)
    _refused(f"file:{big}", f"larger than {MAX_FILE} bytes")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + VALUE.encode())
    binary.chmod(0o600)
    _refused(f"file:{binary}", "not UTF-8")
    _refused("file:", "needs a path")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(VALUE)
    secret_file.chmod(0o600)
    os.chown(secret_file, 65534, 65534)
    _refused(f"file:{secret_file}", "belongs to another user .uid 65534")


def test_keystore_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTURE_KEYSTORE", str(tmp_path / "ks.sqlite"))
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", KEY.hex())
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        store.put("api", Secret("api", VALUE), state="current")
        store.put("api", Secret("api", VALUE + "-pending"))
    assert resolve("keystore:api").reveal() == VALUE
    assert resolve("keystore:api@1").reveal() == VALUE
    assert resolve("keystore:api@2").reveal() == VALUE + "-pending"
    _refused("keystore:api@3", "has no secret api@3")
    _refused("keystore:api@two", "the version after @ is a number")
    _refused("keystore:a b", "not a keystore name")
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", bytes(32).hex())
    _refused("keystore:api", "not the key the keystore was made with")


def test_anything_else_is_refused_without_echoing_it() -> None:
    message = _refused(VALUE, "must be a reference .env:NAME, file:/PATH or keystore:NAME")
    assert "33 characters" in message
    assert VALUE not in _refused("pass:" + VALUE, "unknown kind 'pass'")
    _refused("vault:prod/db", "unknown kind 'vault'")
    _refused("", "must be a reference")
