"""The executive profile of `posture report`: the figures of scanner.report.executive as a
self-contained HTML page with inline SVG charts (no script, nothing fetched), as Markdown, or as
JSON. Target-derived text (hosts, titles) is escaped by each format; the SVG holds only numbers
and fixed labels."""

from __future__ import annotations

import json
import math
from typing import Any

from markupsafe import Markup

from scanner.report.escape import clean
from scanner.report.executive import (
    AGE_BUCKETS,
    OLDEST_BUCKET,
    SEVERITIES,
    ExecutiveSummary,
    ScopeCoverage,
)
from scanner.report.templates import html_environment, markdown_environment

COLOURS = {
    "critical": "#7a0019",
    "high": "#c0392b",
    "medium": "#d68910",
    "low": "#2e86c1",
    "info": "#6c7a89",
}
AGE_LABELS = (*(label for *_, label in AGE_BUCKETS), OLDEST_BUCKET)
MAX_TREND = 50  # scans drawn in the trend chart (the most recent)


def severity_svg(summary: ExecutiveSummary) -> Markup:
    """Horizontal bars: active findings per severity."""
    top = max([1, *summary.active.values()])
    rows = []
    for i, severity in enumerate(SEVERITIES):
        n = summary.active[severity]
        width = round(300 * n / top)
        y = 10 + i * 26
        rows.append(
            f'<text x="0" y="{y + 14}" font-size="12">{severity.value}</text>'
            f'<rect x="70" y="{y}" width="{width}" height="18" fill="{COLOURS[severity.value]}"/>'
            f'<text x="{76 + width}" y="{y + 14}" font-size="12">{n}</text>'
        )
    height = 20 + 26 * len(SEVERITIES)
    return Markup(  # noqa: S704 - numbers and fixed labels only
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Active findings by '
        f'severity" width="420" height="{height}" font-family="sans-serif">{"".join(rows)}</svg>'
    )


def trend_svg(summary: ExecutiveSummary) -> Markup:
    """Stacked bars of open findings by severity after each scan, new and fixed below."""
    points = summary.trend[-MAX_TREND:]
    if not points:
        return Markup("")
    top = max([1, *(sum(p.open_by_severity.values()) for p in points)])
    bars = []
    for i, point in enumerate(points):
        x, base = 40 + i * 36, 180
        for severity in reversed(SEVERITIES):
            n = point.open_by_severity[severity]
            h = round(150 * n / top)
            if h:
                base -= h
                bars.append(
                    f'<rect x="{x}" y="{base}" width="24" height="{h}" '
                    f'fill="{COLOURS[severity.value]}"><title>{severity.value}: {n}</title></rect>'
                )
        bars.append(
            f'<text x="{x + 12}" y="196" font-size="10" text-anchor="middle">'
            f"#{point.scan_id}</text>"
            f'<text x="{x + 12}" y="210" font-size="10" text-anchor="middle" fill="#c0392b">'
            f"+{point.new}</text>"
            f'<text x="{x + 12}" y="224" font-size="10" text-anchor="middle" fill="#1e8449">'
            f"-{point.fixed}</text>"
        )
    width = 60 + 36 * len(points)
    return Markup(  # noqa: S704 - numbers and fixed labels only
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Open findings after '
        f'each scan" width="{width}" height="232" font-family="sans-serif">'
        f'<text x="0" y="14" font-size="11">{top}</text><text x="0" y="180" font-size="11">0'
        f'</text><line x1="36" y1="180" x2="{width}" y2="180" stroke="#999"/>{"".join(bars)}'
        "</svg>"
    )


def percent(share: float) -> str:
    """A share as a percentage a reader can tell from zero: 4 of 65,546 is 0.0061%, not 0.0%."""
    value = 100 * share
    if value == 0 or value >= 0.1:
        return f"{value:.1f}%"
    decimals = 1 - math.floor(math.log10(value))  # two significant digits, never 1e-05
    return f"{value:.{decimals}f}%"


def scope_size(scope: ScopeCoverage) -> str:
    """The scope size as shown: 65,546, 65,546 and 1 host name, or why there is none."""
    if scope.addresses_in_scope is None:
        return "no scope recorded"
    size = f"{scope.addresses_in_scope:,}"
    if scope.names_in_scope:
        plural = "s" if scope.names_in_scope > 1 else ""
        size += f" and {scope.names_in_scope:,} host name{plural}"
    return size


def _coverage_dict(summary: ExecutiveSummary) -> dict[str, Any] | None:
    if summary.coverage is None:
        return None
    scope = summary.scope

    def share(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 4)

    return {
        "hosts_scanned": summary.coverage[0],
        "hosts_total": summary.coverage[1],
        "hosts_up": scope.up if scope else None,
        "addresses_in_scope": scope.addresses_in_scope if scope else None,
        "names_in_scope": scope.names_in_scope if scope else None,
        "in_scope": scope.in_scope if scope else None,
        "targets": scope.targets if scope else None,
        "targets_percent_of_scope": share(scope.scope_share) if scope else None,
        "scanned_percent_of_targets": share(scope.scanned_share) if scope else None,
    }


def summary_as_dict(summary: ExecutiveSummary) -> dict[str, Any]:
    return {
        "profile": "executive",
        "today": summary.today.isoformat(),
        "scan": summary.scan.id if summary.scan else None,
        "previous": summary.previous.id if summary.previous else None,
        "active": {s.value: n for s, n in summary.active.items()},
        "change_since_previous": (
            {s.value: n for s, n in summary.change.items()} if summary.change is not None else None
        ),
        "trend": [
            {
                "scan": p.scan_id,
                "day": p.day.isoformat(),
                "new": p.new,
                "fixed": p.fixed,
                "open": {s.value: n for s, n in p.open_by_severity.items()},
            }
            for p in summary.trend
        ],
        "aging": {s.value: dict(b) for s, b in summary.aging.items()},
        "sla": {
            s.severity.value: {
                "days": s.sla_days,
                "breached": s.breached,
                "due_soon": s.due_soon,
                "mean_days_to_fix": s.mean_days_to_fix,
            }
            for s in summary.sla.stats
        },
        "sla_breaches": [
            {
                "fingerprint": i.finding.fingerprint,
                "title": clean(i.finding.title),
                "host": clean(i.finding.host),
                "severity": i.finding.severity.value,
                "days_overdue": i.days_overdue,
                "owner": summary.owners.get(i.finding.fingerprint, "unassigned"),
            }
            for i in summary.sla.breached
        ],
        "top_hosts": [
            {"host": clean(h), "weight": w, "active": {s.value: n for s, n in c.items()}}
            for h, w, c in summary.top_hosts
        ],
        "expiring_exceptions": [
            {"fingerprint": fp, "title": clean(t), "host": clean(h), "expires": d.isoformat()}
            for fp, t, h, d in summary.expiring
        ],
        "coverage": _coverage_dict(summary),
    }


def render_executive(summary: ExecutiveSummary, fmt: str, tool_version: str) -> str:
    if fmt == "json":
        return json.dumps(summary_as_dict(summary), indent=2) + "\n"
    context = {
        "s": summary,
        "severities": SEVERITIES,
        "ages": AGE_LABELS,
        "version": tool_version,
        "clean": clean,
        "percent": percent,
        "scope_size": scope_size,
    }
    if fmt == "html":
        template = html_environment().get_template("executive.html.j2")
        return template.render(
            **context, severity_chart=severity_svg(summary), trend_chart=trend_svg(summary)
        )
    if fmt == "md":
        return markdown_environment().get_template("executive.md.j2").render(**context)
    raise ValueError(f"the executive profile renders html, md or json, not {fmt}")


__all__ = ["render_executive", "severity_svg", "summary_as_dict", "trend_svg"]
