# ruff: noqa: E501 - key material and command lines kept whole
"""SSH key rotation against a real sshd in a namespace host: the new key logs in, the old one is
refused, other lines stay byte for byte, the private key is only in the keystore, and the undo
restores the exact file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.actions.ssh_key import RotateSshKey, fingerprint, mint, public_blob
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.secrets import Redactor, Secret
from tests.respond.netns import NetnsLab

OTHER_LINE = 'from="10.9.9.9" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxR1bM3w8yq9W2p2k2dPpq0dTzn5d1fQ2cGx0JYk3b7 ops@bastion\n'


def _ctx(lab: NetnsLab, identity: Path, tmp_path: Path, vault: dict[str, str],
         records: list[Any]) -> StepContext:  # fmt: skip
    args = {**lab.connector_args(), "identity": identity}
    connector = SshConnector(lab.addresses[1], **args)  # type: ignore[arg-type]

    def put(name: str, value: Secret) -> str:
        vault[name] = value.reveal()
        return f"keystore:{name}@1"

    return StepContext(
        run_id="r-rotate", step_id="rotate", connector=connector, timeout=30,
        redactor=Redactor(), secrets=SecretSink(put), workdir=tmp_path / "work",
        record=lambda kind, data: records.append((kind, dict(data))),
    )  # fmt: skip


def _logs_in(lab: NetnsLab, private: str, tmp_path: Path) -> bool:
    key = tmp_path / f"probe-{len(private)}-{os.getpid()}"
    key.write_text(private if private.endswith("\n") else private + "\n")
    key.chmod(0o600)
    try:
        connector = SshConnector(lab.addresses[1], **{**lab.connector_args(), "identity": key})  # type: ignore[arg-type]
        try:
            return connector.run(["true"]).ok
        except Exception:
            return False
    finally:
        key.unlink()


def test_mint_and_fingerprints() -> None:
    private, line = mint("ed25519", "posture-rotated r1 2026-11-24")
    assert line.startswith("ssh-ed25519 ") and line.endswith(" posture-rotated r1 2026-11-24")
    assert fingerprint(public_blob(private)).startswith("SHA256:")


def test_rotate_then_undo(lab: NetnsLab, tmp_path: Path) -> None:
    keys_file = lab.folder / "h1" / "authorized_keys"
    original = keys_file.read_text()
    keys_file.write_text("# managed by hand\n" + OTHER_LINE + original)
    before = keys_file.read_bytes()
    old_private = lab.key.read_text()
    vault: dict[str, str] = {}
    records: list[Any] = []
    act = RotateSshKey()
    params = act.validate({"user": "root", "current_key": Secret("lab", old_private),
                           "keystore_name": "lab-h1-root", "authorized_keys": str(keys_file)})  # fmt: skip
    ctx = _ctx(lab, lab.key, tmp_path, vault, records)
    try:
        assert act.probe(params, ctx)["current_key_installed"] is True
        prestate = act.prestate(params, ctx)
        outputs = act.run(params, ctx)
        new_private = vault["lab-h1-root"]
        assert outputs["private_key"] == "keystore:lab-h1-root@1"
        assert outputs["new_key"] == fingerprint(public_blob(new_private))
        assert outputs["removed_lines"] == 1
        assert _logs_in(lab, new_private, tmp_path)
        assert not _logs_in(lab, old_private, tmp_path)
        after = keys_file.read_text()
        assert after.startswith("# managed by hand\n" + OTHER_LINE)
        assert "posture-rotated r-rotate" in after
        logins = [d for kind, d in records if kind == "login"]
        assert [d["accepted"] for d in logins] == [True, False]
        blob = json.dumps([outputs, prestate, records])
        assert new_private.strip().splitlines()[1] not in blob
        assert not list((tmp_path / "work").iterdir())  # the temporary key files are gone
        # Undo through a session of the new key (the old one no longer gets in).
        new_key = tmp_path / "new"
        new_key.write_text(new_private)
        new_key.chmod(0o600)
        act.compensate(params, _ctx(lab, new_key, tmp_path, vault, records), prestate, outputs)
        assert keys_file.read_bytes() == before
        assert _logs_in(lab, old_private, tmp_path)
        assert not _logs_in(lab, new_private, tmp_path)
    finally:
        keys_file.write_text(original)


def test_rotate_ssh_key_playbook_through_the_cli(lab: NetnsLab, tmp_path: Path) -> None:
    import subprocess
    import sys

    from scanner.respond.keystore import Keystore

    root = Path(__file__).resolve().parents[2]
    keys_file = lab.folder / "h1" / "authorized_keys"
    original = keys_file.read_text()
    key = tmp_path / "current"
    key.write_bytes(lab.key.read_bytes())
    key.chmod(0o600)
    store_key = bytes(range(32))
    env = {
        "POSTURE_JOURNAL": str(tmp_path / "journal" / "respond.sqlite"),
        "POSTURE_KEYSTORE": str(tmp_path / "keystore.sqlite"),
        "POSTURE_KEYSTORE_KEY": store_key.hex(),
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
        with Keystore(tmp_path / "keystore.sqlite", store_key) as store:
            entries = [(e.name, e.version, e.state) for e in store.entries()]
            new_private = store.get(f"ssh-root-{lab.addresses[1]}").reveal()
        assert entries == [(f"ssh-root-{lab.addresses[1]}", 1, "current")]
        assert _logs_in(lab, new_private, tmp_path)
        assert not _logs_in(lab, lab.key.read_text(), tmp_path)
        run_id = json.loads(done.stdout)["run_id"]
        audit = posture("playbook", "audit", run_id, "--verify", "--json")
        assert json.loads(audit.stdout)["verified"] is True
        for line in new_private.strip().splitlines()[1:-1] + lab.key.read_text().splitlines()[1:-1]:
            assert line not in audit.stdout
        journal_bytes = b"".join(
            p.read_bytes() for p in (tmp_path / "journal").rglob("*") if p.is_file()
        )
        assert new_private.splitlines()[1].encode() not in journal_bytes
    finally:
        keys_file.write_text(original)
