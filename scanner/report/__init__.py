"""Reports of findings in HTML, Markdown, JSON, SARIF and CSV: one module per format."""

from __future__ import annotations

from collections.abc import Mapping

from scanner.errors import ConfigError
from scanner.report.csv import CsvFormat
from scanner.report.html import HtmlFormat
from scanner.report.interface import ReportData, ReportFormat, RuleInfo
from scanner.report.json import JsonFormat
from scanner.report.markdown import MarkdownFormat
from scanner.report.sarif import SarifFormat

FORMATS: Mapping[str, ReportFormat] = {
    f.name: f for f in (HtmlFormat(), MarkdownFormat(), JsonFormat(), SarifFormat(), CsvFormat())
}


def get_format(name: str) -> ReportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(
            f"unknown report format {name!r}; choose one of: {', '.join(FORMATS)}"
        ) from None


__all__ = ["FORMATS", "ReportData", "ReportFormat", "RuleInfo", "get_format"]
