"""The advisory database: one SQLite file built from OSV, NVD CVE 2.0, CISA KEV and FIRST EPSS
files, and the lookups a scan makes against it (product + version -> advisories).

Imports are atomic: they build a copy of the database beside it and move it into place only
when every file was read, so a bad or truncated file leaves the previous database as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from scanner.safetext import clip
from scanner.vulndb.versions import (
    Ecosystem,
    RangeEvent,
    VersionError,
    affected,
    first_fixed,
    sort_key,
)

SCHEMA_VERSION = 1
DEFAULT_PATH = Path.home() / ".local" / "share" / "posture" / "vulndb.sqlite"
MAX_RECORD = 10 * 1024 * 1024  # bytes of one JSON record (an NVD CVE is a few KiB)
MAX_UNCOMPRESSED = 4 * 1024**3  # a zip or gzip may expand to this much, no more
MAX_ZIP_ENTRIES = 2_000_000
BATCH = 5000
EPSS_NOTABLE = 0.1  # EPSS probability from which a match is prioritised after KEV

_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS aliases_alias ON aliases (alias);
CREATE TABLE IF NOT EXISTS affected (
    advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
    events TEXT NOT NULL, versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_package ON affected (ecosystem, package);
CREATE TABLE IF NOT EXISTS cpe_matches (
    advisory_id TEXT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL, version TEXT,
    start_including TEXT, start_excluding TEXT, end_including TEXT, end_excluding TEXT
);
CREATE INDEX IF NOT EXISTS cpe_product ON cpe_matches (vendor, product);
CREATE INDEX IF NOT EXISTS cpe_advisory ON cpe_matches (advisory_id);
CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory_id);
CREATE INDEX IF NOT EXISTS aliases_advisory ON aliases (advisory_id);
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, ransomware INTEGER,
    vendor TEXT, product TEXT, name TEXT
);
CREATE TABLE IF NOT EXISTS epss (cve TEXT PRIMARY KEY, score REAL, percentile REAL, date TEXT);
"""


class VulnDbError(ValueError):
    """An advisory file that cannot be imported, or a database that cannot be used; the message
    names the file and the record."""


# --- reading files -------------------------------------------------------------------------------


def _opened(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _iter_json_array(stream: IO[bytes], key: str, where: str) -> Iterator[Any]:
    """The items of the top-level array `key` of a JSON object, decoded one at a time, so
    memory stays bounded by the largest item, not the file."""
    decoder = json.JSONDecoder()
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict")
    buffer, at, total = "", 0, 0

    def fill() -> bool:
        nonlocal buffer, at, total
        chunk = text.read(1 << 20)
        if not chunk:
            return False
        total += len(chunk)
        if total > MAX_UNCOMPRESSED:
            raise VulnDbError(f"{where}: more than {MAX_UNCOMPRESSED} bytes")
        buffer = buffer[at:] + chunk
        at = 0
        return True

    marker = f'"{key}"'
    while marker not in buffer[at:]:
        if len(buffer) > MAX_RECORD and marker not in buffer:
            buffer, at = buffer[-len(marker) :], 0
        if not fill():
            raise VulnDbError(f"{where}: no {marker} array")
    at = buffer.index(marker, at) + len(marker)
    while True:
        while at >= len(buffer) or buffer[at] in " \t\r\n:":
            if at >= len(buffer) and not fill():
                raise VulnDbError(f"{where}: the file ends before the {marker} array")
            elif at < len(buffer):
                at += 1
        if buffer[at] != "[":
            raise VulnDbError(f"{where}: {marker} is not an array")
        at += 1
        break
    index = 0
    while True:
        while at >= len(buffer) or buffer[at] in " \t\r\n,":
            if at >= len(buffer):
                if not fill():
                    raise VulnDbError(f"{where}: truncated after record {index}")
            else:
                at += 1
        if buffer[at] == "]":
            return
        while True:
            try:
                item, end = decoder.raw_decode(buffer, at)
                break
            except json.JSONDecodeError as exc:
                if len(buffer) - at > MAX_RECORD:
                    raise VulnDbError(f"{where}: record {index} is not JSON ({exc.msg})") from None
                if not fill():
                    raise VulnDbError(f"{where}: truncated in record {index}") from None
        yield item
        index += 1
        at = end


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_bytes(path: Path, size: int = 4096) -> bytes:
    with _opened(path) as stream:
        return stream.read(size)


def detect_format(path: Path) -> str:
    """'osv-zip', 'osv-folder', 'osv', 'nvd', 'kev' or 'epss', from the content."""
    if path.is_dir():
        return "osv-folder"
    if zipfile.is_zipfile(path):
        return "osv-zip"
    head = _first_bytes(path).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if head.startswith("#model_version") or head.lower().startswith("cve,epss"):
        return "epss"
    if '"catalogVersion"' in head or '"cveID"' in head:
        return "kev"
    if '"vulnerabilities"' in head and ('"NVD_CVE"' in head or '"cve"' in head):
        return "nvd"
    if head.startswith(("{", "[")):
        return "osv"
    raise VulnDbError(f"{path}: not an OSV, NVD CVE 2.0, CISA KEV or EPSS file")


# --- records -------------------------------------------------------------------------------------


def _text(value: Any, limit: int = 2000) -> str | None:
    return clip(str(value), limit) if value not in (None, "") else None


def _osv_rows(record: Any, where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise VulnDbError(f"{where}: not an OSV record (no id)")
    advisory_id = record["id"]
    vector = None
    for severity in record.get("severity") or []:
        if isinstance(severity, dict) and str(severity.get("type", "")).startswith("CVSS_V3"):
            vector = _text(severity.get("score"), 200)
    specific = record.get("database_specific") or {}
    score = specific.get("cvss_score") if isinstance(specific, dict) else None
    advisory = {
        "id": advisory_id,
        "source": "osv",
        "summary": _text(record.get("summary") or record.get("details")),
        "published": _text(record.get("published"), 40),
        "modified": _text(record.get("modified"), 40),
        "cvss_score": float(score) if isinstance(score, int | float) else None,
        "cvss_vector": vector,
        "severity": _text(specific.get("severity"), 20) if isinstance(specific, dict) else None,
        "aliases": [a for a in record.get("aliases") or [] if isinstance(a, str)][:100],
        "refs": json.dumps(
            [r["url"] for r in record.get("references") or [] if isinstance(r, dict) and "url" in r]
        ),
    }
    rows = []
    for number, entry in enumerate(record.get("affected") or []):
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict) or not package.get("name"):
            raise VulnDbError(f"{where}: {advisory_id} affected[{number}] has no package")
        ecosystem = Ecosystem.parse(str(package.get("ecosystem", "")))
        events: list[dict[str, str]] = []
        for found in entry.get("ranges") or []:
            if not isinstance(found, dict) or found.get("type") == "GIT":
                continue  # commit ranges cannot be compared with versions
            for event in found.get("events") or []:
                if isinstance(event, dict) and len(event) == 1:
                    ((kind, version),) = event.items()
                    RangeEvent(kind, str(version))  # VersionError for an unknown kind
                    events.append({kind: str(version)})
        versions = [str(v) for v in entry.get("versions") or []][:10_000]
        if events or versions:
            rows.append(
                {
                    "advisory_id": advisory_id,
                    "ecosystem": ecosystem.value,
                    "package": str(package["name"]).lower(),
                    "events": json.dumps(events),
                    "versions": json.dumps(versions),
                }
            )
    return advisory, rows


def _cvss(metrics: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
        entries = metrics.get(key) or []
        primary = [m for m in entries if isinstance(m, dict) and m.get("type") == "Primary"]
        for metric in primary or entries:
            data = metric.get("cvssData") or {}
            score = data.get("baseScore")
            if isinstance(score, int | float):
                severity = data.get("baseSeverity") or metric.get("baseSeverity")
                return float(score), _text(data.get("vectorString"), 200), _text(severity, 20)
    return None, None, None


def _nvd_rows(item: Any, where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict) or not isinstance(cve.get("id"), str):
        raise VulnDbError(f"{where}: not an NVD CVE record (no cve.id)")
    descriptions = cve.get("descriptions") or []
    summary = next((d.get("value") for d in descriptions if d.get("lang") == "en"), None)
    score, vector, severity = _cvss(cve.get("metrics") or {})
    advisory = {
        "id": cve["id"],
        "source": "nvd",
        "summary": _text(summary),
        "published": _text(cve.get("published"), 40),
        "modified": _text(cve.get("lastModified"), 40),
        "cvss_score": score,
        "cvss_vector": vector,
        "severity": severity,
        "aliases": [],
        "refs": json.dumps([r["url"] for r in (cve.get("references") or [])[:50] if "url" in r]),
    }
    matches = []
    for configuration in cve.get("configurations") or []:
        for node in configuration.get("nodes") or []:
            if node.get("negate"):
                continue
            for match in node.get("cpeMatch") or []:
                if not match.get("vulnerable"):
                    continue
                parts = str(match.get("criteria", "")).split(":")
                if len(parts) < 7 or parts[:2] != ["cpe", "2.3"]:
                    raise VulnDbError(f"{where}: {cve['id']}: bad CPE {match.get('criteria')!r}")
                version, update = parts[5], parts[6]
                exact = None
                if version not in ("*", "-"):
                    exact = version + (update if update not in ("*", "-") else "")
                matches.append(
                    {
                        "advisory_id": cve["id"],
                        "vendor": parts[3].lower(),
                        "product": parts[4].lower(),
                        "version": exact,
                        "start_including": match.get("versionStartIncluding"),
                        "start_excluding": match.get("versionStartExcluding"),
                        "end_including": match.get("versionEndIncluding"),
                        "end_excluding": match.get("versionEndExcluding"),
                    }
                )
    return advisory, matches


def _kev_row(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not str(item.get("cveID", "")).upper().startswith("CVE-"):
        raise VulnDbError(f"{where}: a KEV entry without a cveID")
    return {
        "cve": item["cveID"].upper(),
        "date_added": _text(item.get("dateAdded"), 20),
        "due_date": _text(item.get("dueDate"), 20),
        "ransomware": {"known": 1, "unknown": 0}.get(
            str(item.get("knownRansomwareCampaignUse", "")).lower()
        ),
        "vendor": _text(item.get("vendorProject"), 200),
        "product": _text(item.get("product"), 200),
        "name": _text(item.get("vulnerabilityName"), 300),
    }


# --- import --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    files: tuple[tuple[str, str, int], ...]  # (file, format, records)
    advisories: int
    seconds: float


_DELETE_ROWS = (
    "DELETE FROM affected WHERE advisory_id = ?",
    "DELETE FROM cpe_matches WHERE advisory_id = ?",
    "DELETE FROM aliases WHERE advisory_id = ?",
)


class _Importer:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.advisories: list[dict[str, Any]] = []
        self.affected: list[dict[str, Any]] = []
        self.cpes: list[dict[str, Any]] = []
        self.count = 0

    def add(self, advisory: dict[str, Any], rows: list[dict[str, Any]], kind: str) -> None:
        self.advisories.append(advisory)
        (self.affected if kind == "osv" else self.cpes).extend(rows)
        self.count += 1
        if len(self.advisories) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.advisories:
            return
        # An advisory imported again replaces its rows; only those need deleting.
        existing = [
            (row[0],)
            for row in self.db.execute(
                "SELECT id FROM advisories WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([a["id"] for a in self.advisories]),),
            )
        ]
        for statement in _DELETE_ROWS:
            self.db.executemany(statement, existing)
        self.db.executemany(
            "INSERT OR REPLACE INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    a["id"],
                    a["source"],
                    a["summary"],
                    a["published"],
                    a["modified"],
                    a["cvss_score"],
                    a["cvss_vector"],
                    a["severity"],
                    json.dumps(a["aliases"]) if a["aliases"] else "[]",
                    a["refs"],
                )
                for a in self.advisories
            ],
        )
        self.db.executemany(
            "INSERT INTO aliases VALUES (?, ?)",
            [
                (alias.upper(), a["id"])
                for a in self.advisories
                for alias in [a["id"], *a["aliases"]]
            ],
        )
        self.db.executemany(
            "INSERT INTO affected VALUES (?, ?, ?, ?, ?)",
            [tuple(row.values()) for row in self.affected],
        )
        self.db.executemany(
            "INSERT INTO cpe_matches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(row.values()) for row in self.cpes],
        )
        self.advisories, self.affected, self.cpes = [], [], []

    def osv_records(self, records: Iterable[tuple[Any, str]]) -> int:
        before = self.count
        for record, where in records:
            advisory, rows = _osv_rows(record, where)
            self.add(advisory, rows, "osv")
        return self.count - before


def _osv_from_zip(path: Path) -> Iterator[tuple[Any, str]]:
    with zipfile.ZipFile(path) as archive:
        entries = [e for e in archive.infolist() if e.filename.endswith(".json")]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise VulnDbError(f"{path}: {len(entries)} entries, more than {MAX_ZIP_ENTRIES}")
        if sum(e.file_size for e in entries) > MAX_UNCOMPRESSED:
            raise VulnDbError(f"{path}: expands to more than {MAX_UNCOMPRESSED} bytes")
        for entry in entries:
            where = f"{path}:{entry.filename}"
            if entry.file_size > MAX_RECORD:
                raise VulnDbError(f"{where}: a record of {entry.file_size} bytes")
            with archive.open(entry) as handle:
                yield _json_document(handle.read(MAX_RECORD + 1), where), where


def _json_document(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VulnDbError(f"{where}: not JSON ({exc})") from None


def _osv_file(path: Path) -> Iterator[tuple[Any, str]]:
    with _opened(path) as stream:
        data = stream.read(MAX_RECORD * 10 + 1)
    document = _json_document(data, str(path))
    items = document if isinstance(document, list) else [document]
    for number, item in enumerate(items):
        yield item, f"{path} record {number}"


def _import_one(importer: _Importer, path: Path, kind: str) -> int:
    db = importer.db
    if kind == "osv-folder":
        files = sorted(path.rglob("*.json"))
        return importer.osv_records(
            (record, where) for file in files for record, where in _osv_file(file)
        )
    if kind == "osv-zip":
        return importer.osv_records(_osv_from_zip(path))
    if kind == "osv":
        return importer.osv_records(_osv_file(path))
    if kind == "nvd":
        count = 0
        with _opened(path) as stream:
            for number, item in enumerate(_iter_json_array(stream, "vulnerabilities", str(path))):
                advisory, matches = _nvd_rows(item, f"{path} record {number}")
                importer.add(advisory, matches, "nvd")
                count += 1
        return count
    if kind == "kev":
        with _opened(path) as stream:
            rows = [
                _kev_row(item, f"{path} record {n}")
                for n, item in enumerate(_iter_json_array(stream, "vulnerabilities", str(path)))
            ]
        db.executemany(
            "INSERT OR REPLACE INTO kev VALUES (:cve, :date_added, :due_date, :ransomware,"
            " :vendor, :product, :name)",
            rows,
        )
        return len(rows)
    return _import_epss(db, path)


def _import_epss(db: sqlite3.Connection, path: Path) -> int:
    date = None
    count = 0
    with _opened(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        first = text.readline()
        if first.startswith("#"):
            for part in first[1:].strip().split(","):
                key, _, value = part.partition(":")
                if key == "score_date":
                    date = value[:10]
            header = text.readline()
        else:
            header = first
        if [h.strip().lower() for h in header.split(",")][:3] != ["cve", "epss", "percentile"]:
            raise VulnDbError(f"{path}: line 2: expected the header cve,epss,percentile")
        batch: list[tuple[str, float, float, str | None]] = []
        for line_number, row in enumerate(csv.reader(text), start=3):
            if not row:
                continue
            try:
                cve, score, percentile = row[0].strip().upper(), float(row[1]), float(row[2])
            except (IndexError, ValueError):
                raise VulnDbError(f"{path}: line {line_number}: not cve,epss,percentile") from None
            if not cve.startswith("CVE-") or not 0 <= score <= 1 or not 0 <= percentile <= 1:
                raise VulnDbError(f"{path}: line {line_number}: out of range")
            batch.append((cve, score, percentile, date))
            count += 1
            if len(batch) >= BATCH:
                db.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?, ?)", batch)
                batch = []
        db.executemany("INSERT OR REPLACE INTO epss VALUES (?, ?, ?, ?)", batch)
    return count


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.executescript(_SCHEMA)
    found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is not None and int(found[0]) != SCHEMA_VERSION:
        db.close()
        raise VulnDbError(f"{path}: schema {found[0]}, this posture reads {SCHEMA_VERSION}")
    return db


def import_files(
    db_path: Path, paths: Sequence[Path], *, now: dt.datetime | None = None
) -> ImportReport:
    """Import every file into `db_path`, all or nothing."""
    started = dt.datetime.now(dt.UTC)
    moment = now or started
    db_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=".vulndb-", dir=db_path.parent)
    os.close(descriptor)
    temp = Path(temp_name)
    try:
        if db_path.exists():
            shutil.copyfile(db_path, temp)
        db = _connect(temp)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("BEGIN")
            # Indexes are built once after the bulk insert: cheaper than maintaining them.
            for (index,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND name NOT IN ('affected_advisory', 'cpe_advisory', 'aliases_advisory')"
            ).fetchall():
                db.execute(f'DROP INDEX "{index}"')
            importer = _Importer(db)
            done = []
            for path in paths:
                path = Path(path)
                if not path.exists():
                    raise VulnDbError(f"{path}: no such file or folder")
                kind = detect_format(path)
                try:
                    count = _import_one(importer, path, kind)
                    importer.flush()
                except (VersionError, UnicodeDecodeError, OSError, EOFError) as exc:
                    raise VulnDbError(f"{path}: {exc}") from None
                except (zipfile.BadZipFile, gzip.BadGzipFile) as exc:
                    raise VulnDbError(f"{path}: a broken archive ({exc})") from None
                digest = _file_sha256(path) if path.is_file() else ""
                db.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
                    (kind, str(path), digest, count, moment.isoformat()),
                )
                done.append((str(path), kind, count))
            for statement in _SCHEMA.split(";"):
                if "CREATE INDEX" in statement:
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('built_at', ?)",
                (str(SCHEMA_VERSION), moment.isoformat()),
            )
            db.execute("COMMIT")
            total = db.execute("SELECT count(*) FROM advisories").fetchone()[0]
        finally:
            db.close()
        os.replace(temp, db_path)
    finally:
        temp.unlink(missing_ok=True)
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    return ImportReport(tuple(done), int(total), seconds)


# --- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    path: Path
    built_at: dt.datetime | None
    age_days: float | None
    counts: dict[str, int]
    sources: tuple[tuple[str, str, int, str], ...]  # (format, file, records, imported at)
    warning: str | None = None


def status(db_path: Path, *, max_age_days: float = 7, now: dt.datetime | None = None) -> Status:
    if not db_path.exists():
        raise VulnDbError(f"{db_path}: no advisory database; run `posture vulndb import FILE`")
    db = _connect(db_path)
    try:
        counts = {
            table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("advisories", "affected", "cpe_matches", "kev", "epss")
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
    return Status(db_path, built_at, age, counts, sources, warning)


# --- lookup --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    advisory_id: str
    cves: tuple[str, ...]
    summary: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None
    fixed_version: str | None
    kev: bool = False
    kev_ransomware: bool | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    sources: tuple[str, ...] = ()
    match_kind: str = "nvd-cpe"  # or "osv-range"

    @property
    def priority(self) -> tuple[int, float, float]:
        """Sort key, most urgent first: KEV, then EPSS >= EPSS_NOTABLE, then CVSS."""
        notable = self.epss is not None and self.epss >= EPSS_NOTABLE
        return (
            0 if self.kev else 1 if notable else 2,
            -(self.epss or 0.0),
            -(self.cvss_score or 0.0),
        )


@dataclass
class VulnDb:
    """An open advisory database for lookups (read-only); cached per product."""

    path: Path
    db: sqlite3.Connection = field(init=False)

    def __post_init__(self) -> None:
        if not self.path.exists():
            raise VulnDbError(f"{self.path}: no advisory database; run `posture vulndb import`")
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        # Lookups jump around the whole file: map it rather than page it through a 2 MB cache.
        self.db.execute("PRAGMA mmap_size = 1073741824")
        self.db.execute("PRAGMA cache_size = -65536")
        self._cpe_rows = lru_cache(maxsize=16384)(self._load_cpe_rows)
        self._osv_rows = lru_cache(maxsize=16384)(self._load_osv_rows)
        self._advisory = lru_cache(maxsize=65536)(self._load_advisory)
        # Ecosystems with OSV ranges at all: a lookup in another one skips the query.
        self.ecosystems = frozenset(
            row[0] for row in self.db.execute("SELECT DISTINCT ecosystem FROM affected")
        )
        self._exploitation = lru_cache(maxsize=65536)(self._load_exploitation)

    def close(self) -> None:
        self.db.close()

    def _load_cpe_rows(self, vendor: str, product: str) -> tuple[tuple[Any, ...], ...]:
        return tuple(
            self.db.execute(
                "SELECT advisory_id, version, start_including, start_excluding, end_including,"
                " end_excluding FROM cpe_matches WHERE vendor = ? AND product = ?",
                (vendor, product),
            )
        )

    def _load_osv_rows(self, ecosystem: str, package: str) -> tuple[tuple[Any, ...], ...]:
        rows = self.db.execute(
            "SELECT advisory_id, events, versions FROM affected WHERE ecosystem = ?"
            " AND package = ?",
            (ecosystem, package),
        )
        return tuple(
            (
                advisory_id,
                tuple(RangeEvent(*next(iter(e.items()))) for e in json.loads(events)),
                tuple(json.loads(versions)),
            )
            for advisory_id, events, versions in rows
        )

    def lookup(
        self,
        product: str,
        version: str,
        *,
        ecosystem: Ecosystem = Ecosystem.UPSTREAM,
        cpe_names: Sequence[tuple[str, str]] = (),
    ) -> list[Match]:
        """Advisories affecting `product` at `version`: OSV ranges of (ecosystem, product) and,
        for upstream versions, NVD CPE criteria of `cpe_names` (vendor, product)."""
        hits: dict[str, tuple[str, str | None]] = {}  # advisory id -> (kind, fixed version)
        try:
            sort_key(ecosystem, version)
        except VersionError:
            return []
        osv = ecosystem.value in self.ecosystems
        rows = self._osv_rows(ecosystem.value, product.lower()) if osv else ()
        for advisory_id, events, versions in rows:
            if affected(ecosystem, version, events, versions=versions):
                hits[advisory_id] = ("osv-range", first_fixed(ecosystem, version, events))
        if ecosystem is Ecosystem.UPSTREAM:
            for vendor, name in cpe_names:
                for row in self._cpe_rows(vendor.lower(), name.lower()):
                    covered, fixed = _cpe_affects(version, row)
                    if covered and row[0] not in hits:
                        hits[row[0]] = ("nvd-cpe", fixed)
        return self._matches(hits)

    def _load_advisory(self, advisory_id: str) -> tuple[Any, ...] | None:
        row = self.db.execute(
            "SELECT source, summary, cvss_score, cvss_vector, severity, aliases"
            " FROM advisories WHERE id = ?",
            (advisory_id,),
        ).fetchone()
        if row is None:
            return None
        names = (advisory_id, *json.loads(row[5]))
        cves = tuple(sorted({n.upper() for n in names if _is_cve(n)}))
        return (*row[:5], cves)

    def _load_exploitation(self, cve: str) -> tuple[Any, ...]:
        """(in KEV, ransomware use, EPSS score, EPSS percentile) of one CVE, in one query."""
        row = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM kev WHERE cve = ?1),"
            " (SELECT ransomware FROM kev WHERE cve = ?1),"
            " (SELECT score FROM epss WHERE cve = ?1),"
            " (SELECT percentile FROM epss WHERE cve = ?1)",
            (cve,),
        ).fetchone()
        return (bool(row[0]), None if row[1] is None else bool(row[1]), row[2], row[3])

    def _matches(self, hits: dict[str, tuple[str, str | None]]) -> list[Match]:
        merged: dict[str, Match] = {}
        for advisory_id, (kind, fixed) in hits.items():
            row = self._advisory(advisory_id)
            if row is None:
                continue
            source, summary, score, vector, severity, cves = row
            if score is None:  # a distro advisory: the score of its CVE's own record, if any
                scored = next(
                    (r for c in cves if c != advisory_id and (r := self._advisory(c)) and r[2]),
                    None,
                )
                if scored is not None:
                    score, vector, severity = scored[2], scored[3], scored[4]
            facts = [self._exploitation(cve) for cve in cves]
            kev = [f for f in facts if f[0]]
            epss = [f[2] for f in facts if f[2] is not None]
            percentiles = [f[3] for f in facts if f[3] is not None]
            match = Match(
                advisory_id=advisory_id,
                cves=cves,
                summary=summary,
                cvss_score=score,
                cvss_vector=vector,
                severity=severity,
                fixed_version=fixed,
                kev=bool(kev),
                kev_ransomware=kev[0][1] if kev else None,
                epss=max(epss, default=None),
                epss_percentile=max(percentiles, default=None),
                sources=(source,),
                match_kind=kind,
            )
            key = cves[0] if cves else advisory_id
            earlier = merged.get(key)
            merged[key] = match if earlier is None else _merge(earlier, match)
        return sorted(merged.values(), key=lambda m: (m.priority, m.advisory_id))


def _is_cve(name: str) -> bool:
    return name.upper().startswith("CVE-")


def _merge(a: Match, b: Match) -> Match:
    """One match per CVE: the NVD record's score where the other lacks one, every source."""
    keep = a if a.cvss_score is not None or b.cvss_score is None else b
    return Match(
        advisory_id=keep.advisory_id,
        cves=tuple(sorted({*a.cves, *b.cves})),
        summary=keep.summary or a.summary or b.summary,
        cvss_score=keep.cvss_score,
        cvss_vector=keep.cvss_vector or a.cvss_vector or b.cvss_vector,
        severity=keep.severity or a.severity or b.severity,
        # OSV names the fixed release exactly (9.8p1); NVD's excluded end may be coarser (9.8).
        fixed_version=(a if a.match_kind == "osv-range" else b).fixed_version
        or a.fixed_version
        or b.fixed_version,
        kev=a.kev or b.kev,
        kev_ransomware=a.kev_ransomware if a.kev_ransomware is not None else b.kev_ransomware,
        epss=a.epss if a.epss is not None else b.epss,
        epss_percentile=a.epss_percentile if a.epss_percentile is not None else b.epss_percentile,
        sources=tuple(sorted({*a.sources, *b.sources})),
        match_kind=a.match_kind if a.match_kind == "osv-range" else b.match_kind,
    )


def _cpe_affects(version: str, row: tuple[Any, ...]) -> tuple[bool, str | None]:
    """Whether the CPE criterion covers `version`, and its fixed version (the excluded end)."""
    _, exact, start_in, start_ex, end_in, end_ex = row
    up = Ecosystem.UPSTREAM
    target = sort_key(up, version)
    try:
        if exact is not None:
            return sort_key(up, exact) == target, None
        if not any((start_in, start_ex, end_in, end_ex)):
            return False, None  # "every version": NVD's way to say "all", too broad to claim
        inside = not (
            (start_in and target < sort_key(up, start_in))
            or (start_ex and target <= sort_key(up, start_ex))
            or (end_in and target > sort_key(up, end_in))
            or (end_ex and target >= sort_key(up, end_ex))
        )
    except VersionError:
        return False, None
    return inside, end_ex if inside else None


__all__ = [
    "DEFAULT_PATH",
    "ImportReport",
    "Match",
    "Status",
    "VulnDb",
    "VulnDbError",
    "detect_format",
    "import_files",
    "status",
]
