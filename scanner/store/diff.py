"""What changed between two scans, from what each observed and the status changes in between.

- new: observed by the later scan, never observed by the earlier one or any scan before it;
- reopened: observed by the later scan, not by the earlier one, but by some scan before it (it
  was fixed, or unseen, and came back);
- fixed: observed by the earlier scan, not by the later one, and a scan in between (or the later
  one itself) marked it fixed;
- unchanged: observed by both;
- not_seen: observed by the earlier scan, not by the later one, yet not fixed by it: the later
  scan did not cover it (other targets, its rule undetermined, a host that timed out), or it was
  accepted or marked a false positive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from scanner.errors import ConfigError
from scanner.model import FindingStatus, ScanRecord, ScanStatus, StoredFinding, finding_sort_key
from scanner.store.db import Store

KINDS = ("new", "reopened", "fixed", "unchanged", "not_seen")


@dataclass(frozen=True)
class ScanDiff:
    before: ScanRecord
    after: ScanRecord
    new: tuple[StoredFinding, ...] = field(default=())
    reopened: tuple[StoredFinding, ...] = field(default=())
    fixed: tuple[StoredFinding, ...] = field(default=())
    unchanged: tuple[StoredFinding, ...] = field(default=())
    not_seen: tuple[StoredFinding, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in KINDS}


def _observed(store: Store, scan_id: int) -> set[str]:
    rows = store.db.execute("SELECT fingerprint FROM observations WHERE scan_id = ?", (scan_id,))
    return {row[0] for row in rows}


def _seen_up_to(store: Store, fingerprints: set[str], scan_id: int) -> set[str]:
    """Those of `fingerprints` some scan up to and including `scan_id` observed."""
    if not fingerprints:
        return set()
    rows = store.db.execute(
        "SELECT DISTINCT fingerprint FROM observations WHERE scan_id <= ?"
        " AND fingerprint IN (SELECT value FROM json_each(?))",
        (scan_id, json.dumps(sorted(fingerprints))),
    )
    return {row[0] for row in rows}


def _fixed_between(store: Store, fingerprints: set[str], after: int, upto: int) -> set[str]:
    """Those of `fingerprints` whose last status change by a scan in (after, upto] is "fixed"."""
    if not fingerprints:
        return set()
    rows = store.db.execute(
        "SELECT fingerprint, to_status FROM finding_events"
        " WHERE scan_id > ? AND scan_id <= ? AND fingerprint IN (SELECT value FROM json_each(?))"
        " ORDER BY id",
        (after, upto, json.dumps(sorted(fingerprints))),
    )
    last: dict[str, str] = {}
    for fingerprint, status in rows:
        last[fingerprint] = status
    return {fp for fp, status in last.items() if status == FindingStatus.FIXED.value}


def diff_scans(store: Store, before_id: int, after_id: int) -> ScanDiff:
    """The findings that changed between scan `before_id` and the later scan `after_id`."""
    before, after = store.get_scan(before_id), store.get_scan(after_id)
    if before.id >= after.id:
        raise ConfigError(
            f"scan {before.id} is not earlier than scan {after.id}: give the older one first"
        )
    seen_before, seen_after = _observed(store, before.id), _observed(store, after.id)
    appeared = seen_after - seen_before
    came_back = _seen_up_to(store, appeared, before.id)
    gone = seen_before - seen_after
    fixed = _fixed_between(store, gone, before.id, after.id)
    groups = {
        "new": appeared - came_back,
        "reopened": came_back,
        "fixed": fixed,
        "unchanged": seen_before & seen_after,
        "not_seen": gone - fixed,
    }
    everything = {f.fingerprint: f for f in store.findings(statuses=list(FindingStatus))}
    return ScanDiff(
        before,
        after,
        **{
            kind: tuple(
                sorted((everything[fp] for fp in fps if fp in everything), key=finding_sort_key)
            )
            for kind, fps in groups.items()
        },
    )


def _same_scope(a: ScanRecord, b: ScanRecord) -> bool:
    return (sorted(a.targets), sorted(a.scope), sorted(a.excludes)) == (
        sorted(b.targets),
        sorted(b.scope),
        sorted(b.excludes),
    )


def default_pair(store: Store, before_id: int | None = None) -> tuple[int, int]:
    """The scans `posture diff` compares when not told: the most recent pair of completed scans
    of the same targets and scope; with `before_id` alone, it and the last completed scan of its
    scope after it."""
    completed = [s for s in store.list_scans() if s.status is ScanStatus.COMPLETED]
    completed.sort(key=lambda s: s.id)
    if before_id is not None:
        before = store.get_scan(before_id)
        later = [s for s in completed if s.id > before.id and _same_scope(s, before)]
        if not later:
            raise ConfigError(f"no completed scan of scan {before.id}'s scope came after it")
        return before.id, later[-1].id
    for index in range(len(completed) - 1, 0, -1):
        after = completed[index]
        earlier = [s for s in completed[:index] if _same_scope(s, after)]
        if earlier:
            return earlier[-1].id, after.id
    raise ConfigError(
        "no two completed scans of the same targets and scope to compare: give SCAN_A and SCAN_B"
    )


def diff_as_dict(diff: ScanDiff, as_dict: Any) -> dict[str, Any]:
    return {
        "before": diff.before.id,
        "after": diff.after.id,
        "counts": diff.counts(),
        **{kind: [as_dict(f) for f in getattr(diff, kind)] for kind in KINDS},
    }


__all__ = ["KINDS", "ScanDiff", "default_pair", "diff_as_dict", "diff_scans"]
