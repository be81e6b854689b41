"""The run journal: the audit chain catches an altered, removed or reordered entry; per-target
locks are all-or-nothing, wait for a live holder and never take over from a dead one."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from scanner.respond.journal import Journal, LockHeld, canonical, entry_hash


def _run(journal: Journal, run_id: str, pid: int | None = None) -> None:
    journal.create_run({
        "id": run_id, "playbook_id": "isolate-host", "playbook_version": "1",
        "playbook_path": "/x.yaml", "playbook_sha256": "ab" * 32, "plan_hash": "cd" * 32,
        "inputs": {"host": "10.0.0.5"}, "status": "running", "started": "2026-11-24T00:00:00",
        "pid": pid or os.getpid(), "hostname": os.uname().nodename, "actor": "tester@here",
        "workdir": "/tmp/x",
    })  # fmt: skip


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "respond.sqlite")
    _run(j, "r1")
    for i in range(5):
        j.audit("r1", f"kind{i}", {"i": i, "text": "x" * i}, "tester@here")
    yield j
    j.close()


def test_intact_chain_verifies_and_is_linked(journal: Journal) -> None:
    entries = journal.audit_entries("r1")
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert journal.verify_audit("r1") == []
    assert entries[0].prev == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.prev == before.hash
    e = entries[2]
    assert e.hash == entry_hash(e.prev, "r1", 3, e.at, e.actor, e.kind, canonical(e.data))
    assert journal.run("r1").audit_head == entries[-1].hash


def _raw(journal: Journal) -> sqlite3.Connection:
    return sqlite3.connect(journal.path, isolation_level=None)


def test_an_altered_entry_is_found(journal: Journal) -> None:
    with _raw(journal) as db:
        db.execute('UPDATE audit SET data = \'{"i":2,"text":"yy"}\' WHERE seq = 3')
    problems = journal.verify_audit("r1")
    assert problems == ["entry 3 (kind2) was altered after it was written"]


def test_a_removed_entry_is_found(journal: Journal) -> None:
    with _raw(journal) as db:
        db.execute("DELETE FROM audit WHERE seq = 2")
    problems = journal.verify_audit("r1")
    assert any("entry 3 is where entry 2 should be" in p for p in problems)
    assert any("does not follow" in p for p in problems)


def test_a_removed_last_entry_is_found(journal: Journal) -> None:
    with _raw(journal) as db:
        db.execute("DELETE FROM audit WHERE seq = 5")
    assert any("entries were removed or added" in p for p in journal.verify_audit("r1"))


def test_reordered_entries_are_found(journal: Journal) -> None:
    with _raw(journal) as db:
        rows = db.execute("SELECT * FROM audit WHERE seq IN (2, 3) ORDER BY seq").fetchall()
        db.execute("DELETE FROM audit WHERE seq IN (2, 3)")
        for row in reversed(rows):
            db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    problems = journal.verify_audit("r1")
    assert any("reordered" in p for p in problems)


def test_an_entry_rewritten_with_a_fresh_hash_still_breaks_the_chain(journal: Journal) -> None:
    """Recomputing the altered entry's own hash is not enough: the next entry points at the old."""
    e = journal.audit_entries("r1")[1]
    data = canonical({"i": 1, "text": "forged"})
    forged = entry_hash(e.prev, "r1", e.seq, e.at, e.actor, e.kind, data)
    with _raw(journal) as db:
        db.execute("UPDATE audit SET data = ?, hash = ? WHERE seq = 2", (data, forged))
    assert journal.verify_audit("r1") == ["entry 3 does not follow the entry before it"]


def test_locks_are_all_or_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        _run(j, "a")
        _run(j, "b")
        j.lock(["ssh:10.0.0.1", "ssh:10.0.0.2"], "a", wait=0)
        with pytest.raises(LockHeld, match=r"ssh:10\.0\.0\.2 is held by run a"):
            j.lock(["ssh:10.0.0.3", "ssh:10.0.0.2"], "b", wait=0)
        assert {row["target"] for row in j.locks()} == {"ssh:10.0.0.1", "ssh:10.0.0.2"}
        j.lock(["ssh:10.0.0.1"], "a", wait=0)  # a run may take its own lock again (resume)
        j.unlock("a")
        j.lock(["ssh:10.0.0.3", "ssh:10.0.0.2"], "b", wait=0)
        assert {row["run_id"] for row in j.locks()} == {"b"}


def test_a_second_run_waits_for_a_live_holder(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        _run(j, "a")
        _run(j, "b")
        j.lock(["ssh:10.0.0.1"], "a", wait=0)
        timer = threading.Timer(0.5, j.unlock, args=("a",))
        timer.start()
        try:
            j.lock(["ssh:10.0.0.1"], "b", wait=10)
        finally:
            timer.cancel()
        assert [row["run_id"] for row in j.locks()] == ["b"]


def test_a_dead_holder_is_never_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Journal(tmp_path / "j.sqlite") as j:
        _run(j, "a", pid=dead.pid)
        _run(j, "b")
        j.lock(["ssh:10.0.0.1"], "a", wait=0)
        with j._write() as db:  # the holder's row as its own (dead) process left it
            db.execute("UPDATE locks SET pid = ?", (dead.pid,))
        assert j.run("a").crashed
        with pytest.raises(LockHeld, match="stopped without finishing: resume it"):
            j.lock(["ssh:10.0.0.1"], "b", wait=30)


def _rewrite_whole_chain(path: Path, run_id: str, seq: int, text: str) -> None:
    """What a careful forger with write access does: change an entry and recompute every
    later hash and the run's head, so the chain itself looks whole."""
    with sqlite3.connect(path, isolation_level=None) as db:
        rows = db.execute(
            "SELECT seq, at, actor, kind, data FROM audit WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
        prev = "0" * 64
        for number, at, who, kind, data in rows:
            if number == seq:
                data = canonical({"forged": text})
            digest = entry_hash(prev, run_id, number, at, who, kind, data)
            db.execute(
                "UPDATE audit SET data = ?, prev = ?, hash = ? WHERE run_id = ? AND seq = ?",
                (data, prev, digest, run_id, number),
            )
            prev = digest
        db.execute("UPDATE runs SET audit_head = ? WHERE id = ?", (prev, run_id))


def _signed_run(tmp_path: Path, key: bytes | None) -> Journal:
    j = Journal(tmp_path / "signed.sqlite", key=key)
    workdir = tmp_path / "run"
    workdir.mkdir()
    j.create_run({
        "id": "s1", "playbook_id": "p", "playbook_version": "1", "playbook_path": "/p.yaml",
        "playbook_sha256": "0" * 64, "plan_hash": "1" * 64, "inputs": {}, "status": "running",
        "started": "2026-11-24T00:00:00", "pid": os.getpid(), "hostname": os.uname().nodename,
        "actor": "t", "workdir": str(workdir),
    })  # fmt: skip
    for i in range(4):
        j.audit("s1", "k", {"i": i}, "t")
    return j


def test_the_copy_beside_the_run_catches_a_rewritten_chain(tmp_path: Path) -> None:
    j = _signed_run(tmp_path, key=None)
    copy = (tmp_path / "run" / "audit.jsonl").read_text().splitlines()
    assert len(copy) == 4 and oct((tmp_path / "run" / "audit.jsonl").stat().st_mode)[-3:] == "600"
    assert j.verify_audit("s1") == []
    _rewrite_whole_chain(j.path, "s1", 2, "nothing happened")
    assert j.verify_audit("s1") == ["entry 2 differs from its copy in audit.jsonl"]
    j.close()


def test_the_audit_key_catches_a_rewrite_of_both_copies(tmp_path: Path) -> None:
    key = b"k" * 32
    j = _signed_run(tmp_path, key=key)
    assert j.verify_audit("s1") == []
    _rewrite_whole_chain(j.path, "s1", 3, "nothing happened")
    (tmp_path / "run" / "audit.jsonl").unlink()  # and the forger removed the copy
    problems = j.verify_audit("s1")
    assert "entry 3's signature does not match" in problems[0]
    assert "audit.jsonl is missing or unreadable" in problems
    j.close()
    with Journal(j.path, key=b"x" * 32) as other:  # a wrong key fails every entry
        assert len([p for p in other.verify_audit("s1") if "signature" in p]) == 4


def test_the_audit_key_comes_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.respond.errors import RespondError
    from scanner.respond.journal import audit_key

    monkeypatch.delenv("POSTURE_AUDIT_KEY", raising=False)
    key_file = tmp_path / "audit.key"
    key_file.write_text("0123456789abcdef0123\n")
    key_file.chmod(0o644)
    monkeypatch.setenv("POSTURE_AUDIT_KEY_FILE", str(key_file))
    with pytest.raises(RespondError, match="chmod 600"):
        audit_key()
    key_file.chmod(0o600)
    assert audit_key() == b"0123456789abcdef0123"
    monkeypatch.setenv("POSTURE_AUDIT_KEY", "short")
    with pytest.raises(RespondError, match="at least 16"):
        audit_key()
