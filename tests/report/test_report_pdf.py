# ruff: noqa: F811 - the store fixtures are imported from test_report_cli
"""Reports as a person sees them: each profile's HTML loaded in headless Chromium (the DOM after
layout, and a screenshot), and printed to PDF whose pages are turned into images and read back.
Hostile text from targets must show as text, never as markup."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from report_data import HOSTILE
from test_report_cli import db, run, workdir  # noqa: F401 - the store of two scans

from scanner.report.pdf import browser_argv, chromium

pytestmark = pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="needs Chromium: apt-get install -y chromium (make test installs it)",
)
PROFILES = {
    "technical": ("Security posture: technical report", ["--format", "html"]),
    "executive": ("executive summary", ["--profile", "executive"]),
    "compliance": ("PCI DSS", ["--profile", "compliance"]),
}


def _browser(page: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="posture-browser-") as profile:
        argv = browser_argv(chromium(), Path(profile), "--window-size=1280,2000", *extra,
                            page.as_uri())  # fmt: skip
        return subprocess.run(argv, capture_output=True, timeout=120, check=True)


def _not_blank(image: object) -> None:
    from PIL import Image

    assert isinstance(image, Image.Image)
    small = image.convert("RGB").resize((200, 280))
    pixels = _pixels(small)
    ink = sum(1 for p in pixels if sum(p) < 600) / len(pixels)
    assert ink > 0.01, f"only {ink:.3%} of the page has ink"
    assert len({(r // 32, g // 32, b // 32) for r, g, b in pixels}) >= 4


def _pixels(image: object) -> list[tuple[int, int, int]]:
    raw = image.tobytes()  # type: ignore[attr-defined]
    return [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]


@pytest.mark.parametrize("profile", PROFILES)
def test_html_in_a_browser(db: Path, workdir: Path, profile: str) -> None:
    heading, args = PROFILES[profile]
    result = run(*args, "-o", f"{profile}.html")
    assert result.exit_code == 0, result.output
    page = workdir / f"{profile}.html"
    dom = _browser(page, "--dump-dom").stdout.decode()
    assert heading in dom
    if profile == "technical":
        assert "Service banner discloses its version" in dom
    assert "<script" not in dom.lower()  # the page has none, and no target text became one
    assert "<img" not in dom.lower()
    if profile == "technical":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    shot = workdir / f"{profile}.png"
    _browser(page, f"--screenshot={shot}")
    from PIL import Image

    image = Image.open(shot)
    assert image.size == (1280, 2000)
    _not_blank(image)
    if profile == "executive":
        colours = set(_pixels(image.convert("RGB")))
        assert any(r > 150 and g < 80 and b < 80 for r, g, b in colours)  # the red of severity bars


@pytest.mark.parametrize("profile", PROFILES)
def test_pdf_pages_are_not_blank(db: Path, workdir: Path, profile: str) -> None:
    import pypdfium2

    heading, args = PROFILES[profile]
    args = [a for a in args if a not in ("--format", "html")]
    result = run(*args, "--format", "pdf", "-o", f"{profile}.pdf")
    assert result.exit_code == 0, result.output
    data = (workdir / f"{profile}.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(io.BytesIO(data))
    try:
        assert len(document) >= 1
        text = ""
        for index in range(len(document)):
            page = document[index]
            _not_blank(page.render(scale=1).to_pil())
            text += page.get_textpage().get_text_range()
        flat = "".join(text.split())
        assert "".join(heading.split()) in flat
        if profile == "technical":
            assert "Servicebannerdisclosesitsversion" in flat
            assert "<script>alert(1)</script>" in flat  # shown as the text it is
    finally:
        document.close()


def test_pdf_needs_a_file_and_a_browser(
    db: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run("--format", "pdf")
    assert result.exit_code == 2 and "needs -o FILE" in result.output
    monkeypatch.setenv("POSTURE_CHROMIUM", str(workdir / "no-such-browser"))
    result = run("--format", "pdf", "-o", "x.pdf")
    assert result.exit_code == 2 and "is not an executable file" in result.output
    assert not (workdir / "x.pdf").exists()


def test_hostile_is_what_the_fixture_holds() -> None:
    assert "<script>" in HOSTILE
