"""CSV report: one row per finding under a header row, every cell safe from formula injection."""

from __future__ import annotations

import csv
import io

from scanner.report.interface import ReportData, ReportFormat
from scanner.report.view import FindingView, build_view
from scanner.safetext import for_csv

COLUMNS = (
    "severity",
    "status",
    "owner",
    "confidence",
    "host",
    "hostname",
    "port",
    "proto",
    "rule_id",
    "title",
    "new",
    "first_seen",
    "last_seen",
    "cves",
    "controls",
    "evidence",
    "remediation",
    "fingerprint",
)


# CSV (like JSON) is written by its serializer, not a Jinja template: only the csv module quotes
# commas, quotes and line breaks correctly.
class CsvFormat(ReportFormat):
    name = "csv"
    extension = "csv"

    def render(self, data: ReportData) -> str:
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for finding in build_view(data).findings:
            writer.writerow([_cell(v) for v in _row(finding)])
        return out.getvalue()


def _row(f: FindingView) -> tuple[object, ...]:
    return (
        f.severity.value,
        f.status.value,
        f.owner,
        f.confidence.value,
        f.host,
        f.hostname,
        f.port,
        f.proto,
        f.rule.id,
        f.title,
        {True: "yes", False: "no", None: ""}[f.new],
        f.first_seen,
        f.last_seen,
        " ".join(f.cves),
        " ".join(f.controls),
        "; ".join(f.evidence_lines),
        f.rule.remediation,
        f.fingerprint,
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # the view already clipped each field; the limit here only must not clip it a second time
    return for_csv(text, limit=max(len(text), 1))
