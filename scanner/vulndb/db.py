"""The advisory database: one SQLite file built from OSV, NVD CVE 2.0, CISA KEV and FIRST EPSS
files (read by scanner/vulndb/importers.py), and the lookups a scan makes against it.

Imports are atomic: they build a copy of the database beside it and rename it into place only
when every file was read, so a bad or truncated file leaves the previous database as it was.
The file is never written in place, so readers never wait and need no WAL: they keep reading
the old file until they reopen.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from scanner.model import EPSS_NOTABLE as MODEL_EPSS_NOTABLE
from scanner.vulndb.importers import VulnDbError, detect_format
from scanner.vulndb.keys import encode
from scanner.vulndb.reading import read_batches
from scanner.vulndb.rows import Batch, cpe_keys, keyed, range_spans
from scanner.vulndb.versions import Ecosystem, VersionError

SCHEMA_VERSION = 3
DEFAULT_PATH = Path.home() / ".local" / "share" / "posture" / "vulndb.sqlite"
BATCH = 5000  # advisories per executemany round
# EPSS probability from which a match ranks right after KEV ones (one definition, the model's).
EPSS_NOTABLE = MODEL_EPSS_NOTABLE
SUMMARY_CHARS = 300  # of a Match; the database keeps 2,000

CPE_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "openssh": (("openbsd", "openssh"),),
    "apache_httpd": (("apache", "http_server"),),
    "nginx": (("f5", "nginx"), ("nginx", "nginx")),  # NVD moved nginx to F5 in 2022
    "openssl": (("openssl", "openssl"),),
    "vsftpd": (("vsftpd_project", "vsftpd"), ("beasts", "vsftpd")),  # "beasts" before 2011
    "proftpd": (("proftpd", "proftpd"),),
    "exim": (("exim", "exim"),),
    "postfix": (("postfix", "postfix"),),
    "redis": (("redis", "redis"), ("redislabs", "redis")),  # NVD filed 2015-2021 under redislabs
    "mysql": (("oracle", "mysql"), ("mysql", "mysql"), ("oracle", "mysql_server")),
    "mariadb": (("mariadb", "mariadb"),),
    "postgresql": (("postgresql", "postgresql"),),
    "iis": (("microsoft", "internet_information_services"), ("microsoft", "iis")),
    "samba": (("samba", "samba"),),
    "elasticsearch": (("elastic", "elasticsearch"), ("elasticsearch", "elasticsearch")),
}
"""Product key -> the NVD (vendor, product) names it has been filed under, for lookups that
bring no CPE of their own."""

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, records INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, summary TEXT, published TEXT, modified TEXT,
    cvss_score REAL, cvss_vector TEXT, severity TEXT, aliases TEXT NOT NULL DEFAULT '[]',
    refs TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS affected (
    advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
    events TEXT NOT NULL, versions TEXT NOT NULL, release TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS cpe_matches (
    advisory_id TEXT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL, version TEXT,
    start_including TEXT, start_excluding TEXT, end_including TEXT, end_excluding TEXT,
    vulnerable INTEGER NOT NULL DEFAULT 1, key_from BLOB, key_below BLOB, fixed TEXT
);
CREATE TABLE IF NOT EXISTS osv_spans (
    advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
    release TEXT NOT NULL, key_from BLOB NOT NULL, key_below BLOB NOT NULL, fixed TEXT
);
CREATE TABLE IF NOT EXISTS cpe_facts (
    vendor TEXT NOT NULL, product TEXT NOT NULL, advisory_id TEXT NOT NULL, source TEXT NOT NULL,
    summary TEXT, cvss_score REAL, cvss_vector TEXT, severity TEXT, aliases TEXT NOT NULL,
    PRIMARY KEY (vendor, product, advisory_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware INTEGER,
    vendor TEXT, product TEXT, name TEXT, source TEXT NOT NULL DEFAULT 'catalog'
);
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL, percentile REAL, date TEXT);
"""
# key_from/key_below: the versions a row covers, [key_from, key_below) in the byte encoding of
# scanner/vulndb/keys.py (see scanner/vulndb/spans.py); NULL in cpe_matches when the criterion
# covers nothing a lookup may claim. fixed: the fix a match names (a range's excluded end).
# kev.source: 'catalog' (CISA's file) or 'nvd' (NVD's copy of it).
# cpe_facts: what a match says of each advisory a product's criteria cover, kept beside the
# product's other advisories (derived from advisories and cpe_matches after each import), so
# that a lookup reads its hits' facts from a few neighbouring pages, not one page per advisory.
#
# Indexes are dropped during a bulk import and built once after it: cheaper than maintaining
# them row by row.
_INDEXES = {
    "affected_package": "CREATE INDEX IF NOT EXISTS affected_package"
    " ON affected (ecosystem, package, release)",
    # A lookup reads only the index entries of its product up to its version (never the
    # table): the covering ones name the advisory and the fix.
    "cpe_range": "CREATE INDEX IF NOT EXISTS cpe_range"
    " ON cpe_matches (vendor, product, key_from, key_below, advisory_id, fixed)",
    "osv_range": "CREATE INDEX IF NOT EXISTS osv_range"
    " ON osv_spans (ecosystem, package, key_from, key_below, release)",
    "aliases_alias": "CREATE INDEX IF NOT EXISTS aliases_alias ON aliases (alias)",
    "affected_advisory": "CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory_id)",
    "cpe_advisory": "CREATE INDEX IF NOT EXISTS cpe_advisory ON cpe_matches (advisory_id)",
    "aliases_advisory": "CREATE INDEX IF NOT EXISTS aliases_advisory ON aliases (advisory_id)",
    "spans_advisory": "CREATE INDEX IF NOT EXISTS spans_advisory ON osv_spans (advisory_id)",
}
_ROW_TABLES = ("affected", "cpe_matches", "aliases", "osv_spans")  # rows of one advisory


def _derive_spans(db: sqlite3.Connection) -> None:
    """What schema 3 derives from the rows a schema 2 database holds (the criteria's keys, the
    OSV spans, cpe_facts), a page of rows at a time: no feed needs importing again."""
    last = 0
    while rows := db.execute(
        "SELECT rowid, version, start_including, start_excluding, end_including, end_excluding,"
        " vulnerable FROM cpe_matches WHERE rowid > ? ORDER BY rowid LIMIT 5000",
        (last,),
    ).fetchall():
        db.executemany(
            "UPDATE cpe_matches SET key_from = ?, key_below = ?, fixed = ? WHERE rowid = ?",
            [(*cpe_keys(row[1:]), row[0]) for row in rows],
        )
        last = rows[-1][0]
    db.execute("DELETE FROM osv_spans")
    last = 0
    while rows := db.execute(
        "SELECT rowid, advisory_id, ecosystem, release, package, events, versions FROM affected"
        " WHERE rowid > ? ORDER BY rowid LIMIT 5000",
        (last,),
    ).fetchall():
        spans = []
        for _, advisory_id, ecosystem, release, package, events, versions in rows:
            pairs = [next(iter(e.items())) for e in json.loads(events)]
            for span in range_spans(advisory_id, ecosystem, pairs, json.loads(versions)):
                spans.append((advisory_id, ecosystem, release, package, *span))
        db.executemany(_INSERT_SPAN, spans)
        last = rows[-1][0]
    db.execute("DELETE FROM cpe_facts")
    _derive_facts(db, 0, 0)


_MIGRATIONS: dict[int, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
    # 1 -> 2: distro release of an OSV range; NVD's vulnerable flag (v1 kept vulnerable only).
    1: (
        "ALTER TABLE affected ADD COLUMN release TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE cpe_matches ADD COLUMN vulnerable INTEGER NOT NULL DEFAULT 1",
        "DROP INDEX IF EXISTS affected_package",
    ),
    # 2 -> 3: version ranges as spans of encoded versions; where a KEV row came from.
    2: (
        "ALTER TABLE cpe_matches ADD COLUMN key_from BLOB",
        "ALTER TABLE cpe_matches ADD COLUMN key_below BLOB",
        "ALTER TABLE cpe_matches ADD COLUMN fixed TEXT",
        "ALTER TABLE kev ADD COLUMN source TEXT NOT NULL DEFAULT 'catalog'",
        "DROP INDEX IF EXISTS cpe_product",
        _derive_spans,
    ),
}


# --- opening -------------------------------------------------------------------------------------


def _schema_version(db: sqlite3.Connection) -> int | None:
    try:
        found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return int(found[0]) if found else None


def _open_for_import(path: Path) -> sqlite3.Connection:
    """The (temporary copy of the) database, created or migrated to SCHEMA_VERSION."""
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.executescript(_TABLES)
        version = _schema_version(db) or SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise VulnDbError(f"schema {version} is newer than this posture's {SCHEMA_VERSION}")
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step]:
                if isinstance(statement, str):
                    db.execute(statement)
                else:
                    statement(db)
        for statement in _INDEXES.values():
            db.execute(statement)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise VulnDbError(f"not an advisory database ({exc})") from None
    except VulnDbError:
        db.close()
        raise
    return db


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise VulnDbError(f"{path}: no advisory database; run `posture vulndb import FILE`")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    version = _schema_version(db)
    if version != SCHEMA_VERSION:
        db.close()
        if version is None:
            raise VulnDbError(
                f"{path}: not an advisory database, this posture reads schema {SCHEMA_VERSION};"
                " build one with `posture vulndb import FILE`"
            )
        if version > SCHEMA_VERSION:
            raise VulnDbError(
                f"{path}: schema {version}, built by a newer posture than this one (which reads"
                f" schema {SCHEMA_VERSION}); upgrade posture or re-import into another file"
            )
        raise VulnDbError(
            f"{path}: schema {version}, built by an older posture: this posture reads schema"
            f" {SCHEMA_VERSION}; `posture vulndb import FILE` migrates it"
        )
    return db


# --- import --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    files: tuple[tuple[str, str, int], ...]  # (file, format, records)
    advisories: int  # in the database afterwards
    seconds: float


_INSERT_ADVISORY = (
    "INSERT OR REPLACE INTO advisories (id, source, summary, published, modified, cvss_score,"
    " cvss_vector, severity, aliases, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_AFFECTED = (
    "INSERT INTO affected (advisory_id, ecosystem, release, package, events, versions)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CPE = (
    "INSERT INTO cpe_matches (advisory_id, vendor, product, version, start_including,"
    " start_excluding, end_including, end_excluding, vulnerable, key_from, key_below, fixed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SPAN = (
    "INSERT INTO osv_spans (advisory_id, ecosystem, release, package, key_from, key_below, fixed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# CISA's catalog has the last word on a CVE (it alone has the ransomware flag); NVD's copy of
# an entry only fills a gap, or updates an earlier copy of NVD's.
_INSERT_KEV = (
    "INSERT OR REPLACE INTO kev (cve, date_added, due_date, ransomware, vendor, product, name,"
    " source) VALUES (?, ?, ?, ?, ?, ?, ?, 'catalog')"
)
_INSERT_NVD_KEV = (
    "INSERT INTO kev (cve, date_added, due_date, ransomware, vendor, product, name, source)"
    " VALUES (?, ?, ?, NULL, NULL, NULL, ?, 'nvd') ON CONFLICT (cve) DO UPDATE SET"
    " date_added = excluded.date_added, due_date = excluded.due_date, name = excluded.name"
    " WHERE kev.source = 'nvd'"
)
_INSERT_EPSS = "INSERT OR REPLACE INTO epss VALUES (?, ?, ?, ?)"


class _Writer:
    """Writes row batches in executemany rounds. An advisory imported again replaces its rows:
    the rows it had before the import (rowid at most `before`) go in one pass at the end, as
    the import runs without indexes; a repeat within one import is deleted at once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # INSERT OR REPLACE gives a replaced advisory a new rowid, so rowids above these tell
        # this import's rows from the earlier ones without any index.
        self.before = {
            table: int(
                db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]  # noqa: S608
            )
            for table in (*_ROW_TABLES, "advisories")
        }
        db.execute("CREATE TEMP TABLE replaced (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, batches: Iterable[Batch]) -> int:
        """Every batch written; the number of records they came from."""
        count = 0
        for batch in batches:
            self.write(batch)
            count += batch.records
        return count

    def write(self, batch: Batch) -> None:
        db = self.db
        if batch.kev:
            db.executemany(_INSERT_KEV, batch.kev)
        if batch.epss:
            db.executemany(_INSERT_EPSS, batch.epss)
        if not batch.ids:
            return
        existing = db.execute(
            "SELECT json_group_array(id) FILTER (WHERE rowid <= ?1),"
            " json_group_array(id) FILTER (WHERE rowid > ?1)"
            " FROM advisories WHERE id IN (SELECT value FROM json_each(?2))",
            (self.before["advisories"], json.dumps(batch.ids)),
        ).fetchone()
        earlier, again = existing if existing[0] is not None else ("[]", "[]")
        if earlier != "[]":
            db.execute(
                "INSERT OR IGNORE INTO temp.replaced SELECT value FROM json_each(?)", (earlier,)
            )
        if again != "[]":  # the same advisory twice in one import (a feed and its update)
            for table in _ROW_TABLES:
                db.execute(
                    f"DELETE FROM {table} WHERE rowid > ?"  # noqa: S608
                    " AND advisory_id IN (SELECT value FROM json_each(?))",
                    (self.before[table], again),
                )
        db.executemany(_INSERT_ADVISORY, batch.advisories)
        db.executemany("INSERT INTO aliases VALUES (?, ?)", batch.aliases)
        db.executemany(_INSERT_AFFECTED, batch.affected)
        db.executemany(_INSERT_SPAN, batch.spans)
        db.executemany(_INSERT_CPE, keyed(batch.cpes))
        db.executemany(_INSERT_NVD_KEV, batch.nvd_kev)

    def finish(self) -> None:
        for table in _ROW_TABLES:
            self.db.execute(
                f"DELETE FROM {table} WHERE rowid <= ?"  # noqa: S608
                " AND advisory_id IN (SELECT id FROM temp.replaced)",
                (self.before[table],),
            )
        self.db.execute("DROP TABLE temp.replaced")
        _derive_facts(self.db, self.before["advisories"], self.before["cpe_matches"])


def _derive_facts(db: sqlite3.Connection, advisories_before: int, criteria_before: int) -> None:
    """cpe_facts of the advisories (rowid above `advisories_before`) and criteria (rowid above
    `criteria_before`) that an import added; the rows of replaced advisories go first. Sorted
    first, so that the rows are appended to the table, not scattered into it."""
    if advisories_before:
        db.execute(
            "DELETE FROM cpe_facts WHERE advisory_id IN"
            " (SELECT id FROM advisories WHERE rowid > ?)",
            (advisories_before,),
        )
    db.execute(
        "INSERT OR IGNORE INTO cpe_facts SELECT c.vendor, c.product, a.id, a.source,"
        " nullif(substr(a.summary, 1, ?), ''), a.cvss_score, a.cvss_vector,"
        " a.severity, a.aliases FROM cpe_matches c JOIN advisories a ON a.id = c.advisory_id"
        " WHERE c.rowid > ? AND c.key_from IS NOT NULL ORDER BY 1, 2, 3",
        (SUMMARY_CHARS, criteria_before),
    )


def _digest(path: Path) -> str:
    """sha256 of a file, or of a folder's *.json files by name and content."""
    digest = hashlib.sha256()
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def import_files(
    db_path: Path | str, paths: Sequence[Path | str], *, now: dt.datetime | None = None
) -> ImportReport:
    """Import every file into `db_path`, all or nothing: VulnDbError (naming the file and the
    record or line) leaves the database exactly as it was. Concurrent imports take turns."""
    started = time.perf_counter()
    moment = now or dt.datetime.now(dt.UTC)
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with (db_path.parent / f".{db_path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two imports copying the same file would lose one
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{db_path.name}-", dir=db_path.parent)
        os.close(descriptor)
        temp = Path(temp_name)
        try:
            if db_path.exists():
                shutil.copyfile(db_path, temp)
            try:
                db = _open_for_import(temp)
            except VulnDbError as exc:
                raise VulnDbError(f"{db_path}: {exc}") from None
            try:
                done, total = _import_into(db, [Path(p) for p in paths], moment)
            finally:
                db.close()
            os.replace(temp, db_path)
        finally:
            temp.unlink(missing_ok=True)
    return ImportReport(tuple(done), total, time.perf_counter() - started)


def _import_into(
    db: sqlite3.Connection, paths: list[Path], moment: dt.datetime
) -> tuple[list[tuple[str, str, int]], int]:
    # A crash mid-import loses only the temporary copy, so durability here buys nothing.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -16384")  # appends need little; memory stays flat
    db.execute("BEGIN")
    for name in _INDEXES:
        db.execute(f'DROP INDEX IF EXISTS "{name}"')
    writer = _Writer(db)
    done = []
    for path in paths:
        if not path.exists():
            raise VulnDbError(f"{path}: no such file or folder")
    # Hashing a feed (hundreds of MB for NVD) is done by a thread while the import goes on:
    # hashlib lets go of the GIL.
    with ThreadPoolExecutor(1) as hasher:
        digests = [hasher.submit(_digest, path) for path in paths]
        for path, digest in zip(paths, digests, strict=True):
            kind, batches = read_batches(path, BATCH)
            count = writer.add(batches)
            db.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
                (kind, str(path), digest.result(), count, moment.isoformat()),
            )
            done.append((str(path), kind, count))
    writer.finish()
    for statement in _INDEXES.values():
        db.execute(statement)
    db.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('built_at', ?),"
        " ('osv_ecosystems', (SELECT json_group_array(DISTINCT ecosystem) FROM osv_spans))",
        (str(SCHEMA_VERSION), moment.isoformat()),
    )
    db.execute("COMMIT")
    total = int(db.execute("SELECT count(*) FROM advisories").fetchone()[0])
    return done, total


# --- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    path: Path
    built_at: dt.datetime | None
    age_days: float | None
    counts: dict[str, int]  # rows per table: advisories, affected, cpe_matches, kev, epss
    sources: tuple[tuple[str, str, int, str], ...]  # (format, file, records, imported at)
    warning: str | None = None
    per_source: dict[str, int] = field(default_factory=dict)  # advisories by "osv" / "nvd"


def status(
    db_path: Path | str, *, max_age_days: float = 7, now: dt.datetime | None = None
) -> Status:
    """Counts, build time and age of the database; `warning` says when it is stale."""
    path = Path(db_path)
    db = _open_read_only(path)
    try:
        counts = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("advisories", "affected", "cpe_matches", "kev", "epss")
        }
        per_source = {
            str(name): int(n)
            for name, n in db.execute("SELECT source, count(*) FROM advisories GROUP BY source")
        }
        built = db.execute("SELECT value FROM meta WHERE key = 'built_at'").fetchone()
        sources = tuple(
            (row[0], row[1], int(row[2]), row[3])
            for row in db.execute("SELECT name, file, records, imported_at FROM sources")
        )
    finally:
        db.close()
    built_at = dt.datetime.fromisoformat(built[0]) if built else None
    moment = now or dt.datetime.now(dt.UTC)
    age = (moment - built_at).total_seconds() / 86400 if built_at else None
    warning = None
    if age is None:
        warning = "the database was never built"
    elif age > max_age_days:
        warning = (
            f"the advisories are {age:.0f} days old (more than {max_age_days:g}): import fresh "
            "feeds with `posture vulndb import`"
        )
    return Status(path, built_at, age, counts, sources, warning, per_source)


# --- lookup --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # slots: lookups cache many of them
class Match:
    """One vulnerability of the software looked up: one per CVE, whichever records named it."""

    advisory_id: str
    cves: tuple[str, ...]  # the CVE ids among the advisory's id and aliases
    summary: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None
    fixed_version: str | None  # the first fixed version above the one looked up, if known
    kev: bool = False
    kev_ransomware: bool | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    sources: tuple[str, ...] = ()  # "osv", "nvd"
    match_kind: str = "nvd-cpe"  # or "osv-range"

    @property
    def priority(self) -> tuple[int, float, float]:
        """Sort key, most urgent first: in CISA KEV; then EPSS >= 0.1 (a one-in-ten chance of
        exploitation within 30 days, which FIRST's own guidance treats as high); then CVSS."""
        notable = self.epss is not None and self.epss >= EPSS_NOTABLE
        return (
            0 if self.kev else 1 if notable else 2,
            -(self.epss or 0.0) if self.kev or notable else 0.0,
            -(self.cvss_score or 0.0),
        )


_CPE23 = re.compile(r"(?<!\\):")


def parse_cpe(cpe: str) -> tuple[str, str]:
    """(vendor, product) of a CPE 2.3 name, a CPE 2.2 URI (nmap's `cpe:/a:openbsd:openssh:7.4`)
    or a bare `vendor:product`; VulnDbError otherwise."""
    text = cpe.strip().lower()
    if text.startswith("cpe:2.3:"):
        parts = _CPE23.split(text)[3:5]
    elif text.startswith("cpe:/"):
        parts = text[5:].split(":")[1:3]
    else:
        parts = text.split(":")
        parts = parts if len(parts) == 2 else []
    parts = [re.sub(r"\\(.)", r"\1", p) for p in parts]
    if len(parts) != 2 or not all(parts) or "*" in parts or len(text) > 500:
        raise VulnDbError(f"not a CPE name: {cpe[:100]!r}")
    return parts[0], parts[1]


_Facts = tuple[str, str | None, float | None, str | None, str | None, tuple[str, ...]]
"""(source, summary, CVSS score, CVSS vector, severity, CVE ids) of one advisory."""
_Exploitation = tuple[bool, bool | None, float | None, float | None]
"""(in KEV, ransomware use, EPSS score, EPSS percentile) of one CVE."""

K = TypeVar("K")
V = TypeVar("V")


class _Cache(Generic[K, V]):
    """At most `capacity` entries, in two generations of plain dicts: entries go into the young
    one; when it is full it becomes the old one, and the old one is dropped. An entry read from
    the old generation moves back to the young one, so what a scan keeps asking for stays:
    nearly least-recently-used, at the cost of a dict lookup."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.young: dict[K, V] = {}
        self.old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        found = self.young.get(key)
        if found is None:
            found = self.old.pop(key, None)
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: K, value: V) -> None:
        self.young[key] = value
        if len(self.young) >= max(self.capacity // 2, 1):
            self.old, self.young = self.young, {}

    def __len__(self) -> int:
        return len(self.young) + len(self.old)


def _cve_ids(advisory_id: str, aliases: str) -> tuple[str, ...]:
    """The CVE ids among an advisory's id and its aliases (a JSON list), sorted."""
    if aliases == "[]":  # every NVD record
        upper = advisory_id.upper()
        return (upper,) if upper.startswith("CVE-") else ()
    names = (advisory_id, *json.loads(aliases))
    return tuple(sorted({n.upper() for n in names if n.upper().startswith("CVE-")}))


def _facts(advisory_id: str, row: Sequence[Any]) -> _Facts:
    """Facts from (source, summary, score, vector, severity, aliases JSON)."""
    summary = row[1][:SUMMARY_CHARS] if row[1] else None
    return (row[0], summary, row[2], row[3], row[4], _cve_ids(advisory_id, row[5]))


# Match.priority, then the advisory id: the order lookups return matches in.
_PRIORITY = f"""
    CASE WHEN k.cve IS NOT NULL THEN 0 WHEN e.score >= {EPSS_NOTABLE!r} THEN 1 ELSE 2 END,
    CASE WHEN k.cve IS NOT NULL OR e.score >= {EPSS_NOTABLE!r} THEN -coalesce(e.score, 0.0)
        ELSE 0.0 END,
    -coalesce(f.cvss_score, 0.0), c.advisory_id"""


@lru_cache(maxsize=8)
def _cpe_query(names: int) -> str:
    """The NVD criteria covering the encoded version ?1 under any of `names` (vendor, product)
    pairs (?2, ?3, ?4, ...), with their advisories' facts, KEV and EPSS, most urgent first; an
    advisory's rows together, by the order of the names, then as imported (the first is the one
    a match reports). The criteria come from the cpe_range index alone, the facts from the
    product's neighbouring cpe_facts rows."""
    wanted = ", ".join(f"({n}, ?{2 * n + 2}, ?{2 * n + 3})" for n in range(names))
    return f"""
WITH wanted (rank, vendor, product) AS (VALUES {wanted})
SELECT c.advisory_id, c.fixed, f.source, f.summary, f.cvss_score, f.cvss_vector, f.severity,
    f.aliases, k.cve IS NOT NULL, k.ransomware, e.score, e.percentile
FROM wanted JOIN cpe_matches c ON c.vendor = wanted.vendor AND c.product = wanted.product
    JOIN cpe_facts f ON f.vendor = c.vendor AND f.product = c.product
        AND f.advisory_id = c.advisory_id
    LEFT JOIN kev k ON k.cve = c.advisory_id LEFT JOIN epss e ON e.cve = c.advisory_id
WHERE c.key_from <= ?1 AND c.key_below > ?1
ORDER BY {_PRIORITY}, wanted.rank, c.rowid
"""  # noqa: S608 - numbers only


_OSV_QUERY = """
SELECT advisory_id, fixed FROM osv_spans
WHERE ecosystem = ?1 AND package = ?2 AND key_from <= ?3 AND key_below > ?3
    AND (?4 IS NULL OR release = '' OR release = ?4)
ORDER BY release, rowid
"""


class VulnDb:
    """An open advisory database for lookups (read-only). SQLite finds the ranges covering a
    version in an index of encoded bounds (scanner/vulndb/spans.py), so a lookup reads only its
    hits, whatever the database's size, and keeps nothing of them: memory stays flat. Only the
    matches of OSV records, each a few queries to build (the CVE's NVD score, KEV and EPSS of
    every CVE), are kept in a cache bounded in entries."""

    MATCHES_CACHED = 20_000  # ~1 KB each, with their summaries
    # Whole lookups: a fleet runs a few builds of each product, so a scan asks the same
    # (product, version) over and over. Bounded in lookups, so memory stays flat.
    RESULTS_CACHED = 2_048

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = _open_read_only(self.path)
        # Lookups read few pages each, scattered: a small cache does as well as a large one
        # (measured at 255,000 advisories), and the file's other pages stay in the OS cache.
        self.db.execute("PRAGMA cache_size = -8192")
        # (advisory id, fix) -> the match of an OSV record, None if the advisory is missing.
        self._osv: _Cache[tuple[str, str | None], tuple[Match | None]] = _Cache(self.MATCHES_CACHED)
        self._results: _Cache[tuple[Any, ...], tuple[Match, ...]] = _Cache(self.RESULTS_CACHED)
        self._asked: _Cache[tuple[Any, ...], bool] = _Cache(self.RESULTS_CACHED * 8)
        # Ecosystems with OSV ranges at all: a lookup in another one skips the query.
        found = self.db.execute("SELECT value FROM meta WHERE key = 'osv_ecosystems'").fetchone()
        names = json.loads(found[0]) if found and found[0] else []
        self.ecosystems = frozenset(str(name) for name in names)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> VulnDb:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def lookup(
        self,
        product: str,
        version: str,
        *,
        ecosystem: Ecosystem = Ecosystem.UPSTREAM,
        release: str | None = None,
        cpe: str | None = None,
        cpe_names: Sequence[tuple[str, str]] = (),
    ) -> list[Match]:
        """Advisories affecting `product` at `version`, most urgent first.

        OSV ranges of (ecosystem, product), limited to the distro `release` ("12", "22.04")
        when given; and for upstream versions, NVD CPE criteria of `cpe` or `cpe_names`, else
        of CPE_ALIASES[product]. A version no ordering can read matches nothing."""
        asked = (product, version, ecosystem, release, cpe, tuple(cpe_names))
        cached = self._results.get(asked)
        if cached is not None:
            return list(cached)
        found = self._lookup(product, version, ecosystem, release, cpe, cpe_names)
        # Only what is asked twice is kept: a stream of distinct lookups keeps nothing (holding
        # their matches costs more than it saves), a fleet's few builds are kept at once.
        if self._asked.get(asked) is None:
            self._asked.put(asked, True)
        else:
            self._results.put(asked, tuple(found))
        return found

    def _lookup(
        self,
        product: str,
        version: str,
        ecosystem: Ecosystem,
        release: str | None,
        cpe: str | None,
        cpe_names: Sequence[tuple[str, str]],
    ) -> list[Match]:
        try:
            key = encode(ecosystem, version)
        except VersionError:
            return []
        nvd: list[Match] = []
        one_per_cve = True
        if ecosystem is Ecosystem.UPSTREAM:
            names = list(cpe_names)
            if cpe is not None:
                names.append(parse_cpe(cpe))
            if not names:
                names = list(CPE_ALIASES.get(product.lower(), ()))
            nvd, one_per_cve = self._cpe_matches(names, key)
        if ecosystem.value not in self.ecosystems:
            return nvd if one_per_cve else _one_per_cve(nvd)
        hits = self._osv_matches(ecosystem, product.lower(), key, release)
        for match in nvd:
            hits.setdefault(match.advisory_id, match)
        return _one_per_cve(hits.values())

    def _cpe_matches(
        self, names: Sequence[tuple[str, str]], key: bytes
    ) -> tuple[list[Match], bool]:
        """The matches of the NVD criteria covering `key`, one per advisory, most urgent
        first; and whether they name each CVE once (NVD records do), so need no merging."""
        wanted = list(dict.fromkeys((v.lower(), n.lower()) for v, n in names))
        if not wanted:
            return [], True
        matches: list[Match] = []
        cves: set[str] = set()
        one_per_cve = True
        previous = None
        # This loop runs for every match a lookup returns, often dozens: kept lean.
        for (
            advisory_id,
            fixed,
            source,
            summary,
            score,
            vector,
            severity,
            aliases,
            kev,
            ransomware,
            epss,
            percentile,
        ) in self.db.execute(
            _cpe_query(len(wanted)), [key, *itertools.chain.from_iterable(wanted)]
        ):
            if advisory_id == previous:
                continue  # another criterion of the same advisory, after its first
            previous = advisory_id
            if aliases == "[]" and advisory_id.startswith("CVE-") and advisory_id.isupper():
                ids: tuple[str, ...] = (advisory_id,)  # an NVD record: its own CVE alone
            else:
                ids = _cve_ids(advisory_id, aliases)
            if one_per_cve and not cves.isdisjoint(ids):
                one_per_cve = False
            cves.update(ids)
            matches.append(
                Match(
                    advisory_id,
                    ids,
                    summary,
                    score,
                    vector,
                    severity,
                    fixed,
                    kev == 1,
                    None if ransomware is None else bool(ransomware),
                    epss,
                    percentile,
                    (source,),
                    "nvd-cpe",
                )
            )
        return matches, one_per_cve

    def _osv_matches(
        self, ecosystem: Ecosystem, package: str, key: bytes, release: str | None
    ) -> dict[str, Match]:
        """Advisory id -> match, of the OSV spans covering `key`; an advisory's span that names
        a fix wins over one that names none."""
        wanted = release.lower() if release is not None else None
        hits: dict[str, Match] = {}
        for advisory_id, fixed in self.db.execute(
            _OSV_QUERY, (ecosystem.value, package, key, wanted)
        ):
            earlier = hits.get(advisory_id)
            if earlier is None or (fixed and not earlier.fixed_version):
                match = self._osv_match(advisory_id, fixed)
                if match is not None:
                    hits[advisory_id] = match
        return hits

    def _advisory(self, advisory_id: str) -> _Facts | None:
        row = self.db.execute(
            "SELECT source, summary, cvss_score, cvss_vector, severity, aliases"
            " FROM advisories WHERE id = ?",
            (advisory_id,),
        ).fetchone()
        return None if row is None else _facts(advisory_id, row)

    def _exploited(self, cve: str) -> _Exploitation:
        row = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM kev WHERE cve = ?1),"
            " (SELECT ransomware FROM kev WHERE cve = ?1),"
            " (SELECT score FROM epss WHERE cve = ?1),"
            " (SELECT percentile FROM epss WHERE cve = ?1)",
            (cve,),
        ).fetchone()
        return (bool(row[0]), None if row[1] is None else bool(row[1]), row[2], row[3])

    def _osv_match(self, advisory_id: str, fixed: str | None) -> Match | None:
        """The match of an OSV record, built once: its facts, and for a distro record the
        score of its CVE's own NVD record; KEV and EPSS of each of its CVEs."""
        cached = self._osv.get((advisory_id, fixed))
        if cached is not None:
            return cached[0]
        facts = self._advisory(advisory_id)
        match = None
        if facts is not None:
            source, summary, score, _vector, _severity, cves = facts
            if score is None:  # a distro advisory: the score of its CVE's own NVD record
                scored = next(
                    (r for c in cves if c != advisory_id and (r := self._advisory(c)) and r[2]),
                    None,
                )
                if scored is not None:
                    facts = (source, summary, scored[2], scored[3], scored[4], cves)
            exploited = [self._exploited(cve) for cve in cves]
            match = _match(advisory_id, facts, "osv-range", fixed, exploited)
        self._osv.put((advisory_id, fixed), (match,))
        return match


def _match(
    advisory_id: str,
    facts: _Facts,
    kind: str,
    fixed: str | None,
    exploited: Sequence[_Exploitation],
) -> Match:
    source, summary, score, vector, severity, cves = facts
    kev = [f for f in exploited if f[0]]
    ransomware = [f[1] for f in kev if f[1] is not None]
    return Match(
        advisory_id=advisory_id,
        cves=cves,
        summary=summary,
        cvss_score=score,
        cvss_vector=vector,
        severity=severity,
        fixed_version=fixed,
        kev=bool(kev),
        kev_ransomware=any(ransomware) if ransomware else None,
        epss=max((f[2] for f in exploited if f[2] is not None), default=None),
        epss_percentile=max((f[3] for f in exploited if f[3] is not None), default=None),
        sources=(source,),
        match_kind=kind,
    )


def _one_per_cve(matches: Iterable[Match]) -> list[Match]:
    """Records sharing a CVE (a DSA naming two CVEs, an OSV record and NVD's) become one
    match; most urgent first."""
    groups: dict[int, Match] = {}
    by_cve: dict[str, int] = {}  # CVE -> key of its group
    for number, match in enumerate(matches):
        for joined in {by_cve[c] for c in match.cves if c in by_cve}:
            match = _merge(groups.pop(joined), match)
        groups[number] = match
        by_cve.update(dict.fromkeys(match.cves, number))
    return sorted(groups.values(), key=lambda m: (m.priority, m.advisory_id))


def _merge(a: Match, b: Match) -> Match:
    """One match per CVE: the scored record's numbers, every source, OSV's fixed version."""
    keep = a if a.cvss_score is not None or b.cvss_score is None else b
    osv = a if a.match_kind == "osv-range" else b
    return Match(
        advisory_id=keep.advisory_id,
        cves=tuple(sorted({*a.cves, *b.cves})),
        summary=keep.summary or a.summary or b.summary,
        cvss_score=keep.cvss_score,
        cvss_vector=keep.cvss_vector or a.cvss_vector or b.cvss_vector,
        severity=keep.severity or a.severity or b.severity,
        # OSV names the fixed release exactly (9.8p1); NVD's excluded end may be coarser (9.8).
        fixed_version=osv.fixed_version or a.fixed_version or b.fixed_version,
        kev=a.kev or b.kev,
        kev_ransomware=a.kev_ransomware if a.kev_ransomware is not None else b.kev_ransomware,
        epss=max((m.epss for m in (a, b) if m.epss is not None), default=None),
        epss_percentile=max(
            (m.epss_percentile for m in (a, b) if m.epss_percentile is not None), default=None
        ),
        sources=tuple(sorted({*a.sources, *b.sources})),
        match_kind=osv.match_kind,
    )


def lookup(
    db: VulnDb | Path | str,
    product: str,
    version: str,
    *,
    ecosystem: Ecosystem = Ecosystem.UPSTREAM,
    cpe: str | None = None,
    release: str | None = None,
) -> list[Match]:
    """`VulnDb.lookup` on an open database, or on the file at `db` (opened for this one call)."""
    if isinstance(db, VulnDb):
        return db.lookup(product, version, ecosystem=ecosystem, cpe=cpe, release=release)
    with VulnDb(db) as opened:
        return opened.lookup(product, version, ecosystem=ecosystem, cpe=cpe, release=release)


__all__ = [
    "CPE_ALIASES",
    "DEFAULT_PATH",
    "EPSS_NOTABLE",
    "SCHEMA_VERSION",
    "ImportReport",
    "Match",
    "Status",
    "VulnDb",
    "VulnDbError",
    "detect_format",
    "import_files",
    "lookup",
    "parse_cpe",
    "status",
]
