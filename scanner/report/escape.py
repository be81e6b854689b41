"""Target-derived values made safe for reports: bounded JSON-like evidence and Markdown escaping.

Control characters and length are handled by scanner.safetext; HTML escaping is Jinja2's autoescape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from scanner.safetext import MAX_FIELD, clip, escape_controls, for_terminal

MAX_ITEMS = 32  # entries kept of one evidence mapping or list
MAX_DEPTH = 3  # nesting kept of evidence; deeper values are shown as clipped JSON text
MAX_LIST = 50  # targets, references, CVEs ... shown of one list


def clean(value: object, limit: int = MAX_FIELD) -> str:
    """One hostile field: control characters escaped, length bounded; None becomes ""."""
    if value is None:
        return ""
    text = str(value)
    if len(text) <= limit:
        return for_terminal(text, limit)
    # Escape only what is kept: escaping a 100 KB banner to show 512 characters of it is waste.
    kept = escape_controls(text[:limit])[:limit]
    return f"{kept}…[+{len(text) - limit} chars]"


def clean_optional(value: object, limit: int = MAX_FIELD) -> str | None:
    return None if value is None else clean(value, limit)


def clean_list(
    values: Iterable[object], limit: int = MAX_FIELD, max_items: int = MAX_LIST
) -> tuple[str, ...]:
    """A bounded tuple of clean strings; the cut is said in a last entry."""
    items = list(values)
    kept = tuple(clean(v, limit) for v in items[:max_items])
    if len(items) > max_items:
        return (*kept, f"… and {len(items) - max_items} more")
    return kept


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON-like value (evidence) with every string clean and every container bounded."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean(value)
    if depth >= MAX_DEPTH:
        return clean(json.dumps(value, default=str, ensure_ascii=False))
    if isinstance(value, Mapping):
        entries = list(value.items())
        cleaned = {clean(k, 128): clean_json(v, depth + 1) for k, v in entries[:MAX_ITEMS]}
        if len(entries) > MAX_ITEMS:
            cleaned["…"] = f"{len(entries) - MAX_ITEMS} more entries"
        return cleaned
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = [clean_json(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            kept.append(f"… {len(items) - MAX_ITEMS} more items")
        return kept
    return clean(value)


def evidence_lines(evidence: Mapping[str, Any]) -> tuple[str, ...]:
    """Clean evidence (from `clean_json`) as "key: value" lines, one per entry, each bounded."""
    lines = []
    for key, value in evidence.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        # values were cleaned already; clip again only to bound the JSON text of containers
        lines.append(f"{key}: {clip(text, 2 * MAX_FIELD)}")
    return tuple(lines)


# Characters that start Markdown constructs inline or in a table cell: code spans, emphasis,
# links/images, table cell borders, and backslash itself. `<`/`>`/`&` become entities so neither
# HTML tags nor autolinks can form, whatever renderer is used.
_MD_BACKSLASHED = frozenset("\\`*_[]|~")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_escape(text: object) -> str:
    """Text shown literally inside a Markdown paragraph, list item or table cell.

    It never starts a block construct (heading, list, quote) because templates only place it
    after other text on its line; line breaks become spaces so a table row stays one row.
    """
    out = []
    for ch in "" if text is None else str(text):
        if ch in _MD_BACKSLASHED:
            out.append("\\" + ch)
        elif ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in "\r\n\u2028\u2029":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


class MarkdownText(str):
    """Markdown built by posture from escaped parts; the Markdown template leaves it as is."""

    __slots__ = ()


def markdown_reference(reference: str) -> MarkdownText:
    """An http(s) reference as a Markdown autolink, anything else as escaped text.

    Autolinks take no backslash escapes, and `is_web_url` admits no `<`, `>` or space, so the
    URL can neither be mangled by escaping nor break out of the `<…>`.
    """
    if is_web_url(reference):
        return MarkdownText(f"<{reference}>")
    return MarkdownText(markdown_escape(reference))


_WEB_URL = re.compile(r"https?://[^\s\"'<>`\\]+\Z", re.IGNORECASE)


def is_web_url(text: object) -> bool:
    """Only http(s) references become links: a `javascript:` or `data:` one stays plain text."""
    return isinstance(text, str) and _WEB_URL.match(text) is not None


_JSON_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dump_json(document: object) -> str:
    """Indented JSON whose text holds no `<`, `>` or `&`: the same data, yet inert if a viewer
    pastes it into HTML. Safe as a text replacement because JSON's own syntax never uses them."""
    return json.dumps(document, indent=2, ensure_ascii=False).translate(_JSON_HTML_SAFE) + "\n"
