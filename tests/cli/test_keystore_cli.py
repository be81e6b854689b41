"""`posture keystore`: put from stdin or a hidden prompt, list without values, get only with
--reveal, confirm and discard a rotation, rotate-key, and clear errors with exit codes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from scanner.cli import cli
from scanner.respond.keystore import Keystore

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
VALUE = "correct horse battery staple 0042"


def _env(tmp_path: Path, key: bytes = KEY) -> dict[str, str]:
    return {
        "POSTURE_KEYSTORE": str(tmp_path / "ks" / "keystore.sqlite"),
        "POSTURE_KEYSTORE_KEY": key.hex(),
        "POSTURE_KEYSTORE_KEY_FILE": "",
        "POSTURE_KEYSTORE_NEW_KEY": "",
    }


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["keystore", *args], input=stdin, env=env)


def test_put_list_get_confirm_discard(tmp_path: Path) -> None:
    env = _env(tmp_path)
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None, code: int = 0) -> Result:
        done = _run(env, *args, stdin=stdin)
        assert done.exit_code == code, done.output
        outputs.append(done.output)
        return done

    assert "ready (0 secret versions)" in run("init").stdout
    assert (tmp_path / "ks" / "keystore.sqlite").stat().st_mode & 0o777 == 0o600
    assert "no secrets in" in run("list").stdout
    assert (
        "stored keystore:db-admin@1 (current)" in run("put", "db-admin", stdin=VALUE + "\n").stdout
    )
    assert (
        "stored keystore:db-admin@2 (pending)"
        in run("put", "db-admin", "--pending", stdin=VALUE + "-2").stdout
    )
    listed = json.loads(run("list", "--json").stdout)
    assert [(e["name"], e["version"], e["state"]) for e in listed] == [
        ("db-admin", 1, "current"), ("db-admin", 2, "pending"),
    ]  # fmt: skip
    assert set(listed[0]) == {"name", "version", "state", "created"}
    assert "db-admin" in run("list").stdout
    shown = run("get", "db-admin").stdout
    assert "keystore:db-admin@1" in shown and "--reveal" in shown
    assert run("get", "db-admin", "--reveal").stdout == VALUE  # piped: exactly the value
    assert run("get", "db-admin", "--version", "2", "--reveal").stdout == VALUE + "-2"
    assert "db-admin@2: current" in run("confirm", "db-admin").stdout
    assert run("get", "db-admin", "--reveal").stdout == VALUE + "-2"
    assert "current is now db-admin@1" in run("discard", "db-admin", "2").stdout
    assert run("get", "db-admin", "--reveal").stdout == VALUE
    assert "already discarded" in run("discard", "db-admin", "2").stdout
    missing = run("get", "nope", code=3)
    assert "posture: error: " in missing.stderr and "has no secret nope" in missing.stderr
    assert "not a keystore name" in run("put", "a b", stdin=VALUE, code=3).stderr
    assert "no value" in run("put", "empty", stdin="\n", code=2).stderr
    revealed = [text for text in outputs if VALUE in text]
    assert revealed == [VALUE, VALUE + "-2", VALUE + "-2", VALUE]  # only --reveal printed one
    data = (tmp_path / "ks" / "keystore.sqlite").read_bytes()
    assert VALUE.encode() not in data


def test_a_wrong_or_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    assert _run(_env(tmp_path), "put", "a", stdin=VALUE).exit_code == 0
    wrong = _run(_env(tmp_path, OTHER), "list")
    assert wrong.exit_code == 3
    assert "not the key the keystore was made with" in wrong.stderr
    assert "Traceback" not in wrong.output
    env = {**_env(tmp_path), "POSTURE_KEYSTORE_KEY": ""}
    none = _run(env, "list")
    assert none.exit_code == 3 and "set POSTURE_KEYSTORE_KEY" in none.stderr


def test_rotate_key_from_a_file_or_the_environment(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(env, "put", "db-admin", stdin=VALUE).exit_code == 0
    new_key = tmp_path / "new.key"
    new_key.write_text(OTHER.hex() + "\n")
    new_key.chmod(0o644)
    loose = _run(env, "rotate-key", "--new-key-file", str(new_key))
    assert loose.exit_code == 3 and f"chmod 600 {new_key}" in loose.stderr
    assert "give the new key" in _run(env, "rotate-key").stderr
    new_key.chmod(0o600)
    rotated = _run(env, "rotate-key", "--new-key-file", str(new_key))
    assert rotated.exit_code == 0 and "re-encrypted 1 secret versions" in rotated.stdout
    assert "not the key" in _run(env, "list").stderr  # the old key is refused
    env = _env(tmp_path, OTHER)
    assert _run(env, "get", "db-admin", "--reveal").stdout == VALUE
    env["POSTURE_KEYSTORE_NEW_KEY"] = KEY.hex()
    assert _run(env, "rotate-key").exit_code == 0
    assert _run(_env(tmp_path), "get", "db-admin", "--reveal").stdout == VALUE
    with Keystore(tmp_path / "ks" / "keystore.sqlite", KEY) as store:
        assert store.get("db-admin").reveal() == VALUE


def _read_until(fd: int, marker: bytes, seen: bytes, deadline: float) -> bytes:
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {marker!r} from posture; saw {seen!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_put_at_a_terminal_asks_twice_without_echo(tmp_path: Path) -> None:
    """A real pseudo-terminal: the value typed is not echoed, and stored as typed."""
    primary, secondary = pty.openpty()
    env = {**os.environ, **_env(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "keystore", "put", "typed"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=ROOT,
    )  # fmt: skip
    os.close(secondary)
    try:
        deadline = time.monotonic() + 60
        seen = _read_until(primary, b"value of typed:", b"", deadline)
        os.write(primary, VALUE.encode() + b"\n")
        seen = _read_until(primary, b"Repeat for confirmation:", seen, deadline)
        os.write(primary, VALUE.encode() + b"\n")
        seen = _read_until(primary, b"stored keystore:typed@1", seen, deadline)
        assert proc.wait(timeout=30) == 0, seen.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait(timeout=30)
        os.close(primary)
    assert VALUE.encode() not in seen
    with Keystore(tmp_path / "ks" / "keystore.sqlite", KEY) as store:
        assert store.get("typed").reveal() == VALUE
