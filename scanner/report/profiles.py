"""The three report profiles rendered from the store in one place, for `posture report` and for
scheduled jobs: technical (every finding of one scan, any format), executive and compliance
(html, md, json); any of them as PDF (the HTML printed by Chromium)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scanner.errors import ConfigError
from scanner.model import FindingStatus
from scanner.owners import Owners
from scanner.store.db import Store
from scanner.store.sla import SlaPolicy

PROFILES = ("technical", "executive", "compliance")
FRAMEWORKS = ("pci-dss-4.0", "cis-8", "nist-800-53")
SUMMARY_FORMATS = ("html", "md", "json", "pdf")


def profile_formats(profile: str) -> tuple[str, ...]:
    from scanner.report import FORMATS

    return (*FORMATS, "pdf") if profile == "technical" else SUMMARY_FORMATS


@dataclass(frozen=True)
class Rendered:
    content: str | bytes
    what: str  # for messages: "the html report of scan 3 (12 findings)"


def render_profile(
    store: Store,
    profile: str,
    fmt: str,
    *,
    rules: object,
    policy: SlaPolicy | None = None,
    framework: str = "pci-dss-4.0",
    since: date | None = None,
    scan_id: int | None = None,
    statuses: Iterable[FindingStatus] | None = None,
    owners: Owners | None = None,
) -> Rendered:
    """One profile in one format (pdf: bytes, else text)."""
    from scanner import __version__

    if fmt not in profile_formats(profile):
        formats = profile_formats(profile)
        listed = f"{', '.join(formats[:-1])} or {formats[-1]}"
        hint = "; use --profile technical for a list of findings" if profile != "technical" else ""
        raise ConfigError(f"the {profile} profile renders {listed}, not {fmt}{hint}")
    pdf = fmt == "pdf"
    base = "html" if pdf else fmt
    if profile == "executive":
        from scanner.report.executive import executive_summary
        from scanner.report.executive_render import render_executive

        summary = executive_summary(store, policy or SlaPolicy(), since=since, owners=owners)
        text, what = render_executive(summary, base, __version__), f"the executive {fmt} report"
    elif profile == "compliance":
        from scanner.report.compliance import render_compliance, store_compliance

        today = datetime.now(UTC).date()
        first_day = since or today - timedelta(days=365)
        view = store_compliance(store, rules.rules, framework, first_day)  # type: ignore[attr-defined]
        text = render_compliance(view, base, first_day.isoformat(), today.isoformat(), __version__)
        what = f"the {view.name} compliance {fmt} report"
    else:
        from scanner.report import get_format
        from scanner.report.collect import collect_report

        data = collect_report(
            store, scan_id=scan_id, statuses=set(statuses) if statuses else None,
            rules=rules, owners=owners,  # type: ignore[arg-type]
        )  # fmt: skip
        text = get_format(base).render(data)
        scan = f"scan {data.scan.id}" if data.scan else "no scan"
        what = f"the {fmt} report of {scan} ({len(data.findings)} findings)"
    if pdf:
        from scanner.report.pdf import html_to_pdf

        return Rendered(html_to_pdf(text), what)
    return Rendered(text, what)
