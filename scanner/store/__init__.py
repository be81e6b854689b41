"""The findings store: SQLite (WAL) with migrations, scans, and the findings lifecycle."""

from scanner.store.db import Store, Undetermined
from scanner.store.lifecycle import ChunkSummary, LifecycleSummary, ScanCoverage
from scanner.store.rows import FindingEvent, OwnerAssignment

__all__ = [
    "ChunkSummary",
    "FindingEvent",
    "LifecycleSummary",
    "OwnerAssignment",
    "ScanCoverage",
    "Store",
    "Undetermined",
]
