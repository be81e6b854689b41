"""Hostile text from targets and rule packs: escaped, bounded and inert in every format."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from markdown_it import MarkdownIt
from report_checks import assert_self_contained_html, assert_valid_sarif

from scanner.report import FORMATS
from scanner.report.interface import ReportData
from scanner.report.view import RULE_TEXT_LIMIT
from scanner.safetext import MAX_FIELD

CLIP_ROOM = 32  # the "…[+N chars]" note a clipped field ends with


def control_characters(text: str) -> set[str]:
    return {ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\r\n"}


def shown(name: str, text: str) -> str:
    """What a reader sees: Markdown as rendered (its escapes resolved), other formats as is."""
    if name == "md":
        return html.unescape(MarkdownIt("commonmark").enable("table").render(text))
    return text


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_no_control_character_reaches_any_format(name: str, hostile: ReportData) -> None:
    text = FORMATS[name].render(hostile)
    assert control_characters(text) == set()
    assert "\\x1b[31m" in shown(name, text)  # shown, as a visible escape


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_field_is_bounded(name: str, hostile: ReportData) -> None:
    text = FORMATS[name].render(hostile)
    longest_run = max(len(m) for m in re.findall(r"A+", text))
    assert longest_run <= RULE_TEXT_LIMIT  # rule texts are allowed the most
    assert "…[+" in shown(name, text)  # and a clipped field says so
    assert len(text) < 300_000  # from over a megabyte of hostile input


@pytest.mark.parametrize("name", ["html", "md", "json", "sarif"])
def test_no_markup_survives(name: str, hostile: ReportData) -> None:
    # CSV is left out: it has no markup and no escape for "<"; spreadsheets show it as text.
    text = FORMATS[name].render(hostile).lower()
    assert "<script" not in text
    assert "<img" not in text


def test_html_stays_the_template_own_markup(hostile: ReportData) -> None:
    text = FORMATS["html"].render(hostile)
    assert_self_contained_html(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    hrefs = re.findall(r'href="([^"]*)"', text)
    assert not any(h.strip().lower().startswith("javascript:") for h in hrefs)
    assert "javascript:alert(1)" in text  # shown as text, never as a link


def test_markdown_renders_no_markup_and_one_row_per_finding(hostile: ReportData) -> None:
    text = FORMATS["md"].render(hostile)
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    # raw HTML is on in this renderer: any tag that got through would appear here
    assert not re.search(r"<(script|img|a)\b", rendered)
    findings_table = rendered.split("<h2>Findings</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", findings_table, re.DOTALL)
    assert len(rows) == 1 + len(hostile.findings)
    assert all(row.count("<td>") == 12 for row in rows[1:])


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_json_parses_and_bounds_each_string(hostile: ReportData) -> None:
    document = json.loads(FORMATS["json"].render(hostile))
    assert all(len(s) <= RULE_TEXT_LIMIT + CLIP_ROOM for s in strings(document))
    (finding, *_) = document["findings"]
    for field in ("title", "hostname", "host", "discriminator"):
        assert len(finding[field]) <= MAX_FIELD + CLIP_ROOM
    assert finding["evidence"]["banner"].startswith("&lt;script&gt;") is False
    assert finding["evidence"]["banner"].startswith("<script>alert(1)</script>")
    assert len(finding["evidence"]["many"]) < 50


def test_sarif_still_validates(hostile: ReportData) -> None:
    document = assert_valid_sarif(FORMATS["sarif"].render(hostile))
    assert all(len(s) <= 2 * RULE_TEXT_LIMIT for s in strings(document))
    (rule, *_) = document["runs"][0]["tool"]["driver"]["rules"]
    assert "helpUri" not in rule  # neither javascript: nor a URL with markup in it is a link
    assert "<script" not in rule["help"]["markdown"]


def test_csv_cells_are_not_formulas(hostile: ReportData) -> None:
    rows = list(csv.reader(io.StringIO(FORMATS["csv"].render(hostile), newline="")))
    assert len(rows) == 1 + len(hostile.findings)
    assert {len(row) for row in rows} == {len(rows[0])}
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    titles = {row[rows[0].index("title")] for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in titles
