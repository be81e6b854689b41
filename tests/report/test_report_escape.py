"""Escaping of target-derived text for reports: Markdown, evidence bounds, JSON, link schemes."""

from __future__ import annotations

import html
import json
import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from scanner.report.escape import (
    MAX_DEPTH,
    MAX_ITEMS,
    clean,
    clean_json,
    clean_list,
    dump_json,
    evidence_lines,
    is_web_url,
    markdown_escape,
    markdown_reference,
)
from scanner.safetext import MAX_FIELD, for_terminal

MARKDOWN = MarkdownIt("commonmark").enable("table")  # raw HTML allowed: the strictest check


def cell(text: str) -> str:
    """What a Markdown renderer shows for `text` put into a table cell with markdown_escape."""
    rendered = MARKDOWN.render(f"| h |\n|---|\n| {markdown_escape(text)} |\n")
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.DOTALL)
    assert len(cells) == 1, rendered
    assert "<" not in cells[0], rendered  # no tag, link, code span or emphasis formed
    return html.unescape(cells[0])


def test_markdown_escape_neutralises_markup() -> None:
    assert cell("<script>alert(1)</script>") == "<script>alert(1)</script>"
    assert cell('"><img src=x onerror=alert(1)>') == '"><img src=x onerror=alert(1)>'
    assert cell("[click](http://evil) ![i](http://evil/i.png)") == (
        "[click](http://evil) ![i](http://evil/i.png)"
    )
    assert cell("a|b `c` *d* _e_ ~f~ \\g &amp;") == "a|b `c` *d* _e_ ~f~ \\g &amp;"
    assert cell("<http://evil>") == "<http://evil>"


def test_markdown_escape_keeps_a_table_row_on_one_line() -> None:
    assert "\n" not in markdown_escape("one\ntwo\r\nthree\u2028four")
    assert cell("one\ntwo") == "one two"


# Printable text (no control characters: those are escaped by safetext before Markdown).
printable = st.text(
    st.characters(whitelist_categories=("L", "N", "P", "S", "Zs"), max_codepoint=0x2FFF),
    max_size=60,
)


@given(printable)
def test_markdown_escape_shows_any_text_literally(text: str) -> None:
    # a renderer trims white space around a cell; everything else must survive as is
    assert cell(text).strip() == text.strip()


def test_markdown_reference_links_only_web_urls() -> None:
    assert markdown_reference("https://example.org/a_b") == "<https://example.org/a_b>"
    assert markdown_reference("javascript:alert(1)") == "javascript:alert(1)"
    assert markdown_reference("https://x/<img>") == "https://x/&lt;img&gt;"
    assert "<a href" not in MARKDOWN.render(f"- {markdown_reference('javascript:alert(1)')}")


def test_is_web_url() -> None:
    assert is_web_url("https://nvd.nist.gov/vuln/detail/CVE-2024-0001")
    assert is_web_url("HTTP://example.org")
    for text in (
        "javascript:alert(1)",
        "data:text/html,x",
        "https://a b",
        'https://a"b',
        "ftp://x",
    ):
        assert not is_web_url(text), text


def test_clean_json_bounds_depth_items_and_strings() -> None:
    evidence = {
        "banner": "\x1b[31mred\x07" + "A" * 10_000,
        "list": list(range(MAX_ITEMS * 3)),
        "deep": {"a": {"b": {"c": {"d": "\x1b" * 3}}}},
        "nan": float("nan"),
        "ok": [True, None, 1.5],
    }
    cleaned = clean_json(evidence)
    assert cleaned["banner"].startswith("\\x1b[31mred\\x07AAA")
    assert len(cleaned["banner"]) < MAX_FIELD + 30
    assert len(cleaned["list"]) == MAX_ITEMS + 1
    assert cleaned["list"][-1] == f"… {MAX_ITEMS * 2} more items"
    deepest: object = cleaned["deep"]
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(deepest, dict)
        deepest = next(iter(deepest.values()))
    # below MAX_DEPTH a value is JSON text, which escapes control characters itself
    assert deepest == '{"c": {"d": "\\u001b\\u001b\\u001b"}}'
    assert cleaned["nan"] == "nan"
    assert cleaned["ok"] == [True, None, 1.5]
    many = clean_json({str(i): i for i in range(MAX_ITEMS + 5)})
    assert len(many) == MAX_ITEMS + 1
    json.dumps(cleaned, allow_nan=False)


def test_evidence_lines_one_per_entry() -> None:
    lines = evidence_lines(clean_json({"banner": "220 ready\r\n", "checks": {"anon": True}}))
    assert lines == ("banner: 220 ready\\r\\n", 'checks: {"anon": true}')


def test_clean_list_says_how_much_was_left_out() -> None:
    assert clean_list(["a\x1b", "b"], max_items=5) == ("a\\x1b", "b")
    assert clean_list([str(i) for i in range(7)], max_items=5)[-1] == "… and 2 more"


def test_dump_json_is_inert_in_html_yet_the_same_data() -> None:
    document = {"t": "<script>&</script>", "n": [1, None]}
    text = dump_json(document)
    assert not set("<>&") & set(text)
    assert json.loads(text) == document


def test_clean_escapes_and_clips_like_safetext() -> None:
    assert clean("a\x1b[31mb") == for_terminal("a\x1b[31mb") == "a\\x1b[31mb"
    long = "\x1b" + "B" * 1000
    assert clean(long, 10) == "\\x1bBBBBBB…[+991 chars]"
    assert clean(None) == ""
