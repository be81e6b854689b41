"""The advisories that ship inside posture (scanner/vulndb/advisories/): real NVD CVE 2.0
records, CISA KEV entries and distro OSV records for common network daemons, so that a fresh
install can match versions offline before anyone imports full feeds. Where they come from and
how to refresh them: advisories/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from scanner.vulndb.db import (
    SCHEMA_VERSION,
    ImportReport,
    VulnDbError,
    _schema_version,
    import_files,
)

log = logging.getLogger(__name__)

BUNDLE_DIR = Path(__file__).resolve().parent / "advisories"
# Imported in this order: NVD first, then the distro OSV records, then KEV (catalog entries
# carry the ransomware flag that NVD's own KEV fields lack).
_PARTS = ("nvd", "osv", "kev")


def default_path() -> Path:
    """Where the advisory database lives unless `--vulndb` or the config's `vulndb` says:
    $POSTURE_VULNDB, else $XDG_DATA_HOME/posture/vulndb.sqlite (~/.local/share by default)."""
    named = os.environ.get("POSTURE_VULNDB")
    if named:
        return Path(named)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "posture" / "vulndb.sqlite"


def bundled_files() -> list[Path]:
    """Every file of the bundle, in import order."""
    files = [path for part in _PARTS for path in sorted((BUNDLE_DIR / part).glob("*.json"))]
    if not files:
        raise VulnDbError(f"posture's bundled advisories are missing from {BUNDLE_DIR}")
    return files


def bundle_date() -> dt.datetime:
    """When the bundle was assembled (its manifest's `as_of`): the database built from it is
    dated then, so `posture vulndb status` tells its true age."""
    manifest = BUNDLE_DIR / "manifest.json"
    try:
        as_of = json.loads(manifest.read_text(encoding="utf-8"))["as_of"]
        return dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.UTC)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VulnDbError(f"{manifest}: unreadable bundle manifest ({exc})") from None


def import_bundle(db_path: Path | str) -> ImportReport:
    """Import the bundled advisories into `db_path` (all or nothing, like any import)."""
    return import_files(db_path, bundled_files(), now=bundle_date())


def ensure_database(db_path: Path) -> ImportReport | None:
    """Build the database from the bundle when there is none at `db_path` yet, or bring one an
    older posture built to this posture's schema (in place, keeping every advisory); None when
    it was usable as it was."""
    if not db_path.exists():
        report = import_bundle(db_path)
        log.info("built %s from posture's bundled advisories (%d)", db_path, report.advisories)
        return report
    found = _schema_of(db_path)
    if found is not None and found < SCHEMA_VERSION:
        report = import_files(db_path, [])
        log.info("migrated %s to advisory schema %d", db_path, SCHEMA_VERSION)
        return report
    return None


def _schema_of(path: Path) -> int | None:
    """The schema version an advisory database file says it has (None: not one)."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return _schema_version(db)
    except (sqlite3.DatabaseError, ValueError):
        return None


__all__ = [
    "BUNDLE_DIR",
    "bundle_date",
    "bundled_files",
    "default_path",
    "ensure_database",
    "import_bundle",
]
