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
            db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
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
