"""Each report profile's HTML as a person sees it: loaded in headless Chromium (Debian's
chromium), its DOM after layout read back and its screenshot looked at. Hostile text from targets
must show as text, never become markup, and the page must not be blank."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hostile_store import (
    EXPECTED_CHANGE,
    EXPECTED_CONTROLS,
    EXPECTED_OPEN,
    EXPECTED_OVERDUE,
    hostile_store,  # noqa: F401 - the fixture
    report,
)
from PIL import Image
from pixels import SEVERITY_COLOURS, assert_not_blank, has_run
from report_checks import HTML_TAGS
from report_data import IMG, SCRIPT

from scanner.report.pdf import run_browser

pytestmark = pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="needs Chromium: apt-get install -y chromium (make test installs it)",
)
WINDOW = (1280, 2400)
SVG_TAGS = {"figure", "svg", "rect", "text", "line", "title"}  # the executive charts
ACTIVE_TAGS = {"script", "img", "iframe", "object", "embed", "form", "input", "link", "base"}


class _Dom(HTMLParser):
    """Elements and the visible text of a dumped DOM (style and title text left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[str] = []
        self._text: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in {"meta", "br", "line", "rect"}:
            self._open.append(tag)
        if tag in {"h1", "h2", "h3"}:
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "style" in self._open or "head" in self._open:
            return
        self._text.append(data)
        if self._open and self._open[-1] in {"h1", "h2", "h3"}:
            self.headings[-1] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self._text).split())


def _look(workdir: Path, profile: str) -> tuple[_Dom, Path]:
    result = report("--profile", profile, "-o", f"{profile}.html")
    assert result.exit_code == 0, result.output
    shot = workdir / f"{profile}.png"
    # one Chromium for both: the DOM after layout on stdout, the screenshot into a file
    dom = run_browser(
        workdir / f"{profile}.html", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}", "--dump-dom", timeout=60,
    )  # fmt: skip
    parsed = _Dom()
    parsed.feed(dom.decode("utf-8"))
    parsed.close()
    return parsed, shot


def _assert_inert(dom: _Dom, profile: str) -> None:
    """Nothing in the page can run or load: only the template's own elements, no handlers, no
    script URLs; the hostile strings are there as the text they are."""
    tags = {tag for tag, _ in dom.elements}
    assert not tags & ACTIVE_TAGS, f"{profile}: {tags & ACTIVE_TAGS} in the DOM"
    assert tags <= HTML_TAGS | SVG_TAGS | {"head", "body"}, tags - HTML_TAGS - SVG_TAGS
    for tag, attrs in dom.elements:
        assert not [a for a in attrs if a.startswith("on")], (profile, tag, attrs)
        href = attrs.get("href")
        assert href is None or re.match(r"https?://", href), (profile, tag, href)
    assert SCRIPT in dom.text, f"{profile}: the script tag is not shown as text"
    assert IMG.strip('">') in dom.text, f"{profile}: the img tag is not shown as text"
    assert "\x1b" not in dom.text and "\x07" not in dom.text  # shown as \x1b, never raw


def _assert_drawn(shot: Path, profile: str) -> Image.Image:
    image = Image.open(shot)
    assert image.size == WINDOW
    assert_not_blank(image, f"{profile} screenshot")
    return image


def test_technical_in_a_browser(hostile_store: Path) -> None:  # noqa: F811
    dom, shot = _look(hostile_store, "technical")
    _assert_inert(dom, "technical")
    assert dom.headings[:3] == ["Security posture: technical report", "Summary", "Scan covered"]
    assert "Findings" in dom.headings
    cards = " ".join(f"{n} {sev}" for sev, n in EXPECTED_OPEN.items())
    assert f"4 Findings {cards}" in dom.text  # the summary cards, in order
    assert "Redis answers without authentication" in dom.text
    assert "Service banner discloses its version" in dom.text
    image = _assert_drawn(shot, "technical")
    for severity, colour in SEVERITY_COLOURS.items():  # each summary card's coloured top edge
        assert has_run(image, colour, 120), f"no {severity} card edge"


def test_executive_in_a_browser(hostile_store: Path) -> None:  # noqa: F811
    dom, shot = _look(hostile_store, "executive")
    _assert_inert(dom, "executive")
    assert dom.headings[0] == "Security posture: executive summary"
    for heading in ("Open findings by severity", "Trend", "Age of open findings",
                    "Remediation SLAs", "Overdue", "Riskiest hosts", "Coverage"):  # fmt: skip
        assert heading in dom.headings, heading
    for severity, n in EXPECTED_OPEN.items():
        change = EXPECTED_CHANGE[severity]
        assert f"{severity} {n} {change:+d} since the previous scan" in dom.text, severity
    overdue = dom.text.split("Overdue", 1)[1].split("Riskiest hosts", 1)[0]  # the table
    for row in (f"critical \\d+ days unassigned 127\\.0\\.102\\.10 {EXPECTED_OVERDUE[0]}",
                f"high \\d+ days unassigned 127\\.0\\.102\\.11 {EXPECTED_OVERDUE[1]}"):  # fmt: skip
        assert re.search(row, overdue), row
    image = _assert_drawn(shot, "executive")
    # the severity chart: one bar per open severity, 300 px long as every count is the largest
    for severity, colour in SEVERITY_COLOURS.items():
        assert has_run(image, colour, 290), f"no {severity} bar in the severity chart"


def test_compliance_in_a_browser(hostile_store: Path) -> None:  # noqa: F811
    dom, shot = _look(hostile_store, "compliance")
    _assert_inert(dom, "compliance")
    assert dom.headings == ["PCI DSS 4.0: control status", "Controls", "Scan history (evidence)"]
    assert re.search(r"\b1 pass, 3 fail, \d+ not tested\.", dom.text)
    for control, status in EXPECTED_CONTROLS.items():
        assert re.search(rf"(^| ){re.escape(control)} {status} ", dom.text), (control, status)
    assert "127.0.102.11:6379 – Redis answers without authentication" in dom.text
    image = _assert_drawn(shot, "compliance")
    fail = SEVERITY_COLOURS["high"]  # the templates' red: "fail" is written in it
    assert has_run(image, fail, 3, tolerance=40), "no control shown failing in red"
