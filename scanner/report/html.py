"""HTML report: one self-contained file (inline CSS, nothing fetched), rendered from
reports/report.html.j2 with autoescape on."""

from __future__ import annotations

from scanner.report.interface import ReportData, ReportFormat
from scanner.report.templates import html_environment
from scanner.report.view import build_view


class HtmlFormat(ReportFormat):
    name = "html"
    extension = "html"
    template = "report.html.j2"

    def render(self, data: ReportData) -> str:
        return html_environment().get_template(self.template).render(report=build_view(data))
