"""Text that came from a target (banners, headers, names) is hostile.

Everything shown in a terminal goes through `for_terminal`: control characters (ESC, OSC, BEL,
C1, bidi overrides) are made visible as escapes and the length is bounded. HTML escaping is
Jinja2's autoescape; CSV cells go through `for_csv`.
"""

from __future__ import annotations

import unicodedata

MAX_FIELD = 512  # characters kept of any single hostile field
MAX_BANNER = 4096  # bytes kept of a raw banner when it is read


def clip(text: str, limit: int = MAX_FIELD) -> str:
    """Cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit} chars]"


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _is_unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls incl. ESC (ANSI/OSC); Cf: format chars incl. bidi overrides;
    # Zl/Zp: line/paragraph separators that break a terminal line.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def escape_controls(text: str) -> str:
    """Make every control/format character visible as a backslash escape."""
    return "".join(_escape_char(ch) if _is_unsafe(ch) else ch for ch in text)


def for_terminal(text: object, limit: int = MAX_FIELD) -> str:
    """Hostile text made safe for a terminal: escaped controls, bounded length."""
    if text is None:
        return ""
    return clip(escape_controls(str(text)), limit)


def decode_banner(data: bytes, limit: int = MAX_BANNER) -> str:
    """Bytes read from a socket as text: bounded, undecodable bytes kept as escapes."""
    return data[:limit].decode("utf-8", errors="backslashreplace")


_CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def for_csv(text: object, limit: int = MAX_FIELD) -> str:
    """A CSV cell that spreadsheets will not run as a formula (CSV injection)."""
    value = for_terminal(text, limit)
    if value.startswith(_CSV_FORMULA_PREFIXES):
        return "'" + value
    return value
