"""Schema migrations, WAL and opening databases that are missing, old, newer, or not ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from scanner.errors import ConfigError
from scanner.model import FindingStatus, Host, HostState, ScanStatus, fingerprint
from scanner.store import Store
from scanner.store.schema import LATEST_VERSION, MIGRATIONS, migrate, schema_version

TABLES = {
    "scans",
    "hosts",
    "scan_hosts",
    "services",
    "findings",
    "observations",
    "finding_events",
    "scan_undetermined",
}


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _user_version(path: Path) -> int:
    conn = _raw(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _add_notes_table(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


def _broken(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
    raise RuntimeError("migration bug")


def test_fresh_database_is_at_latest_version_with_every_table(db_path: Path) -> None:
    with Store(db_path) as store:
        assert schema_version(store.db) == LATEST_VERSION == len(MIGRATIONS)
        assert set(store.db.table_names()) >= TABLES
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert _user_version(db_path) == LATEST_VERSION


def test_wal_mode_is_on_and_persists_in_the_file(db_path: Path) -> None:
    Store(db_path).close()
    conn = _raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_older_database_gets_the_missing_migrations_and_keeps_its_rows(db_path: Path) -> None:
    db = sqlite_utils.Database(_raw(db_path))
    assert migrate(db, str(db_path), MIGRATIONS[:1]) == 1
    db.execute(
        "INSERT INTO scans (started, status, targets) VALUES ('2026-01-01T00:00:00Z', "
        "'completed', '[\"127.0.0.1\"]')"
    )
    upgraded = (*MIGRATIONS[:1], _add_notes_table)
    assert migrate(db, str(db_path), upgraded) == 2
    assert schema_version(db) == 2
    assert "notes" in db.table_names()
    assert db.execute("SELECT count(*) FROM scans").fetchone()[0] == 1
    # Applying again is a no-op: a migration runs once.
    assert migrate(db, str(db_path), upgraded) == 2
    db.close()


def test_store_opens_a_version_one_database_and_reads_its_scans(db_path: Path) -> None:
    db = sqlite_utils.Database(_raw(db_path))
    migrate(db, str(db_path), MIGRATIONS[:1])
    db.execute(
        "INSERT INTO scans (started, status, targets) VALUES ('2026-01-01T00:00:00Z', "
        "'interrupted', '[\"127.0.0.1\"]')"
    )
    db.close()
    with Store(db_path) as store:
        assert schema_version(store.db) == LATEST_VERSION
        (scan,) = store.list_scans()
        assert scan.targets == ("127.0.0.1",)


def test_failed_migration_rolls_back_entirely(db_path: Path) -> None:
    db = sqlite_utils.Database(_raw(db_path))
    migrate(db, str(db_path), MIGRATIONS[:1])
    with pytest.raises(RuntimeError, match="migration bug"):
        migrate(db, str(db_path), (*MIGRATIONS[:1], _broken))
    assert schema_version(db) == 1
    assert "half_done" not in db.table_names()
    db.close()


def test_newer_database_is_refused_untouched(db_path: Path) -> None:
    Store(db_path).close()
    conn = _raw(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer than this posture knows") as err:
        Store(db_path)
    assert str(db_path) in str(err.value)
    assert _user_version(db_path) == LATEST_VERSION + 1


def test_a_file_that_is_not_sqlite_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(ConfigError, match="not a usable posture database"):
        Store(path)


def test_read_only_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(ConfigError, match=r"no database at .*missing\.db; run `posture scan`"):
        Store(path, create=False)
    assert not path.exists()


def test_status_and_state_columns_reject_unknown_values(db_path: Path) -> None:
    with Store(db_path) as store, pytest.raises(sqlite3.IntegrityError):
        store.db.execute(
            "INSERT INTO scans (started, status) VALUES ('2026-01-01T00:00:00Z', 'exploded')"
        )


def test_migration_two_upgrades_a_version_one_database_with_findings(db_path: Path) -> None:
    db = sqlite_utils.Database(_raw(db_path))
    migrate(db, str(db_path), MIGRATIONS[:1])
    at = "2026-01-01T00:00:00Z"
    fp = fingerprint("ftp.anonymous", "127.0.0.1", "tcp", 21)
    for sql, values in [
        (
            "INSERT INTO scans (id, started, finished, status, rules, ports_scanned)"
            " VALUES (1, ?, ?, 'completed', '[\"ftp.anonymous\"]', '{\"tcp\": \"21\"}')",
            [at, at],
        ),
        ("INSERT INTO hosts VALUES ('127.0.0.1', NULL, ?, ?, 'up')", [at, at]),
        ("INSERT INTO scan_hosts VALUES (1, '127.0.0.1', NULL, 'up', NULL, ?)", [at]),
        (
            "INSERT INTO findings (fingerprint, rule_id, severity, confidence, title, host, port,"
            " proto, status, first_seen, last_seen, last_scan_id) VALUES (?, 'ftp.anonymous',"
            " 'high', 'certain', 'Anonymous FTP', '127.0.0.1', 21, 'tcp', 'open', ?, ?, 1)",
            [fp, at, at],
        ),
        ("INSERT INTO observations VALUES (1, ?, ?)", [fp, at]),
    ]:
        db.execute(sql, values)
    db.close()
    assert _user_version(db_path) == 1
    with Store(db_path) as store:
        assert schema_version(store.db) == LATEST_VERSION >= 5
        assert store.inventories(1) == {}  # migration 4: the inventories table exists
        assert store.owner_assignments() == {}  # migration 5: owners given by people
        assert store.db["scan_undetermined"].pks == [
            "scan_id",
            "address",
            "proto",
            "port",
            "rule_id",
        ]
        (kept,) = store.findings()
        assert (kept.fingerprint, kept.status, kept.last_scan_id) == (fp, FindingStatus.OPEN, 1)
        # The upgraded database takes undetermined rules, and they keep the old finding open.
        scan = store.create_scan(
            targets=["127.0.0.1"],
            scope=[],
            excludes=[],
            packs=[],
            rules=["ftp.anonymous"],
            options={},
            hosts_total=1,
        )
        host = Host("127.0.0.1", HostState.UP)
        store.record_chunk(
            scan, [host], [], {"tcp": "21"}, [("127.0.0.1", "tcp", 21, "ftp.anonymous")]
        )
        assert store.finish_scan(scan, ScanStatus.COMPLETED).undetermined == 1
        assert store.get_finding(fp).status is FindingStatus.OPEN
    conn = _raw(db_path)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM scan_undetermined").fetchone()[0] == 1
    finally:
        conn.close()


def test_another_programs_database_is_refused_untouched(db_path: Path) -> None:
    conn = _raw(db_path)
    conn.execute("CREATE TABLE bookmarks (url TEXT)")
    conn.close()
    before = db_path.read_bytes()
    for create in (True, False):
        with pytest.raises(ConfigError, match="database of another program"):
            Store(db_path, create=create)
    assert db_path.read_bytes() == before
    assert _user_version(db_path) == 0
