"""Crashes and concurrent processes: each chunk is all-or-nothing, writers take turns."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storefacts import Facts

from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanStatus
from scanner.store import Store

WORKER = Path(__file__).with_name("store_worker.py")
REPO = Path(__file__).resolve().parents[2]
CRASH_EXIT = 17
PROCESS_TIMEOUT = 120  # seconds; a hung child fails the test instead of hanging it


def _worker(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


def _healthy(path: Path) -> None:
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_a_process_killed_mid_chunk_keeps_earlier_chunks_and_can_resume(
    db_path: Path, store: Store, facts: Facts
) -> None:
    scan = facts.scan(hosts_total=4)
    code, err = _finish(_worker("crash", db_path, scan))
    assert code == CRASH_EXIT, err
    _healthy(db_path)
    with Store(db_path) as reopened:
        assert reopened.done_hosts(scan) == {"127.0.0.1", "127.0.0.2"}
        record = reopened.get_scan(scan)
        assert (record.status, record.hosts_done) == (ScanStatus.RUNNING, 2)
        assert {f.host for f in reopened.findings()} == {"127.0.0.1", "127.0.0.2"}
        assert [h.address for h in reopened.scan_hosts(scan)] == ["127.0.0.1", "127.0.0.2"]
        counts = {
            table: reopened.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in (
                "hosts",
                "services",
                "observations",
                "finding_events",
                "scan_undetermined",
            )
        }
        assert counts == {
            "hosts": 2,
            "services": 2,
            "observations": 2,
            "finding_events": 2,
            "scan_undetermined": 1,
        }
    # The resumed scan stores the rest and closes normally.
    store.record_chunk(scan, [facts.host("127.0.0.3"), facts.host("127.0.0.4")], [], {"tcp": "21"})
    summary = store.finish_scan(scan, ScanStatus.COMPLETED)
    assert (summary.fixed, summary.not_covered) == (0, 0)
    assert len(store.findings(scan_id=scan, statuses=[FindingStatus.OPEN])) == 2
    assert store.get_scan(scan).hosts_done == 4


def test_two_processes_recording_chunks_lose_nothing(
    db_path: Path, tmp_path: Path, store: Store, facts: Facts
) -> None:
    chunks = 25
    scan = facts.scan(hosts_total=2 * 2 * chunks)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in (1, 2)]
    procs = [_worker("write", db_path, scan, i, chunks, ready[i - 1], go) for i in (1, 2)]
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "the writers never became ready"
            assert all(p.poll() is None for p in procs), "a writer died before starting"
            time.sleep(0.01)
        go.touch()  # both start writing at once
        results = [_finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [code for code, _ in results] == [0, 0], results
    _healthy(db_path)
    assert len(store.done_hosts(scan)) == 100
    assert store.get_scan(scan).hosts_done == 100
    found = store.findings(scan_id=scan)
    assert len(found) == 100
    assert {f.status for f in found} == {FindingStatus.OPEN}
    assert store.db.execute("SELECT count(*) FROM finding_events").fetchone()[0] == 100


def test_a_writer_waits_for_the_lock_then_reports_it(db_path: Path) -> None:
    Store(db_path).close()
    holder = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE scans SET error = 'x'")
        with Store(db_path, busy_timeout=0.2) as waiting:
            # Readers are not blocked by the writer (WAL), nor is reading findings when no
            # acceptance has expired ...
            assert waiting.list_scans() == []
            assert waiting.findings() == []
            # ... a second writer is, and says what to do about it.
            with pytest.raises(ConfigError, match="locked by another posture process"):
                waiting.create_scan(
                    targets=[], scope=[], excludes=[], packs=[], rules=[], options={}, hosts_total=0
                )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(db_path) as free:
        assert free.list_scans() == []


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("evidence cannot be serialised")


def test_an_error_mid_chunk_stores_nothing_of_it_and_the_store_goes_on(
    store: Store, facts: Facts
) -> None:
    scan = facts.scan(hosts_total=3)
    store.record_chunk(scan, [facts.host("127.0.0.1")], [facts.finding()], {"tcp": "21"})
    hosts = [facts.host("127.0.0.2", ports=(21, 22)), facts.host("127.0.0.3")]
    findings = [
        facts.finding(host="127.0.0.2"),
        facts.finding(host="127.0.0.3", evidence={"x": _Unprintable()}),  # after the hosts
    ]
    undetermined = [("127.0.0.2", "tcp", 22, "ssh.weak")]
    with pytest.raises(RuntimeError, match="cannot be serialised"):
        store.record_chunk(scan, hosts, findings, {"tcp": "1-100"}, undetermined)
    assert not store.db.conn.in_transaction
    assert store.done_hosts(scan) == {"127.0.0.1"}
    counts = {
        table: store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("hosts", "services", "findings", "observations", "scan_undetermined")
    }
    assert counts == {
        "hosts": 1,
        "services": 1,
        "findings": 1,
        "observations": 1,
        "scan_undetermined": 0,
    }
    assert store.get_scan(scan).hosts_done == 1
    _healthy(store.path)
    findings[1] = facts.finding(host="127.0.0.3")
    summary = store.record_chunk(scan, hosts, findings, {"tcp": "1-100"}, undetermined)
    assert (summary.hosts, summary.new) == (2, 2)
    assert store.get_scan(scan).hosts_done == 3
