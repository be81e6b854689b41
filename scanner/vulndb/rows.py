"""The table rows of feed records, as scanner/vulndb/db.py stores them: JSON lists encoded, version
ranges flattened into spans of encoded versions (scanner/vulndb/spans.py). A pure function of
the records, so that a helper process can build them while the importing one writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.vulndb.importers import Advisory, EpssScore, KevEntry, VulnDbError
from scanner.vulndb.spans import Span, cpe_span, listed_span, osv_spans
from scanner.vulndb.versions import Ecosystem, VersionError

Row = tuple[Any, ...]
_ECOSYSTEMS = {ecosystem.value: ecosystem for ecosystem in Ecosystem}


@dataclass
class Batch:
    """One executemany round: the rows of up to `size` records (see `batches`), in the column
    order of db.py's INSERT statements."""

    records: int = 0  # records read into this batch
    ids: list[str] = field(default_factory=list)  # its advisories (an id once: the last wins)
    advisories: list[Row] = field(default_factory=list)
    aliases: list[Row] = field(default_factory=list)
    affected: list[Row] = field(default_factory=list)
    spans: list[Row] = field(default_factory=list)
    cpes: list[Row] = field(default_factory=list)  # without their keys: see `keyed`
    nvd_kev: list[Row] = field(default_factory=list)  # NVD's copies of KEV entries
    kev: list[Row] = field(default_factory=list)  # CISA's catalog
    epss: list[Row] = field(default_factory=list)


def batches(records: Iterable[Any], size: int) -> Iterator[Batch]:
    """The records in batches of at most `size` (advisories, KEV and EPSS entries together);
    the last batch may be empty, as it carries the count of the records after the last full
    one."""
    advisories: dict[str, Advisory] = {}
    batch = Batch()
    for record in records:
        if isinstance(record, Advisory):
            advisories[record.id] = record
        elif isinstance(record, EpssScore):
            batch.epss.append((record.cve, record.score, record.percentile, record.date))
        elif isinstance(record, KevEntry):
            ransomware = None if record.ransomware is None else int(record.ransomware)
            batch.kev.append(
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
        batch.records += 1
        if len(advisories) + len(batch.kev) + len(batch.epss) >= size:
            yield _with_advisories(batch, advisories.values())
            advisories, batch = {}, Batch()
    yield _with_advisories(batch, advisories.values())


def _with_advisories(batch: Batch, advisories: Iterable[Advisory]) -> Batch:
    for a in advisories:
        batch.ids.append(a.id)
        batch.advisories.append(
            (
                a.id,
                a.source,
                a.summary,
                a.published,
                a.modified,
                a.cvss_score,
                a.cvss_vector,
                a.severity,
                json_list(a.aliases),
                json_list(a.references),
            )
        )
        batch.aliases.extend((name.upper(), a.id) for name in a.aliases if name != a.id)
        for r in a.affected:
            batch.affected.append(
                (
                    a.id,
                    r.ecosystem,
                    r.release,
                    r.package,
                    json_events(r.events),
                    json_list(r.versions),
                )
            )
            batch.spans.extend(
                (a.id, r.ecosystem, r.release, r.package, *span)
                for span in range_spans(a.id, r.ecosystem, r.events, r.versions)
            )
        for c in a.cpes:
            bounds = (
                c.version,
                c.start_including,
                c.start_excluding,
                c.end_including,
                c.end_excluding,
                c.vulnerable,
            )
            batch.cpes.append((a.id, c.vendor, c.product, *bounds))
        if a.kev is not None:
            batch.nvd_kev.append((a.kev.cve, a.kev.date_added, a.kev.due_date, a.kev.name))
    return batch


def keyed(cpes: list[Row]) -> list[Row]:
    """Criteria rows with their key_from, key_below and fixed: computed by the writer, not with
    the other rows, which a helper process may build, so that the two processes share the
    work more evenly."""
    return [(*row, *cpe_keys(row[3:])) for row in cpes]


def cpe_keys(row: Sequence[Any]) -> tuple[bytes | None, bytes | None, str | None]:
    """key_from, key_below and fixed of a criterion (version, four bounds, vulnerable)."""
    span = cpe_span(*row[:5]) if row[5] else None
    if span is None:
        return None, None, None
    return span[0], span[1], row[4] if row[0] is None else None


def range_spans(advisory_id: str, ecosystem: str, events: Any, versions: Any) -> list[Span]:
    """The spans of one OSV range or version list (an `affected` row)."""
    known = _ECOSYSTEMS.get(ecosystem, Ecosystem.UPSTREAM)
    try:
        found = osv_spans(known, events) if events else []
    except VersionError as exc:  # the importers refuse such events; an old file might not
        raise VulnDbError(f"{advisory_id}: {exc}") from None
    for version in versions:
        point = listed_span(known, version)
        if point is not None:
            found.append(point)
    return found


_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def json_list(items: Sequence[str]) -> str:
    """`json.dumps(list(items))`, without the encoder's overhead for the usual plain strings
    (URLs, ids): this runs once or twice per advisory."""
    if not items:
        return "[]"
    if _JSON_PLAIN.fullmatch("".join(items)):  # one test for all: none has a quote, ...
        return '["' + '", "'.join(items) + '"]'
    return json.dumps(list(items))


def json_events(events: Sequence[tuple[str, str]]) -> str:
    """`json.dumps([{kind: version}, ...])`, by json_list's shortcut for plain versions."""
    if not events:
        return "[]"
    if _JSON_PLAIN.fullmatch("".join(version for _, version in events)):
        return "[" + ", ".join(f'{{"{kind}": "{version}"}}' for kind, version in events) + "]"
    return json.dumps([{kind: version} for kind, version in events])


__all__ = ["Batch", "batches", "cpe_keys", "json_events", "json_list", "keyed", "range_spans"]
