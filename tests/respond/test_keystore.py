"""The keystore: encrypted at rest, versions with pending/current/previous states, a wrong key
or a tampered row refused clearly, key rotation, file modes, and no value outside .reveal()."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scanner.respond.errors import KeystoreError
from scanner.respond.keystore import Keystore, default_path, key_from_environment
from scanner.respond.secrets import Secret

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
VALUE = "correct horse battery staple 0042"


def _states(store: Keystore, name: str = "db-app") -> list[tuple[int, str]]:
    return [(e.version, e.state) for e in store.entries() if e.name == name]


def _put(store: Keystore, n: int, state: str = "pending") -> int:
    ref = store.put("db-app", Secret("x", f"{VALUE}-{n}"), state=state)
    return int(ref.rsplit("@", 1)[1])


def test_round_trip_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "ks" / "keystore.sqlite"
    with Keystore(path, KEY) as store:
        ref = store.put("db-app", Secret("x", VALUE), state="current")
        assert ref == "keystore:db-app@1"
        secret = store.get("db-app")
        assert secret.reveal() == VALUE and VALUE not in repr(secret) + str(secret)
        assert secret.name == "keystore:db-app@1"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with Keystore(path, KEY) as store:  # reopened with the same key
        assert store.get("db-app").reveal() == VALUE
    assert VALUE.encode() not in path.read_bytes()


def test_a_rotation_is_pending_until_confirmed_and_the_previous_version_kept(
    tmp_path: Path,
) -> None:
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        _put(store, 1, "current")
        v2 = _put(store, 2)
        assert store.get("db-app").reveal() == f"{VALUE}-1"  # the pending one waits
        assert store.get("db-app", v2).reveal() == f"{VALUE}-2"  # unless asked for
        assert store.confirm("db-app") == v2
        assert store.get("db-app").reveal() == f"{VALUE}-2"
        assert _states(store) == [(1, "previous"), (2, "current")]
        assert store.confirm("db-app", v2) == v2  # a resumed run confirms again: no change
        assert _states(store) == [(1, "previous"), (2, "current")]
        store.confirm("db-app", _put(store, 3))
        assert _states(store) == [(2, "previous"), (3, "current")]  # version 1 is gone
        _put(store, 4, "current")  # put straight as current: the same shift, one transaction
        assert _states(store) == [(3, "previous"), (4, "current")]
        with pytest.raises(KeystoreError, match="db-app@3 is the previous version"):
            store.confirm("db-app", 3)
        with pytest.raises(KeystoreError, match="no pending version"):
            store.confirm("db-app")
        with pytest.raises(KeystoreError, match="has no secret db-app@9"):
            store.confirm("db-app", 9)
        with pytest.raises(KeystoreError, match="pending or current"):
            store.put("db-app", Secret("x", VALUE), state="previous")


def test_discard_undoes_a_rotation_before_and_after_its_confirmation(tmp_path: Path) -> None:
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        _put(store, 1, "current")
        v2 = _put(store, 2)
        assert store.discard("db-app", v2) == "pending"  # rolled back before it was proven
        assert _states(store) == [(1, "current")]
        assert store.discard("db-app", v2) is None  # repeated by a resumed undo: nothing to do
        v3 = _put(store, 3)
        store.confirm("db-app", v3)
        assert store.discard("db-app", v3) == "current"  # undone after its step succeeded
        assert _states(store) == [(1, "current")]
        assert store.get("db-app").reveal() == f"{VALUE}-1"
        store.confirm("db-app", _put(store, 4))
        with pytest.raises(KeystoreError, match="kept to undo the last rotation"):
            store.discard("db-app", 1)
        store.discard("db-app", 4)
        store.discard("db-app", 1)  # now current, with nothing before it
        assert _states(store) == []
        with pytest.raises(KeystoreError, match="has no secret db-app"):
            store.get("db-app")


def test_version_numbers_are_never_reused(tmp_path: Path) -> None:
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        v1, v2 = _put(store, 1, "current"), _put(store, 2)
        store.discard("db-app", v2)
        v3 = _put(store, 3)
        assert (v1, v2, v3) == (1, 2, 3)
        assert store.discard("db-app", v2) is None  # a repeated undo of @2 leaves @3 alone
        assert _states(store) == [(1, "current"), (3, "pending")]
        store.discard("db-app", v3)
        store.discard("db-app", v1)
        assert _put(store, 4) == 4  # even once the name had no version left
        other = store.put("other", Secret("o", VALUE))
        assert other == "keystore:other@1"


def test_a_wrong_key_is_refused_by_name_not_by_a_tag_error(tmp_path: Path) -> None:
    path = tmp_path / "ks.sqlite"
    with Keystore(path, KEY) as store:
        store.put("a", Secret("a", VALUE), state="current")
    with pytest.raises(KeystoreError, match="not the key the keystore was made with") as info:
        Keystore(path, OTHER)
    assert "InvalidTag" not in str(info.value)


def test_a_tampered_or_moved_ciphertext_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ks.sqlite"
    with Keystore(path, KEY) as store:
        store.put("a", Secret("a", VALUE), state="current")
        store.put("b", Secret("b", "another secret value"), state="current")
        store.put("c", Secret("c", VALUE), state="current")
    with sqlite3.connect(path) as db:
        # a's row copied onto b: the associated data (name, version) no longer matches.
        nonce, sealed = db.execute(
            "SELECT nonce, ciphertext FROM secrets WHERE name = 'a'"
        ).fetchone()
        db.execute("UPDATE secrets SET nonce = ?, ciphertext = ? WHERE name = 'b'", (nonce, sealed))
        # one bit of c flipped
        (sealed,) = db.execute("SELECT ciphertext FROM secrets WHERE name = 'c'").fetchone()
        flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
        db.execute("UPDATE secrets SET ciphertext = ? WHERE name = 'c'", (flipped,))
    db.close()
    with Keystore(path, KEY) as store:
        assert store.get("a").reveal() == VALUE
        for name in ("b", "c"):
            with pytest.raises(KeystoreError, match=f"{name}@1 is damaged or was tampered") as info:
                store.get(name)
            assert VALUE not in str(info.value)
        with pytest.raises(KeystoreError, match="tampered"):
            store.rotate_key(OTHER)  # a damaged row stops the whole rotation
    with Keystore(path, KEY) as store:  # rolled back: the old key still opens it
        assert store.get("a").reveal() == VALUE


def test_rotate_key_re_encrypts_everything_and_refuses_the_old_key(tmp_path: Path) -> None:
    path = tmp_path / "ks.sqlite"
    with Keystore(path, KEY) as store:
        store.put("a", Secret("a", VALUE), state="current")
        store.put("a", Secret("a", VALUE + "-new"))
        store.put("b", Secret("b", VALUE), state="current")
        with sqlite3.connect(path) as db:
            before = db.execute("SELECT ciphertext FROM secrets ORDER BY name, version").fetchall()
        db.close()
        assert store.rotate_key(OTHER) == 3
        assert store.get("a").reveal() == VALUE  # the open handle uses the new key
    with pytest.raises(KeystoreError, match="not the key"):
        Keystore(path, KEY)
    with Keystore(path, OTHER) as store:
        assert store.get("a").reveal() == VALUE
        assert store.get("a", 2).reveal() == VALUE + "-new"
        assert [(e.name, e.version, e.state) for e in store.entries()] == [
            ("a", 1, "current"), ("a", 2, "pending"), ("b", 1, "current"),
        ]  # fmt: skip
    data = path.read_bytes()
    assert not any(old in data for (old,) in before)  # the old ciphertexts left the file


def test_deleted_versions_leave_no_ciphertext_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ks.sqlite"
    with Keystore(path, KEY) as store:
        v = int(store.put("a", Secret("a", VALUE * 20)).rsplit("@", 1)[1])
        with sqlite3.connect(path) as db:
            (sealed,) = db.execute("SELECT ciphertext FROM secrets").fetchone()
        db.close()
        assert sealed in path.read_bytes()
        store.discard("a", v)
    assert sealed not in path.read_bytes()  # secure_delete zeroed it


def test_file_and_folder_permissions_are_enforced(tmp_path: Path) -> None:
    loose = tmp_path / "loose.sqlite"
    Keystore(loose, KEY).close()
    loose.chmod(0o644)
    with pytest.raises(KeystoreError, match=f"chmod 600 {loose}"):
        Keystore(loose, KEY)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(KeystoreError, match=f"chmod 700 {shared}"):
        Keystore(shared / "ks.sqlite", KEY)
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "elsewhere.sqlite")
    with pytest.raises(KeystoreError, match="not a regular file"):
        Keystore(link, KEY)
    assert not (tmp_path / "elsewhere.sqlite").exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    junk.chmod(0o600)
    with pytest.raises(KeystoreError, match=f"{junk}: keystore open failed"):
        Keystore(junk, KEY)


def test_names_are_checked(tmp_path: Path) -> None:
    with Keystore(tmp_path / "ks.sqlite", KEY) as store:
        for bad in ("", "a@1", "a b", "x" * 129, "a/b"):
            with pytest.raises(KeystoreError, match="not a keystore name"):
                store.put(bad, Secret("x", VALUE))


def test_the_key_comes_from_the_environment_before_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(OTHER.hex() + "\n")
    key_file.chmod(0o600)
    monkeypatch.delenv("POSTURE_KEYSTORE_KEY", raising=False)
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY_FILE", str(key_file))
    assert key_from_environment() == OTHER
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", KEY.hex())
    assert key_from_environment() == KEY  # the variable wins
    import base64

    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", base64.b64encode(KEY).decode())
    assert key_from_environment() == KEY
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", "too short")
    with pytest.raises(KeystoreError, match="32 random bytes"):
        key_from_environment()
    monkeypatch.delenv("POSTURE_KEYSTORE_KEY")
    key_file.chmod(0o640)
    with pytest.raises(KeystoreError, match=f"chmod 600 {key_file}"):
        key_from_environment()
    monkeypatch.delenv("POSTURE_KEYSTORE_KEY_FILE")
    with pytest.raises(KeystoreError, match="set POSTURE_KEYSTORE_KEY"):
        key_from_environment()


def test_default_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTURE_KEYSTORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "posture" / "keystore.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".local" / "share" / "posture" / "keystore.sqlite"
    monkeypatch.setenv("POSTURE_KEYSTORE", str(tmp_path / "mine.sqlite"))
    assert default_path() == tmp_path / "mine.sqlite"
