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
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from scanner.vulndb.importers import (
    Advisory,
    EpssScore,
    KevEntry,
    VulnDbError,
    detect_format,
    read,
)
from scanner.vulndb.versions import (
    Ecosystem,
    RangeEvent,
    VersionError,
    affected,
    first_fixed,
    sort_key,
)

SCHEMA_VERSION = 2
DEFAULT_PATH = Path.home() / ".local" / "share" / "posture" / "vulndb.sqlite"
BATCH = 5000  # advisories per executemany round
EPSS_NOTABLE = 0.1  # EPSS probability from which a match ranks right after KEV ones
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
    "redis": (("redis", "redis"),),
    "mysql": (("oracle", "mysql"), ("mysql", "mysql")),
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
    vulnerable INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware INTEGER,
    vendor TEXT, product TEXT, name TEXT
);
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL, percentile REAL, date TEXT);
"""
# Indexes are dropped during a bulk import and built once after it: cheaper than maintaining
# them row by row.
_INDEXES = {
    "affected_package": "CREATE INDEX IF NOT EXISTS affected_package"
    " ON affected (ecosystem, package, release)",
    "cpe_product": "CREATE INDEX IF NOT EXISTS cpe_product ON cpe_matches (vendor, product)",
    "aliases_alias": "CREATE INDEX IF NOT EXISTS aliases_alias ON aliases (alias)",
    "affected_advisory": "CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory_id)",
    "cpe_advisory": "CREATE INDEX IF NOT EXISTS cpe_advisory ON cpe_matches (advisory_id)",
    "aliases_advisory": "CREATE INDEX IF NOT EXISTS aliases_advisory ON aliases (advisory_id)",
}
_ROW_TABLES = ("affected", "cpe_matches", "aliases")  # rows that belong to one advisory
_MIGRATIONS = {
    # 1 -> 2: distro release of an OSV range; NVD's vulnerable flag (v1 kept vulnerable only).
    1: (
        "ALTER TABLE affected ADD COLUMN release TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE cpe_matches ADD COLUMN vulnerable INTEGER NOT NULL DEFAULT 1",
        "DROP INDEX IF EXISTS affected_package",
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
                db.execute(statement)
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
        what = "not an advisory database" if version is None else f"schema {version}"
        raise VulnDbError(
            f"{path}: {what}, this posture reads schema {SCHEMA_VERSION};"
            " `posture vulndb import FILE` migrates it"
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
    " start_excluding, end_including, end_excluding, vulnerable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_KEV = "INSERT OR REPLACE INTO kev VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_EPSS = "INSERT OR REPLACE INTO epss VALUES (?, ?, ?, ?)"


class _Writer:
    """Batches records into executemany rounds. An advisory imported again replaces its rows:
    the rows it had before the import (rowid at most `before`) go in one pass at the end, as
    the import runs without indexes; a repeat within one import is deleted at once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.advisories: dict[str, Advisory] = {}
        self.kev: list[tuple[Any, ...]] = []
        self.epss: list[tuple[Any, ...]] = []
        # INSERT OR REPLACE gives a replaced advisory a new rowid, so rowids above these tell
        # this import's rows from the earlier ones without any index.
        self.before = {
            table: int(
                db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]  # noqa: S608
            )
            for table in (*_ROW_TABLES, "advisories")
        }
        db.execute("CREATE TEMP TABLE replaced (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, records: Iterable[Any]) -> int:
        count = 0
        for record in records:
            if isinstance(record, Advisory):
                self.advisories[record.id] = record
            elif isinstance(record, EpssScore):
                self.epss.append((record.cve, record.score, record.percentile, record.date))
            elif isinstance(record, KevEntry):
                ransomware = None if record.ransomware is None else int(record.ransomware)
                self.kev.append(
                    (
                        record.cve,
                        record.date_added,
                        record.due_date,
                        ransomware,
                        record.vendor,
                        record.product,
                        record.name,
                    )
                )
            count += 1
            if len(self.advisories) + len(self.kev) + len(self.epss) >= BATCH:
                self.flush()
        self.flush()
        return count

    def flush(self) -> None:
        db = self.db
        if self.kev:
            db.executemany(_INSERT_KEV, self.kev)
        if self.epss:
            db.executemany(_INSERT_EPSS, self.epss)
        self.kev, self.epss = [], []
        if not self.advisories:
            return
        batch = list(self.advisories.values())
        self.advisories = {}
        existing = db.execute(
            "SELECT json_group_array(id) FILTER (WHERE rowid <= ?1),"
            " json_group_array(id) FILTER (WHERE rowid > ?1)"
            " FROM advisories WHERE id IN (SELECT value FROM json_each(?2))",
            (self.before["advisories"], json.dumps([a.id for a in batch])),
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
        db.executemany(
            _INSERT_ADVISORY,
            [
                (
                    a.id,
                    a.source,
                    a.summary,
                    a.published,
                    a.modified,
                    a.cvss_score,
                    a.cvss_vector,
                    a.severity,
                    _json_list(a.aliases),
                    _json_list(a.references),
                )
                for a in batch
            ],
        )
        db.executemany(
            "INSERT INTO aliases VALUES (?, ?)",
            [(name.upper(), a.id) for a in batch for name in a.aliases if name != a.id],
        )
        db.executemany(
            _INSERT_AFFECTED,
            [
                (
                    a.id,
                    r.ecosystem,
                    r.release,
                    r.package,
                    json.dumps([{kind: version} for kind, version in r.events]),
                    _json_list(r.versions),
                )
                for a in batch
                for r in a.affected
            ],
        )
        db.executemany(
            _INSERT_CPE,
            [
                (
                    a.id,
                    c.vendor,
                    c.product,
                    c.version,
                    c.start_including,
                    c.start_excluding,
                    c.end_including,
                    c.end_excluding,
                    int(c.vulnerable),
                )
                for a in batch
                for c in a.cpes
            ],
        )

    def finish(self) -> None:
        self.flush()
        for table in _ROW_TABLES:
            self.db.execute(
                f"DELETE FROM {table} WHERE rowid <= ?"  # noqa: S608
                " AND advisory_id IN (SELECT id FROM temp.replaced)",
                (self.before[table],),
            )
        self.db.execute("DROP TABLE temp.replaced")


_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def _json_list(items: Sequence[str]) -> str:
    """`json.dumps(list(items))`, without the encoder's overhead for the usual plain strings
    (URLs, ids): this runs once or twice per advisory."""
    if not items:
        return "[]"
    if all(_JSON_PLAIN.fullmatch(item) for item in items):
        return '["' + '", "'.join(items) + '"]'
    return json.dumps(list(items))


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
        kind, records = read(path)
        count = writer.add(records)
        db.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
            (kind, str(path), _digest(path), count, moment.isoformat()),
        )
        done.append((str(path), kind, count))
    writer.finish()
    for statement in _INDEXES.values():
        db.execute(statement)
    db.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('built_at', ?)",
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


@dataclass(frozen=True)
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


_CpeRow = tuple[Any, Any, Any, Any, Any, "Match"]  # keys of version and bounds; its match
_OsvRow = tuple[str, str, tuple[RangeEvent, ...], tuple[str, ...]]  # id, release, events, versions
_Facts = tuple[str, str | None, float | None, str | None, str | None, tuple[str, ...]]
"""(source, summary, CVSS score, CVSS vector, severity, CVE ids) of one advisory."""
_Exploitation = tuple[bool, bool | None, float | None, float | None]
"""(in KEV, ransomware use, EPSS score, EPSS percentile) of one CVE."""

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A least-recently-used cache bounded by the total weight of its values (rows), so that
    its memory stays bounded however large the database is."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.weight = 0
        self.entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self.entries.get(key)
        if found is None:
            return None
        self.entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, weight: int = 1) -> None:
        old = self.entries.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self.entries[key] = (value, weight)
        self.weight += weight
        while self.weight > self.capacity and len(self.entries) > 1:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.weight -= dropped


def _key(version: str | None) -> Any:
    return None if version is None else sort_key(Ecosystem.UPSTREAM, version)


def _facts(advisory_id: str, row: Sequence[Any]) -> _Facts:
    """Facts from (source, summary, score, vector, severity, aliases JSON)."""
    names = (advisory_id, *json.loads(row[5])) if row[5] != "[]" else (advisory_id,)
    cves = tuple(sorted({n.upper() for n in names if n.upper().startswith("CVE-")}))
    summary = row[1][:SUMMARY_CHARS] if row[1] else None
    return (row[0], summary, row[2], row[3], row[4], cves)


_CPE_QUERY = """
SELECT c.advisory_id, c.version, c.start_including, c.start_excluding, c.end_including,
    c.end_excluding, a.source, a.summary, a.cvss_score, a.cvss_vector, a.severity, a.aliases,
    k.cve IS NOT NULL, k.ransomware, e.score, e.percentile
FROM cpe_matches c JOIN advisories a ON a.id = c.advisory_id
    LEFT JOIN kev k ON k.cve = c.advisory_id LEFT JOIN epss e ON e.cve = c.advisory_id
WHERE c.vendor = ? AND c.product = ? AND c.vulnerable
"""


class VulnDb:
    """An open advisory database for lookups (read-only). A product's rows are read once, with
    their advisories' facts, KEV and EPSS joined in, and kept in bounded LRU caches: a scan
    asks about the same few products over and over."""

    # Criteria rows kept with their matches: all of NVD's ~330,000 fit, in ~300 MB at most;
    # a scan's working set (the products it found) is far smaller.
    ROWS_CACHED = 400_000
    FACTS_CACHED = 50_000  # advisories and CVEs whose facts are kept for OSV matches

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = _open_read_only(self.path)
        self.db.execute("PRAGMA cache_size = -32768")
        self._cpe_rows: _Lru[tuple[str, str], tuple[_CpeRow, ...]] = _Lru(self.ROWS_CACHED)
        self._osv_rows: _Lru[tuple[str, str], tuple[_OsvRow, ...]] = _Lru(self.ROWS_CACHED)
        self._facts: _Lru[str, _Facts | None] = _Lru(self.FACTS_CACHED)
        self._exploitation: _Lru[str, _Exploitation] = _Lru(self.FACTS_CACHED)
        # Ecosystems with OSV ranges at all: a lookup in another one skips the query.
        self.ecosystems = frozenset(
            row[0] for row in self.db.execute("SELECT DISTINCT ecosystem FROM affected")
        )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> VulnDb:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _product_cpe_rows(self, vendor: str, product: str) -> tuple[_CpeRow, ...]:
        """The product's NVD criteria, each with its match built once: for a CPE criterion
        everything a match says (facts, KEV, EPSS, the fix) is fixed, whatever the version."""
        found = self._cpe_rows.get((vendor, product))
        if found is not None:
            return found
        rows: list[_CpeRow] = []
        built: dict[tuple[str, str | None], Match] = {}
        for row in self.db.execute(_CPE_QUERY, (vendor, product)):
            advisory_id, bounds = row[0], row[1:6]
            if not any(bounds):
                continue  # "every version": NVD's way to say "all", too broad to claim
            try:
                keys = [_key(b) for b in bounds]
            except VersionError:
                continue  # a bound no version can be compared with
            fixed = bounds[4] if bounds[0] is None else None
            match = built.get((advisory_id, fixed))
            if match is None:
                facts = _facts(advisory_id, row[6:12])
                ransomware = None if row[13] is None else bool(row[13])
                exploited = (bool(row[12]), ransomware, row[14], row[15])
                match = _match(advisory_id, facts, "nvd-cpe", fixed, [exploited])
                built[(advisory_id, fixed)] = match
            rows.append((*keys, match))  # type: ignore[arg-type]
        result = tuple(rows)
        self._cpe_rows.put((vendor, product), result, max(len(result), 1))
        return result

    def _product_osv_rows(self, ecosystem: str, package: str) -> tuple[_OsvRow, ...]:
        found = self._osv_rows.get((ecosystem, package))
        if found is not None:
            return found
        rows = self.db.execute(
            "SELECT advisory_id, release, events, versions FROM affected"
            " WHERE ecosystem = ? AND package = ?",
            (ecosystem, package),
        )
        result = tuple(
            (
                advisory_id,
                release,
                tuple(RangeEvent(*next(iter(e.items()))) for e in json.loads(events)),
                tuple(json.loads(versions)),
            )
            for advisory_id, release, events, versions in rows
        )
        self._osv_rows.put((ecosystem, package), result, max(len(result), 1))
        return result

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
        try:
            target = sort_key(ecosystem, version)
        except VersionError:
            return []
        hits: dict[str, Match] = {}  # advisory id -> its match
        if ecosystem.value in self.ecosystems:
            wanted = release.lower() if release is not None else None
            for advisory_id, row_release, events, versions in self._product_osv_rows(
                ecosystem.value, product.lower()
            ):
                if wanted is not None and row_release and row_release != wanted:
                    continue
                if affected(ecosystem, version, events, versions=versions):
                    fixed = first_fixed(ecosystem, version, events)
                    earlier = hits.get(advisory_id)
                    if earlier is None or (fixed and not earlier.fixed_version):
                        match = self._osv_match(advisory_id, fixed)
                        if match is not None:
                            hits[advisory_id] = match
        if ecosystem is Ecosystem.UPSTREAM:
            names = list(cpe_names)
            if cpe is not None:
                names.append(parse_cpe(cpe))
            if not names:
                names = list(CPE_ALIASES.get(product.lower(), ()))
            for vendor, name in dict.fromkeys((v.lower(), n.lower()) for v, n in names):
                for row in self._product_cpe_rows(vendor, name):
                    if _covers(target, row) and row[5].advisory_id not in hits:
                        hits[row[5].advisory_id] = row[5]
        return _one_per_cve(hits.values())

    def _advisory(self, advisory_id: str) -> _Facts | None:
        found = self._facts.get(advisory_id)
        if found is None and advisory_id not in self._facts.entries:
            row = self.db.execute(
                "SELECT source, summary, cvss_score, cvss_vector, severity, aliases"
                " FROM advisories WHERE id = ?",
                (advisory_id,),
            ).fetchone()
            found = None if row is None else _facts(advisory_id, row)
            self._facts.put(advisory_id, found)
        return found

    def _exploited(self, cve: str) -> _Exploitation:
        found = self._exploitation.get(cve)
        if found is None:
            row = self.db.execute(
                "SELECT EXISTS (SELECT 1 FROM kev WHERE cve = ?1),"
                " (SELECT ransomware FROM kev WHERE cve = ?1),"
                " (SELECT score FROM epss WHERE cve = ?1),"
                " (SELECT percentile FROM epss WHERE cve = ?1)",
                (cve,),
            ).fetchone()
            found = (bool(row[0]), None if row[1] is None else bool(row[1]), row[2], row[3])
            self._exploitation.put(cve, found)
        return found

    def _osv_match(self, advisory_id: str, fixed: str | None) -> Match | None:
        facts = self._advisory(advisory_id)
        if facts is None:
            return None
        source, summary, score, _vector, _severity, cves = facts
        if score is None:  # a distro advisory: the score of its CVE's own NVD record, if any
            scored = next(
                (r for c in cves if c != advisory_id and (r := self._advisory(c)) and r[2]), None
            )
            if scored is not None:
                facts = (source, summary, scored[2], scored[3], scored[4], cves)
        exploited = [self._exploited(cve) for cve in cves]
        return _match(advisory_id, facts, "osv-range", fixed, exploited)


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


def _covers(target: Any, row: _CpeRow) -> bool:
    exact, start_in, start_ex, end_in, end_ex, _ = row
    if exact is not None:
        return bool(exact == target)
    return not (
        (start_in is not None and target < start_in)
        or (start_ex is not None and target <= start_ex)
        or (end_in is not None and target > end_in)
        or (end_ex is not None and target >= end_ex)
    )


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
