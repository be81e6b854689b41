# ruff: noqa: E501 - key material and command lines kept whole
"""SSH key rotation against real sshds: a loopback one letting the unprivileged `nobody` in (a
local target, whose keys folder posture must handle as its owner), and a namespace host's (an
ssh target whose session uses the very key being rotated). New key in, old key refused, other
lines byte for byte, exact undo, reconcile after a crash, private key only in the keystore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.actions.ssh_key import (
    KEYFILE_PREFIX,
    Layout,
    RotateSshKey,
    fingerprint,
    line_key,
    mint,
    public_blob,
    without_key,
)
from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ActionError
from scanner.respond.keystore import Keystore, default_keystore
from scanner.respond.secrets import Redactor, Secret
from tests.respond.netns import NetnsLab
from tests.respond.sshd import Sshd, sshd_fixture  # noqa: F401 - the loopback sshd

STORE_KEY = bytes(range(32))
OTHER_LINE = 'from="10.9.9.9",command="echo hi there" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxR1bM3w8yq9W2p2k2dPpq0dTzn5d1fQ2cGx0JYk3b7 ops@bastion\n'


class Crash(Exception):
    """Stands for a kill -9 at a chosen point of a run."""


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keystore.sqlite"
    monkeypatch.setenv("POSTURE_KEYSTORE", str(path))
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", STORE_KEY.hex())
    return path


def _put(name: str, value: Secret) -> str:
    with default_keystore() as store:
        return store.put(name, value)


def _ctx(tmp_path: Path, connector: Connector, records: list[Any], run_id: str = "r-1",
         crash_at_write: int = 0) -> StepContext:  # fmt: skip
    """A step context over the real keystore; `crash_at_write` = n stops the run right after its
    n-th write of authorized_keys (the write happened, nothing after it did)."""
    writes = [0]

    def record(kind: str, data: Any) -> None:
        records.append((kind, dict(data)))
        if kind == "command" and "mktemp" in data["command"]:
            writes[0] += 1
            if writes[0] == crash_at_write:
                raise Crash(f"killed after write {crash_at_write}")

    return StepContext(
        run_id=run_id, step_id="rotate", connector=connector, timeout=60, redactor=Redactor(),
        secrets=SecretSink(_put), workdir=tmp_path / "work", record=record,
    )  # fmt: skip


def _records() -> list[Any]:
    return []


def _key_file(tmp_path: Path, private: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(private)
    path.chmod(0o600)
    return path


def _body(private: str) -> list[str]:
    """The lines of a private key that carry key material (no BEGIN/END armour)."""
    return [ln for ln in private.strip().splitlines() if not ln.startswith("-----")]


# --- parsing, minting: no server needed ------------------------------------------------


def test_mint_and_fingerprints_match_ssh_keygen(tmp_path: Path) -> None:
    private, line = mint("ed25519", "posture-rotated r1 2026-11-24")
    assert line.startswith("ssh-ed25519 ") and line.endswith(" posture-rotated r1 2026-11-24")
    key = _key_file(tmp_path, private, "k")
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True,
                           check=True, timeout=30).stdout  # fmt: skip
    assert shown.split()[1] == fingerprint(public_blob(private))
    assert line_key(line) == public_blob(private)


def test_rsa_4096_is_minted_in_openssh_format() -> None:
    private, line = mint("rsa-4096", "c")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert line.startswith("ssh-rsa ") and line_key(line) == public_blob(private)
    assert len(public_blob(private)) > 512  # a 4096-bit modulus


def test_keys_are_matched_by_blob_not_by_text() -> None:
    private, line = mint("ed25519", "me")
    blob = public_blob(private)
    kind, data = line.split()[:2]
    text = (
        "# a comment naming " + data + "\n"  # the blob in a comment is not a key line
        + f'command="ssh-ed25519 x y",no-pty {kind} {data} other-comment\n'  # options, spaces
        + OTHER_LINE + f"{kind}  {data}\n"  # two spaces, no comment
    )  # fmt: skip
    kept, removed = without_key(text, blob)
    assert removed == 2
    assert kept == "# a comment naming " + data + "\n" + OTHER_LINE
    assert without_key(kept, blob) == (kept, 0)


def test_a_non_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(Exception) as caught:
        RotateSshKey().validate({"current_key": Secret("k", "hunter2-not-a-key"),
                                 "keystore_name": "k"})  # fmt: skip
    assert "hunter2" not in str(caught.value) and "not an unencrypted private key" in str(
        caught.value
    )


def test_a_local_target_needs_the_login_address() -> None:
    private, _ = mint("ed25519", "c")
    params = RotateSshKey().validate({"current_key": Secret("k", private), "keystore_name": "k"})
    with pytest.raises(ActionError, match="give `address`"):
        RotateSshKey().describe(params, LocalConnector())


# --- a local target, an unprivileged account, a loopback sshd ------------------------------


def _local_params(server: Sshd, old: Path, name: str = "ssh-nobody") -> Any:
    return RotateSshKey().validate({
        "user": server.user, "current_key": Secret("old", old.read_text()),
        "keystore_name": name, "authorized_keys": str(server.authorized_keys),
        "address": server.address, "port": server.port, "known_hosts": str(server.known_hosts),
    })  # fmt: skip


def _install(server: Sshd, text: str) -> None:
    """authorized_keys as its owner (nobody) would have written it."""
    server.authorized_keys.write_text(text)
    uid, gid = server.keys_folder.stat().st_uid, server.keys_folder.stat().st_gid
    os.chown(server.authorized_keys, uid, gid)
    server.authorized_keys.chmod(0o600)


def test_rotate_prove_and_undo_on_a_local_target(
    sshd: Sshd, keystore: Path, tmp_path: Path
) -> None:
    old, other = sshd.keygen("old"), sshd.keygen("other")
    old_line = old.with_suffix(".pub").read_text()
    before = "# keys of nobody\n" + OTHER_LINE + old_line + other.with_suffix(".pub").read_text()
    _install(sshd, before)
    assert sshd.logs_in(old) and sshd.logs_in(other)
    act, records = RotateSshKey(), _records()
    params = _local_params(sshd, old)
    ctx = _ctx(tmp_path, LocalConnector(), records, run_id="r-local")
    old_fp = fingerprint(public_blob(old.read_text()))

    plan = act.describe(params, ctx.connector)
    assert any(old_fp in line and "-p " + str(sshd.port) in line for line in plan)
    assert act.probe(params, ctx) == {"path": str(sshd.authorized_keys), "current_key": old_fp,
                                      "current_key_installed": True}  # fmt: skip
    prestate = act.prestate(params, ctx)
    assert prestate["content"] == before and prestate["mode"] == "600"
    outputs = act.run(params, ctx)

    with Keystore(keystore, STORE_KEY) as store:
        new_private = store.get("ssh-nobody").reveal()
        assert [(e.name, e.version, e.state) for e in store.entries()] == [
            ("ssh-nobody", 1, "pending")
        ]
    assert outputs == {"user": "nobody", "new_key": fingerprint(public_blob(new_private)),
                       "old_key": old_fp, "removed_lines": 1,
                       "private_key": "keystore:ssh-nobody@1"}  # fmt: skip
    new = _key_file(tmp_path, new_private, "new")
    assert sshd.logs_in(new) and not sshd.logs_in(old) and sshd.logs_in(other)
    after = sshd.authorized_keys.read_text()
    new_lines = [ln for ln in after.splitlines(keepends=True) if "posture-rotated r-local " in ln]
    assert len(new_lines) == 1 and line_key(new_lines[0]) == public_blob(new_private)
    assert after.replace(new_lines[0], "") == before.replace(
        old_line, ""
    )  # the rest, byte for byte
    info = sshd.authorized_keys.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (sshd.keys_folder.stat().st_uid, 0o600)
    assert [d["accepted"] for kind, d in records if kind == "login"] == [True, False]
    commands = [d["command"] for kind, d in records if kind == "command"]
    assert all("setpriv --reuid=" in c for c in commands if "mktemp" in c)  # written as nobody
    # The new private key: in the keystore only.
    shown = json.dumps([outputs, prestate, records, plan])
    for line in _body(new_private):
        assert line not in shown and line not in sshd.log
    assert not list((tmp_path / "work").iterdir())  # the temporary key files are gone

    act.compensate(params, ctx, prestate, outputs)
    assert sshd.authorized_keys.read_text() == before
    assert sshd.logs_in(old) and sshd.logs_in(other) and not sshd.logs_in(new)


def test_reconcile_after_a_crash_once_the_old_key_is_gone(
    sshd: Sshd, keystore: Path, tmp_path: Path
) -> None:
    old = sshd.keygen("old-2")
    _install(sshd, OTHER_LINE + old.with_suffix(".pub").read_text())
    act, records = RotateSshKey(), _records()
    params = _local_params(sshd, old, name="ssh-nobody-2")
    prestate = act.prestate(params, _ctx(tmp_path, LocalConnector(), records))
    with pytest.raises(Crash):
        act.run(
            params, _ctx(tmp_path, LocalConnector(), records, run_id="r-crash", crash_at_write=2)
        )
    # kill -9 leaves a key file behind where a finally would have removed it.
    leftover = tmp_path / "work" / f"{KEYFILE_PREFIX}leftover"
    leftover.write_text("left by a killed run")
    outputs = act.reconcile(
        params, _ctx(tmp_path, LocalConnector(), records, run_id="r-crash"), prestate
    )
    assert not leftover.exists()
    assert outputs is not None and outputs["private_key"] == "keystore:ssh-nobody-2@1"
    assert outputs["removed_lines"] == 1
    with Keystore(keystore, STORE_KEY) as store:
        new = _key_file(tmp_path, store.get("ssh-nobody-2", 1).reveal(), "new-2")
    assert sshd.logs_in(new) and not sshd.logs_in(old)
    # Another run's reconcile does not claim this run's key.
    assert (
        act.reconcile(params, _ctx(tmp_path, LocalConnector(), records, run_id="r-other"), prestate)
        is None
    )


def test_a_crash_before_the_old_key_goes_runs_again_with_one_new_key(
    sshd: Sshd, keystore: Path, tmp_path: Path
) -> None:
    old = sshd.keygen("old-3")
    before = OTHER_LINE + old.with_suffix(".pub").read_text()
    _install(sshd, before)
    act, records = RotateSshKey(), _records()
    params = _local_params(sshd, old, name="ssh-nobody-3")
    prestate = act.prestate(params, _ctx(tmp_path, LocalConnector(), records))
    with pytest.raises(Crash):
        act.run(
            params, _ctx(tmp_path, LocalConnector(), records, run_id="r-again", crash_at_write=1)
        )
    assert sshd.logs_in(old)  # half done: both keys are in
    ctx = _ctx(tmp_path, LocalConnector(), records, run_id="r-again")
    assert act.reconcile(params, ctx, prestate) is None  # not done: the engine runs it again
    outputs = act.run(params, ctx)
    assert outputs["private_key"] == "keystore:ssh-nobody-3@2"
    after = sshd.authorized_keys.read_text()
    ours = [ln for ln in after.splitlines() if "posture-rotated r-again " in ln]
    with Keystore(keystore, STORE_KEY) as store:
        first, second = (store.get("ssh-nobody-3", v).reveal() for v in (1, 2))
    assert [line_key(ln) for ln in ours] == [public_blob(second)]  # the first attempt's line went
    assert sshd.logs_in(_key_file(tmp_path, second, "second"))
    assert not sshd.logs_in(_key_file(tmp_path, first, "first")) and not sshd.logs_in(old)
    act.compensate(params, ctx, prestate, outputs)
    assert sshd.authorized_keys.read_text() == before


def test_the_file_is_handled_as_its_folders_owner(
    sshd: Sshd, keystore: Path, tmp_path: Path
) -> None:
    old = sshd.keygen("old-4")
    _install(sshd, old.with_suffix(".pub").read_text())
    act, records = RotateSshKey(), _records()
    params = _local_params(sshd, old, name="ssh-nobody-4")
    ctx = _ctx(tmp_path, LocalConnector(), records)
    layout = act._layout(params, ctx.connector, 30)
    assert layout.drop[:2] == ("setpriv", f"--reuid={sshd.keys_folder.stat().st_uid}")
    # What root can read but the account cannot stays unread, even if the path led there.
    private = tmp_path / "root-only"
    private.write_text("ROOT-ONLY-CONTENT\n")
    private.chmod(0o600)
    with pytest.raises(ActionError) as caught:
        act._read(ctx.connector, Layout(str(private), "0:0", "600", layout.drop), 30)
    assert "ROOT-ONLY" not in str(caught.value)
    # A link planted in the account's folder is refused, not followed.
    sshd.authorized_keys.unlink()
    sshd.authorized_keys.symlink_to(private)
    try:
        with pytest.raises(ActionError, match="symbolic link"):
            act.prestate(params, ctx)
    finally:
        sshd.authorized_keys.unlink()
        _install(sshd, "")


# --- an ssh target whose session key is the one rotated (namespace host) ----------------


def _lab_ctx(lab: NetnsLab, identity: Path, tmp_path: Path, records: list[Any]) -> StepContext:
    connector = SshConnector(lab.addresses[1], **{**lab.connector_args(), "identity": identity})  # type: ignore[arg-type]
    return _ctx(tmp_path, connector, records, run_id="r-rotate")


def _lab_logs_in(lab: NetnsLab, private: str, tmp_path: Path) -> bool:
    key = _key_file(
        tmp_path, private if private.endswith("\n") else private + "\n", f"probe-{os.getpid()}"
    )
    try:
        connector = SshConnector(lab.addresses[1], **{**lab.connector_args(), "identity": key})  # type: ignore[arg-type]
        try:
            return connector.run(["true"]).ok
        except Exception:
            return False
    finally:
        key.unlink()


def test_rotate_then_undo_through_the_new_key(
    lab: NetnsLab, keystore: Path, tmp_path: Path
) -> None:
    keys_file = lab.folder / "h1" / "authorized_keys"
    original = keys_file.read_text()
    keys_file.write_text("# managed by hand\n" + OTHER_LINE + original)
    before = keys_file.read_bytes()
    old_private = lab.key.read_text()
    records: list[Any] = []
    act = RotateSshKey()
    params = act.validate({"user": "root", "current_key": Secret("lab", old_private),
                           "keystore_name": "lab-h1-root", "authorized_keys": str(keys_file)})  # fmt: skip
    ctx = _lab_ctx(lab, lab.key, tmp_path, records)
    try:
        assert act.probe(params, ctx)["current_key_installed"] is True
        prestate = act.prestate(params, ctx)
        outputs = act.run(params, ctx)
        with Keystore(keystore, STORE_KEY) as store:
            new_private = store.get("lab-h1-root").reveal()
        assert outputs["private_key"] == "keystore:lab-h1-root@1"
        assert outputs["new_key"] == fingerprint(public_blob(new_private))
        assert outputs["removed_lines"] == 1
        assert _lab_logs_in(lab, new_private, tmp_path)
        assert not _lab_logs_in(lab, old_private, tmp_path)
        after = keys_file.read_text()
        assert after.startswith("# managed by hand\n" + OTHER_LINE)
        assert [d["accepted"] for kind, d in records if kind == "login"] == [True, False]
        blob = json.dumps([outputs, prestate, records])
        for line in _body(new_private):
            assert line not in blob
        assert not list((tmp_path / "work").iterdir())
        # The step's own session used the old key and is refused now: the undo logs in with
        # the new key from the keystore.
        act.compensate(params, ctx, prestate, outputs)
        assert keys_file.read_bytes() == before
        assert _lab_logs_in(lab, old_private, tmp_path)
        assert not _lab_logs_in(lab, new_private, tmp_path)
    finally:
        keys_file.write_text(original)


def test_rotate_ssh_key_playbook_through_the_cli(lab: NetnsLab, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    keys_file = lab.folder / "h1" / "authorized_keys"
    original = keys_file.read_text()
    key = tmp_path / "current"
    key.write_bytes(lab.key.read_bytes())
    key.chmod(0o600)
    env = {
        "POSTURE_JOURNAL": str(tmp_path / "journal" / "respond.sqlite"),
        "POSTURE_KEYSTORE": str(tmp_path / "keystore.sqlite"),
        "POSTURE_KEYSTORE_KEY": STORE_KEY.hex(),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(root),
    }  # fmt: skip
    inputs = ["-i", f"host={lab.addresses[1]}", "-i", f"current_key=file:{key}",
              "-i", f"authorized_keys={keys_file}", "-i", f"known_hosts={lab.known_hosts}"]  # fmt: skip

    def posture(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", lab.mgmt, sys.executable, "-m", "scanner", *args],
            capture_output=True, text=True, timeout=300, env=env, cwd=root,
        )  # fmt: skip

    try:
        plan = posture("playbook", "plan", "rotate-ssh-key", *inputs, "--json")
        assert plan.returncode == 0, plan.stderr
        document = json.loads(plan.stdout)
        assert document["probes"]["rotate@" + lab.addresses[1]]["current_key_installed"] is True
        done = posture("playbook", "run", "rotate-ssh-key", *inputs, "--approve", "rotate",
                       "--plan-hash", document["plan_hash"], "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        with Keystore(tmp_path / "keystore.sqlite", STORE_KEY) as store:
            entries = [(e.name, e.version, e.state) for e in store.entries()]
            new_private = store.get(f"ssh-root-{lab.addresses[1]}").reveal()
        assert entries == [(f"ssh-root-{lab.addresses[1]}", 1, "current")]
        assert _lab_logs_in(lab, new_private, tmp_path)
        assert not _lab_logs_in(lab, lab.key.read_text(), tmp_path)
        run_id = json.loads(done.stdout)["run_id"]
        audit = posture("playbook", "audit", run_id, "--verify", "--json")
        assert json.loads(audit.stdout)["verified"] is True
        for line in _body(new_private) + _body(lab.key.read_text()):
            assert line not in audit.stdout and line not in plan.stdout
        journal_bytes = b"".join(
            p.read_bytes() for p in (tmp_path / "journal").rglob("*") if p.is_file()
        )
        assert _body(new_private)[0].encode() not in journal_bytes
    finally:
        keys_file.write_text(original)
