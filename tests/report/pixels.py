"""Looking at rendered pages as pixels (Pillow): is there something on the page, and are the
severity colours drawn as solid bars rather than stray anti-aliased dots."""

from __future__ import annotations

from PIL import Image, ImageChops

SEVERITY_COLOURS = {  # the templates' and the SVG charts' severity colours
    "critical": (0x7A, 0x00, 0x19),
    "high": (0xC0, 0x39, 0x2B),
    "medium": (0xD6, 0x89, 0x10),
    "low": (0x2E, 0x86, 0xC1),
}
INK_BELOW = 235  # grey level under which a pixel is ink, not paper or the page's pale background


def assert_not_blank(image: Image.Image, where: str, min_ink: float = 0.01) -> None:
    """Some share of the page is ink, in more than one colour."""
    grey = image.convert("L")
    histogram = grey.histogram()
    ink = sum(histogram[:INK_BELOW]) / (grey.width * grey.height)
    assert ink > min_ink, f"{where}: only {ink:.3%} of the page has ink"
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    distinct = {tuple(v // 32 for v in rgb) for _, rgb in colours if isinstance(rgb, tuple)}
    assert len(distinct) >= 4, f"{where}: {len(distinct)} colour groups only: {sorted(distinct)}"


def has_run(
    image: Image.Image, colour: tuple[int, int, int], length: int, tolerance: int = 3
) -> bool:
    """Whether some row holds `length` pixels in a row of `colour` (each channel within
    `tolerance`): a bar or an edge drawn in it, not anti-aliased dots of text."""
    bands = image.convert("RGB").split()
    mask = None
    for band, wanted in zip(bands, colour, strict=True):
        hit = band.point(lambda v, w=wanted: 255 if abs(v - w) <= tolerance else 0)
        mask = hit if mask is None else ImageChops.multiply(mask, hit)
    assert mask is not None
    raw, width, needle = mask.tobytes(), mask.width, b"\xff" * length
    return any(raw.find(needle, row, row + width) >= 0 for row in range(0, len(raw), width))
