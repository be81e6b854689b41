"""Markdown report (GitHub-flavoured tables), rendered from reports/report.md.j2; every value
is Markdown-escaped by the environment."""

from __future__ import annotations

from scanner.report.interface import ReportData, ReportFormat
from scanner.report.templates import markdown_environment
from scanner.report.view import build_view


class MarkdownFormat(ReportFormat):
    name = "md"
    extension = "md"
    template = "report.md.j2"

    def render(self, data: ReportData) -> str:
        return markdown_environment().get_template(self.template).render(report=build_view(data))
