"""The findings database schema as an ordered list of migrations, tracked in PRAGMA user_version.

Migration N brings a database from version N-1 to N; opening a database applies the missing ones
in one transaction. The tables are written as SQL so that CHECK constraints guard the enums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlite_utils

from scanner.errors import ConfigError

Migration = Callable[[sqlite_utils.Database], None]

_HOST_STATES = "'up', 'down', 'timeout', 'error'"
_FINDING_STATUSES = "'open', 'fixed', 'reopened', 'risk_accepted', 'false_positive'"
_SCAN_STATUSES = "'running', 'completed', 'failed', 'interrupted'"
_SEVERITIES = "'critical', 'high', 'medium', 'low', 'info'"
_CONFIDENCES = "'certain', 'firm', 'tentative'"

_INITIAL_SCHEMA = f"""
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL CHECK (status IN ({_SCAN_STATUSES})),
    targets TEXT NOT NULL DEFAULT '[]',
    scope TEXT NOT NULL DEFAULT '[]',
    excludes TEXT NOT NULL DEFAULT '[]',
    packs TEXT NOT NULL DEFAULT '[]',
    rules TEXT NOT NULL DEFAULT '[]',          -- ids of the rules evaluated: what it can close
    options TEXT NOT NULL DEFAULT '{{}}',
    ports_scanned TEXT NOT NULL DEFAULT '{{}}', -- {{"tcp": "1,3-4,80", "udp": ...}}
    hosts_total INTEGER NOT NULL DEFAULT 0,
    hosts_done INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

-- first_seen/last_seen: when a scan first/last recorded the address, in whatever state.
CREATE TABLE hosts (
    address TEXT PRIMARY KEY,
    hostname TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_state TEXT NOT NULL CHECK (last_state IN ({_HOST_STATES}))
);

-- One row per host a scan finished with, whatever came of it: resume and coverage read this.
CREATE TABLE scan_hosts (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    address TEXT NOT NULL REFERENCES hosts(address),
    hostname TEXT,
    state TEXT NOT NULL CHECK (state IN ({_HOST_STATES})),
    reason TEXT,
    finished TEXT NOT NULL,
    PRIMARY KEY (scan_id, address)
);

CREATE TABLE services (
    scan_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    proto TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT,
    product TEXT,
    version TEXT,
    extrainfo TEXT,
    tunnel TEXT,
    method TEXT,
    conf INTEGER,
    cpe TEXT NOT NULL DEFAULT '[]',
    banner TEXT,
    checks TEXT NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (scan_id, address, proto, port),
    FOREIGN KEY (scan_id, address) REFERENCES scan_hosts(scan_id, address)
);

CREATE TABLE findings (
    fingerprint TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ({_SEVERITIES})),
    confidence TEXT NOT NULL CHECK (confidence IN ({_CONFIDENCES})),
    title TEXT NOT NULL,
    host TEXT NOT NULL,
    hostname TEXT,
    port INTEGER,
    proto TEXT,
    discriminator TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '{{}}',
    cves TEXT NOT NULL DEFAULT '[]',
    controls TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL CHECK (status IN ({_FINDING_STATUSES})),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_scan_id INTEGER NOT NULL REFERENCES scans(id),
    fixed_at TEXT,
    sla_due TEXT,
    status_note TEXT,
    accept_expires TEXT,
    status_by TEXT
);

CREATE TABLE observations (
    scan_id INTEGER NOT NULL REFERENCES scans(id),
    fingerprint TEXT NOT NULL REFERENCES findings(fingerprint),
    seen_at TEXT NOT NULL,
    PRIMARY KEY (scan_id, fingerprint)
);

-- Every status change, so the state of any finding at any past moment can be rebuilt.
CREATE TABLE finding_events (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL REFERENCES findings(fingerprint),
    scan_id INTEGER REFERENCES scans(id),
    at TEXT NOT NULL,
    from_status TEXT CHECK (from_status IN ({_FINDING_STATUSES})),
    to_status TEXT NOT NULL CHECK (to_status IN ({_FINDING_STATUSES})),
    note TEXT,
    actor TEXT
);

CREATE INDEX idx_scan_hosts_address ON scan_hosts(address);
CREATE INDEX idx_services_address ON services(address, proto, port);
CREATE INDEX idx_findings_status ON findings(status);
CREATE INDEX idx_findings_severity ON findings(severity);
CREATE INDEX idx_findings_host ON findings(host, port);
CREATE INDEX idx_findings_hostname ON findings(hostname);
CREATE INDEX idx_findings_port ON findings(port, proto);
CREATE INDEX idx_findings_rule ON findings(rule_id);
CREATE INDEX idx_findings_last_scan ON findings(last_scan_id);
CREATE INDEX idx_observations_fingerprint ON observations(fingerprint, scan_id);
CREATE INDEX idx_finding_events_fingerprint ON finding_events(fingerprint, id);
"""


_UNDETERMINED_SCHEMA = """
-- Rules a scan could not decide on a port: the active check applied but got no answer. A finding
-- of that rule there is neither seen nor fixed by that scan.
CREATE TABLE scan_undetermined (
    scan_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    proto TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    rule_id TEXT NOT NULL,
    PRIMARY KEY (scan_id, address, proto, port, rule_id),
    FOREIGN KEY (scan_id, address) REFERENCES scan_hosts(scan_id, address)
) WITHOUT ROWID
"""


def _statements(db: sqlite_utils.Database, script: str) -> None:
    # executescript() would COMMIT the surrounding transaction, so one statement at a time.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _initial_schema(db: sqlite_utils.Database) -> None:
    _statements(db, _INITIAL_SCHEMA)


def _undetermined_checks(db: sqlite_utils.Database) -> None:
    _statements(db, _UNDETERMINED_SCHEMA)


_TLS_SCHEMA = """
-- The full TLS assessment of each TLS port a scan assessed (posture tls --json's document), the
-- flat facts rules matched are in services.checks.
CREATE TABLE tls_endpoints (
    scan_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    sni TEXT,
    starttls TEXT,
    grade TEXT,
    error TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (scan_id, address, port),
    FOREIGN KEY (scan_id, address) REFERENCES scan_hosts(scan_id, address)
) WITHOUT ROWID
"""


def _tls_endpoints(db: sqlite_utils.Database) -> None:
    _statements(db, _TLS_SCHEMA)


_INVENTORY_SCHEMA = """
-- What an authenticated inventory (--local / --ssh) read of a host in a scan: the OS release,
-- kernel and sshd settings as columns, the package list as zlib-compressed JSON
-- ([[name, version, arch, source, source_version], ...]): a Debian host lists ~1,500 packages.
CREATE TABLE host_inventories (
    scan_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    inventoried_as TEXT NOT NULL,
    os_id TEXT,
    os_version TEXT,
    os_name TEXT,
    kernel TEXT,
    manager TEXT,
    package_count INTEGER NOT NULL,
    packages BLOB NOT NULL,
    sshd TEXT NOT NULL,
    warnings TEXT NOT NULL,
    PRIMARY KEY (scan_id, address),
    FOREIGN KEY (scan_id, address) REFERENCES scan_hosts(scan_id, address)
) WITHOUT ROWID
"""


def _host_inventories(db: sqlite_utils.Database) -> None:
    _statements(db, _INVENTORY_SCHEMA)


_OWNER_SCHEMA = """
-- Owners people give single findings (`posture findings assign`), over posture.toml's [[owners]].
-- Append only: each row is one change, the latest of a finding is in force (owner NULL: cleared).
CREATE TABLE owner_assignments (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL REFERENCES findings(fingerprint),
    at TEXT NOT NULL,
    owner TEXT,
    contact TEXT,
    note TEXT,
    actor TEXT
);
CREATE INDEX idx_owner_assignments_fingerprint ON owner_assignments(fingerprint, id)
"""


def _owner_assignments(db: sqlite_utils.Database) -> None:
    _statements(db, _OWNER_SCHEMA)


MIGRATIONS: tuple[Migration, ...] = (
    _initial_schema,
    _undetermined_checks,
    _tls_endpoints,
    _host_inventories,
    _owner_assignments,
)
"""Append only: never edit a migration that has shipped, add the next one instead."""

LATEST_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _has_tables(db: sqlite_utils.Database) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"
        " LIMIT 1"
    ).fetchone()
    return row is not None


def _check_version(db: sqlite_utils.Database, where: str, migrations: Sequence[Migration]) -> int:
    current = schema_version(db)
    if current > len(migrations):
        raise ConfigError(
            f"{where} has schema version {current}, newer than this posture knows "
            f"({len(migrations)}); upgrade posture or use another --db"
        )
    return current


def migrate(
    db: sqlite_utils.Database, where: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring `db` to the latest version in one write transaction; return the version reached.

    A database from a newer posture, or another program's database, is refused rather than
    guessed at (or written into). `where` names the file in messages.
    """
    if db.conn.in_transaction:
        raise RuntimeError("migrate() needs a connection outside any transaction")
    # Up to date is the common case: no writer lock, so opening never waits for a running scan.
    if _check_version(db, where, migrations) == len(migrations):
        return len(migrations)
    # Take the writer lock, then look again: two processes opening one old database must not
    # both migrate it.
    db.execute("BEGIN IMMEDIATE")
    try:
        current = _check_version(db, where, migrations)
        if current == 0 and _has_tables(db):
            raise ConfigError(
                f"{where} is an SQLite database of another program (it has tables but no "
                "posture schema version); give another --db or move the file away"
            )
        for version, migration in enumerate(migrations[current:], start=current + 1):
            migration(db)
            db.execute(f"PRAGMA user_version = {version:d}")
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    return len(migrations)
