"""PostgreSQL password rotation against a real server: the new password logs in, the old one is
refused, the cleartext never reaches the server log, and the undo puts back the exact old one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scanner.respond.actions.db_password import RotateDbPassword, _logs_in
from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.keystore import Keystore, default_keystore
from scanner.respond.secrets import Redactor, Secret
from tests.respond.postgres import Postgres

OLD = "old-App-password-2026-abcdefgh"
STORE_KEY = bytes(range(32))


class Crash(Exception):
    """Stands for a kill -9 at a chosen point of a run."""


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keystore.sqlite"
    monkeypatch.setenv("POSTURE_KEYSTORE", str(path))
    monkeypatch.setenv("POSTURE_KEYSTORE_KEY", STORE_KEY.hex())
    return path


def _ctx(tmp_path: Path, records: list[Any], crash_on: str = "") -> StepContext:
    """A step context over the real keystore; `crash_on` stops the run right after the
    matching step happened ("put": the new password is stored; "ALTER": the server has it)."""

    def put(name: str, value: Secret) -> str:
        with default_keystore() as store:
            ref = store.put(name, value)
        if crash_on == "put" and not name.endswith(".verifier"):
            raise Crash("killed after storing the new password")
        return ref

    def record(kind: str, data: Any) -> None:
        records.append((kind, dict(data)))
        if crash_on and crash_on in str(data.get("command", "")):
            raise Crash(f"killed after {crash_on}")

    return StepContext(
        run_id="r-db", step_id="rotate", connector=LocalConnector(), timeout=30,
        redactor=Redactor(), secrets=SecretSink(put), workdir=tmp_path, record=record,
    )  # fmt: skip


def _params(pg: Postgres, role: str, old: str = OLD) -> Any:
    return RotateDbPassword().validate({
        "host": pg.host, "port": pg.port, "admin_user": pg.admin,
        "admin_password": Secret("admin", pg.admin_password), "role": role,
        "current_password": Secret("old", old), "keystore_name": f"pg-{role}",
    })  # fmt: skip


def _verifier(pg: Postgres, role: str) -> str:
    query = f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"  # noqa: S608 - our names
    return pg.psql(query).strip()


def test_rotate_then_undo(postgres: Postgres, keystore: Path, tmp_path: Path) -> None:
    postgres.psql(f"CREATE ROLE app1 LOGIN PASSWORD '{OLD}'")
    records: list[Any] = []
    act = RotateDbPassword()
    params = _params(postgres, "app1")
    ctx = _ctx(tmp_path, records)
    plan = act.describe(params, ctx.connector)
    assert any("ALTER ROLE app1" in line for line in plan)
    assert act.probe(params, ctx) == {"current_password_works": True}
    before = _verifier(postgres, "app1")
    prestate = act.prestate(params, ctx)
    assert prestate == {
        "role": "app1",
        "had_password": True,
        "verifier": "keystore:pg-app1.verifier@1",
    }
    outputs = act.run(params, ctx)
    with Keystore(keystore, STORE_KEY) as store:
        new = store.get("pg-app1").reveal()
        assert store.get("pg-app1.verifier").reveal() == before  # the undo's material
    assert outputs == {"role": "app1", "password": "keystore:pg-app1@1", "method": "scram-sha-256"}
    assert len(new) == 32
    assert _logs_in(params, new) and not _logs_in(params, OLD)
    after = _verifier(postgres, "app1")
    assert after.startswith("SCRAM-SHA-256$4096:") and after != before
    assert "ALTER ROLE" in postgres.log and new not in postgres.log  # only the verifier got there
    shown = json.dumps([outputs, prestate, records, plan])
    assert new not in shown and before not in shown and after not in shown
    assert [d["accepted"] for kind, d in records if kind == "login"] == [True, False]
    # Undo: the verifier from the keystore goes back; the old password works again, the new not.
    act.compensate(params, ctx, prestate, outputs)
    assert _verifier(postgres, "app1") == before
    assert _logs_in(params, OLD) and not _logs_in(params, new)
    assert OLD not in postgres.log.split("CREATE ROLE app1", 1)[1].split("\n", 1)[1]


def test_reconcile_after_a_crash_once_the_server_has_it(
    postgres: Postgres, keystore: Path, tmp_path: Path
) -> None:
    postgres.psql(f"CREATE ROLE app3 LOGIN PASSWORD '{OLD}'")
    act, records = RotateDbPassword(), list[Any]()
    params = _params(postgres, "app3")
    prestate = act.prestate(params, _ctx(tmp_path, records))
    with pytest.raises(Crash):
        act.run(params, _ctx(tmp_path, records, crash_on="ALTER ROLE"))
    outputs = act.reconcile(params, _ctx(tmp_path, records), prestate)
    assert outputs == {"role": "app3", "password": "keystore:pg-app3@1", "method": "scram-sha-256"}
    with Keystore(keystore, STORE_KEY) as store:
        assert _logs_in(params, store.get("pg-app3", 1).reveal())
    assert not _logs_in(params, OLD)


def test_a_crash_before_the_server_changes_runs_again(
    postgres: Postgres, keystore: Path, tmp_path: Path
) -> None:
    postgres.psql(f"CREATE ROLE app4 LOGIN PASSWORD '{OLD}'")
    act, records = RotateDbPassword(), list[Any]()
    params = _params(postgres, "app4")
    prestate = act.prestate(params, _ctx(tmp_path, records))
    with pytest.raises(Crash):
        act.run(params, _ctx(tmp_path, records, crash_on="put"))
    assert _logs_in(params, OLD)  # the server never changed
    assert act.reconcile(params, _ctx(tmp_path, records), prestate) is None
    outputs = act.run(params, _ctx(tmp_path, records))
    assert outputs["password"] == "keystore:pg-app4@2"
    with Keystore(keystore, STORE_KEY) as store:
        first, second = (store.get("pg-app4", v).reveal() for v in (1, 2))
    assert _logs_in(params, second) and not _logs_in(params, first) and not _logs_in(params, OLD)


def test_the_admin_cannot_rotate_itself(postgres: Postgres) -> None:
    with pytest.raises(ValidationError, match="admin_user must be another role"):
        _params(postgres, postgres.admin)


def test_rotate_db_password_playbook_through_the_cli(postgres: Postgres, tmp_path: Path) -> None:
    postgres.psql(f"CREATE ROLE app2 LOGIN PASSWORD '{OLD}'")
    root = Path(__file__).resolve().parents[2]
    store_key = STORE_KEY
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
