"""Secret values that cannot leak by accident, and the redactor that scrubs them from text.

A `Secret` prints as `<secret NAME>` in repr, str, f-strings, logs and exceptions; its value is
read only through `.reveal()`. Every secret a run touches (resolved credential references,
freshly minted keys and passwords) is registered with the run's `Redactor`, which replaces each
value (and its common encodings) in any text bound for the journal, audit log or terminal.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

REDACTED = "[redacted]"
MIN_REDACT_LENGTH = 4  # shorter values would redact ordinary words; secrets are never this short


@dataclass(frozen=True, eq=False)
class Secret:
    name: str
    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<secret {self.name}>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is never pickled or serialised")


class Redactor:
    """Replaces every registered secret value (raw, base64, hex) in text."""

    def __init__(self) -> None:
        self._needles: set[str] = set()

    def add(self, value: str | bytes | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        raw = value.encode() if isinstance(value, str) else value
        text = raw.decode("utf-8", "replace")
        for needle in (text, base64.b64encode(raw).decode(), raw.hex()):
            if len(needle) >= MIN_REDACT_LENGTH:
                self._needles.add(needle)
        # Multi-line secrets (PEM keys) are also scrubbed line by line.
        for line in text.splitlines():
            if len(line.strip()) >= 16:
                self._needles.add(line.strip())

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is replaced whole.
        for needle in sorted(self._needles, key=len, reverse=True):
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text

    def bytes(self, data: bytes) -> str:
        return self(data.decode("utf-8", "replace"))
