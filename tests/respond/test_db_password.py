"""PostgreSQL password rotation against a real server: the new password logs in, the old one is
refused, the cleartext never reaches the server log, and the undo puts back the exact old one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scanner.respond.actions.db_password import RotateDbPassword, _logs_in
from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.secrets import Redactor, Secret
from tests.respond.postgres import Postgres

OLD = "old-App-password-2026-abcdefgh"


def _ctx(tmp_path: Path, vault: dict[str, str], records: list[Any]) -> StepContext:
    def put(name: str, value: Secret) -> str:
        vault[name] = value.reveal()
        return f"keystore:{name}@1"

    return StepContext(
        run_id="r-db", step_id="rotate", connector=LocalConnector(), timeout=30,
        redactor=Redactor(), secrets=SecretSink(put), workdir=tmp_path,
        record=lambda kind, data: records.append((kind, dict(data))),
    )  # fmt: skip


def _params(pg: Postgres, role: str) -> Any:
    return RotateDbPassword().validate({
        "host": pg.host, "port": pg.port, "admin_user": pg.admin,
        "admin_password": Secret("admin", pg.admin_password), "role": role,
        "current_password": Secret("old", OLD), "keystore_name": f"pg-{role}",
    })  # fmt: skip


def test_rotate_then_undo(postgres: Postgres, tmp_path: Path, monkeypatch: Any) -> None:
    postgres.psql(f"CREATE ROLE app1 LOGIN PASSWORD '{OLD}'")
    vault: dict[str, str] = {}
    records: list[Any] = []
    act = RotateDbPassword()
    params = _params(postgres, "app1")
    ctx = _ctx(tmp_path, vault, records)
    assert act.probe(params, ctx) == {"current_password_works": True}
    before = postgres.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app1'").strip()
    prestate = act.prestate(params, ctx)
    assert prestate == {
        "role": "app1",
        "had_password": True,
        "verifier": "keystore:pg-app1.verifier@1",
    }
    assert vault["pg-app1.verifier"] == before
    outputs = act.run(params, ctx)
    new = vault["pg-app1"]
    assert outputs == {"role": "app1", "password": "keystore:pg-app1@1", "method": "scram-sha-256"}
    assert len(new) == 32
    assert _logs_in(params, new) and not _logs_in(params, OLD)
    after = postgres.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app1'").strip()
    assert after.startswith("SCRAM-SHA-256$4096:") and after != before
    assert "ALTER ROLE" in postgres.log and new not in postgres.log  # only the verifier got there
    assert new not in json.dumps([outputs, prestate, records])
    assert [d["accepted"] for kind, d in records if kind == "login"] == [True, False]
    # Undo: the verifier from the keystore goes back; the old password works again, the new not.
    monkeypatch.setattr(
        "scanner.respond.credentials.resolve", lambda ref: Secret(ref, vault["pg-app1.verifier"])
    )
    act.compensate(params, ctx, prestate, outputs)
    assert (
        postgres.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app1'").strip() == before
    )
    assert _logs_in(params, OLD) and not _logs_in(params, new)


def test_rotate_db_password_playbook_through_the_cli(postgres: Postgres, tmp_path: Path) -> None:
    from scanner.respond.keystore import Keystore

    postgres.psql(f"CREATE ROLE app2 LOGIN PASSWORD '{OLD}'")
    root = Path(__file__).resolve().parents[2]
    store_key = bytes(range(32))
    admin = tmp_path / "admin-pw"
    admin.write_text(postgres.admin_password)
    admin.chmod(0o600)
    env = {
        "POSTURE_JOURNAL": str(tmp_path / "journal" / "respond.sqlite"),
        "POSTURE_KEYSTORE": str(tmp_path / "keystore.sqlite"),
        "POSTURE_KEYSTORE_KEY": store_key.hex(), "POSTURE_APP2_OLD": OLD,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(root),
    }  # fmt: skip
    inputs = ["-i", f"host={postgres.host}", "-i", f"port={postgres.port}", "-i", "role=app2",
              "-i", f"admin_user={postgres.admin}", "-i", f"admin_password=file:{admin}",
              "-i", "current_password=env:POSTURE_APP2_OLD"]  # fmt: skip

    def posture(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True,
                              text=True, timeout=300, env=env, cwd=root)  # fmt: skip

    plan = posture("playbook", "plan", "rotate-db-password", *inputs, "--json")
    assert plan.returncode == 0, plan.stderr
    document = json.loads(plan.stdout)
    done = posture("playbook", "run", "rotate-db-password", *inputs, "--approve", "all",
                   "--plan-hash", document["plan_hash"], "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Keystore(tmp_path / "keystore.sqlite", store_key) as store:
        new = store.get("pg-app2").reveal()
        states = {(e.name, e.state) for e in store.entries()}
    assert ("pg-app2", "current") in states
    params = _params(postgres, "app2")
    assert _logs_in(params, new) and not _logs_in(params, OLD)
    run_id = json.loads(done.stdout)["run_id"]
    audit = posture("playbook", "audit", run_id, "--verify", "--json")
    assert json.loads(audit.stdout)["verified"] is True
    for text in (audit.stdout, done.stdout, done.stderr, plan.stdout):
        assert new not in text and OLD not in text and postgres.admin_password not in text
    assert new not in postgres.log
    after_create = postgres.log.split("CREATE ROLE app2", 1)[1].split("\n", 1)[1]
    assert OLD not in after_create  # the test's own CREATE ROLE logged it; nothing since
