"""Checks shared by the report tests: HTML that loads nothing, SARIF that meets the schema."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

# the OASIS SARIF 2.1.0 schema (errata 01), kept with the tests so a clone validates on its own
SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"

# every element the HTML template writes; anything else was injected
HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p",
    "section", "div", "span", "table", "thead", "tbody", "tr", "th", "td", "br", "code", "pre",
    "dl", "dt", "dd", "ul", "li", "a", "footer",
}  # fmt: skip
CSS_LOAD = re.compile(r"@import|url\s*\(", re.IGNORECASE)
LOADING_ATTRIBUTES = {"src", "srcset", "data", "poster", "background", "action", "formaction"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.css: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.elements and self.elements[-1][0] == "style":
            self.css.append(data)


def _parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser


def html_elements(text: str) -> list[tuple[str, dict[str, str | None]]]:
    return _parse(text).elements


def assert_self_contained_html(text: str) -> None:
    """Only the template's own elements, no resource loads, links only to http(s), CSP set."""
    parsed = _parse(text)
    elements = parsed.elements
    assert parsed.css and not CSS_LOAD.search("".join(parsed.css))
    assert {tag for tag, _ in elements} <= HTML_TAGS
    csp = [
        a
        for tag, a in elements
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp == [
        {
            "http-equiv": "Content-Security-Policy",
            "content": "default-src 'none'; style-src 'unsafe-inline'",
        }
    ]
    for tag, attrs in elements:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        assert not LOADING_ATTRIBUTES & set(attrs), (tag, attrs)
        if tag == "a":
            assert re.match(r"https?://", attrs.get("href") or ""), attrs


def sarif_validator() -> Any:
    if not SARIF_SCHEMA.is_file():
        pytest.fail(f"SARIF schema missing at {SARIF_SCHEMA}: it ships with the tests")
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)  # draft-04, per its $schema
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def assert_valid_sarif(text: str) -> dict[str, Any]:
    document = json.loads(text)
    errors = sorted(sarif_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    return document
