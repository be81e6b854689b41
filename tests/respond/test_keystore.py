"""The keystore: encrypted at rest, versions with pending/current/previous states, a wrong key
or a tampered row refused clearly, key rotation, and no value outside .reveal()."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from scanner.cli import cli
from scanner.respond.credentials import resolve
from scanner.respond.errors import KeystoreError
from scanner.respond.keystore import Keystore
from scanner.respond.secrets import Secret

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
VALUE = "correct horse battery staple 0042"


def test_round_trip_and_states(tmp_path: Path) -> None:
    path = tmp_path / "ks" / "keystore.sqlite"
    with Keystore(path, KEY) as store:
        ref1 = store.put("db-app", Secret("x", VALUE + "1"), state="current")
        ref2 = store.put("db-app", Secret("x", VALUE + "2"))
        assert (ref1, ref2) == ("keystore:db-app@1", "keystore:db-app@2")
        assert store.get("db-app").reveal() == VALUE + "1"  # the pending one waits
        assert store.get("db-app", 2).reveal() == VALUE + "2"
        store.confirm("db-app")
        assert store.get("db-app").reveal() == VALUE + "2"
        assert [(e.version, e.state) for e in store.entries()] == [(1, "previous"), (2, "current")]
        store.put("db-app", Secret("x", VALUE + "3"))
        store.confirm("db-app", 3)
        assert [(e.version, e.state) for e in store.entries()] == [(2, "previous"), (3, "current")]
        ref4 = store.put("db-app", Secret("x", VALUE + "4"))
        store.discard("db-app", int(ref4.rsplit("@", 1)[1]))
        assert store.get("db-app").reveal() == VALUE + "3"
    assert oct(path.stat().st_mode)[-3:] == "600" and oct(path.parent.stat().st_mode)[-3:] == "700"
    assert VALUE.encode() not in path.read_bytes()


def test_a_wrong_key_and_a_tampered_row_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keystore.sqlite"
    with Keystore(path, KEY) as store:
        store.put("a", Secret("a", VALUE), state="current")
        store.put("b", Secret("b", VALUE), state="current")
    with pytest.raises(KeystoreError, match="not the key the keystore was made with"):
        Keystore(path, OTHER)
    with sqlite3.connect(path) as db:  # a's ciphertext moved onto b: GCM's associated data
        (a,) = db.execute("SELECT ciphertext FROM secrets WHERE name = 'a'").fetchone()
        (nonce,) = db.execute("SELECT nonce FROM secrets WHERE name = 'a'").fetchone()
        db.execute("UPDATE secrets SET ciphertext = ?, nonce = ? WHERE name = 'b'", (a, nonce))
    with Keystore(path, KEY) as store, pytest.raises(KeystoreError, match="tampered") as info:
        store.get("b")
    assert VALUE not in str(info.value)


def test_rotate_key(tmp_path: Path) -> None:
    path = tmp_path / "keystore.sqlite"
    with Keystore(path, KEY) as store:
        store.put("a", Secret("a", VALUE), state="current")
        assert store.rotate_key(OTHER) == 1
        assert store.get("a").reveal() == VALUE
    with pytest.raises(KeystoreError):
        Keystore(path, KEY)
    with Keystore(path, OTHER) as store:
        assert store.get("a").reveal() == VALUE


def test_references_resolve_and_never_show_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTURE_TEST_PW", VALUE)
    assert resolve("env:POSTURE_TEST_PW").reveal() == VALUE
    assert VALUE not in repr(resolve("env:POSTURE_TEST_PW"))
    assert VALUE not in f"{resolve('env:POSTURE_TEST_PW')}"
    secret_file = tmp_path / "pw"
    secret_file.write_text(VALUE + "\n")
    secret_file.chmod(0o640)
    with pytest.raises(KeystoreError, match=f"chmod 600 {secret_file}"):
        resolve(f"file:{secret_file}")
    secret_file.chmod(0o600)
    assert resolve(f"file:{secret_file}").reveal() == VALUE
    with pytest.raises(KeystoreError, match="POSTURE_NOPE is not set"):
        resolve("env:POSTURE_NOPE")
    monkeypatch.setenv("POSTURE_KEYSTORE", str(tmp_path / "ks.sqlite"))
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", KEY.hex())
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        store.put("api", Secret("api", VALUE), state="current")
    assert resolve("keystore:api").reveal() == VALUE
    assert resolve("keystore:api@1").reveal() == VALUE
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(resolve("keystore:api"))


def test_cli(tmp_path: Path) -> None:
    env = {"POSTURE_KEYSTORE": str(tmp_path / "ks.sqlite"), "POSTURE_KEYSTORE_KEY": KEY.hex()}
    runner = CliRunner()
    assert runner.invoke(cli, ["keystore", "init"], env=env).exit_code == 0
    put = runner.invoke(cli, ["keystore", "put", "db-admin"], input=VALUE + "\n", env=env)
    assert put.exit_code == 0 and "stored keystore:db-admin@1" in put.stdout
    listed = runner.invoke(cli, ["keystore", "list", "--json"], env=env)
    assert '"state": "current"' in listed.stdout and VALUE not in listed.stdout
    shown = runner.invoke(cli, ["keystore", "get", "db-admin"], env=env)
    assert VALUE not in shown.stdout and "keystore:db-admin@1" in shown.stdout
    revealed = runner.invoke(cli, ["keystore", "get", "db-admin", "--reveal"], env=env)
    assert revealed.stdout == VALUE
    new_key = tmp_path / "new.key"
    new_key.write_text(OTHER.hex())
    os.chmod(new_key, 0o600)
    rotated = runner.invoke(
        cli, ["keystore", "rotate-key", "--new-key-file", str(new_key)], env=env
    )
    assert rotated.exit_code == 0, rotated.output
    refused = runner.invoke(cli, ["keystore", "list"], env=env)
    assert refused.exit_code == 3 and "not the key" in refused.stderr
    env["POSTURE_KEYSTORE_KEY"] = OTHER.hex()
    assert runner.invoke(cli, ["keystore", "get", "db-admin", "--reveal"], env=env).stdout == VALUE
