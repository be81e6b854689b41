"""The Jinja2 environments that render the templates in reports/ (HTML and Markdown)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from scanner.report.escape import MarkdownText, is_web_url, markdown_escape, markdown_reference
from scanner.report.view import display_time
from scanner.resources import reports_dir


def _base(*, autoescape: bool, finalize: Callable[[Any], Any] | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(reports_dir()),
        # HTML callers pass True; Markdown escapes through `finalize` instead
        autoescape=autoescape,  # noqa: S701
        finalize=finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = display_time
    env.tests["web_url"] = is_web_url
    return env


@functools.cache
def html_environment() -> Environment:
    """Autoescape on for every template: all of them are HTML."""
    return _base(autoescape=True)


@functools.cache
def markdown_environment() -> Environment:
    """Every `{{ … }}` output is Markdown-escaped (like autoescape for HTML), so a template
    cannot forget to escape a field; the Markdown the report needs is literal template text."""
    env = _base(autoescape=False, finalize=_markdown_finalize)
    env.filters["reference"] = markdown_reference
    return env


def _markdown_finalize(value: object) -> str:
    return value if isinstance(value, MarkdownText) else markdown_escape(value)
