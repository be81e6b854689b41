"""Order-preserving byte encodings of version sort keys: `encode(e, a) < encode(e, b)` (as bytes,
so as SQLite compares BLOBs) exactly when `sort_key(e, a) < sort_key(e, b)`. Stored beside each
advisory bound, they let SQLite pick the ranges covering a version inside an index.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from packaging.version import Version

from scanner.vulndb.versions import Ecosystem, sort_key

BELOW_ALL = b""  # no encoding sorts before it: an open lower bound
ABOVE_ALL = b"\xff"  # every encoding starts with 0x00 or 0x01: an open upper bound
_ELEMENT, _END = b"\x01", b"\x00"


def just_after(encoded: bytes) -> bytes:
    """The smallest bytes above `encoded` that no other encoding falls under: as no encoding is
    a proper prefix of another, `x > encoded` exactly when `x >= just_after(encoded)`. Turns an
    excluded lower or an included upper bound into the half-open [from, below) of a row."""
    return encoded + b"\x00"


def _int(number: int) -> bytes:
    """A length byte, then the magnitude big-endian: more bytes, a larger number. Negative
    numbers (dpkg's ~ is -1) take the complement, below every non-negative one."""
    small = _SMALL.get(number)
    if small is not None:
        return small
    if number >= 0:
        size = (number.bit_length() + 7) // 8
        return bytes((0x80 + size,)) + number.to_bytes(size, "big")
    size = ((-number).bit_length() + 7) // 8
    return bytes((0x7F - size,)) + ((1 << (8 * size)) - 1 + number).to_bytes(size, "big")


_SMALL = {n: bytes((0x81, n)) for n in range(1, 256)} | {0: b"\x80", -1: b"\x7e\xfe"}


def _pep440(version: Version) -> tuple[Any, ...]:
    """packaging's own ordering of a Version (PEP 440's), as plain ints, strings and tuples:
    a dev release before its pre-releases, those before the release, post-releases after it,
    and a local label after the public version."""
    release = list(version.release)
    while release and release[-1] == 0:  # 1.0.0 == 1
        release.pop()
    if version.pre is None and version.post is None and version.dev is not None:
        pre: tuple[Any, ...] = (0,)  # 1.0.dev1 comes before 1.0a1
    elif version.pre is None:
        pre = (2,)
    else:
        pre = (1, version.pre[0], version.pre[1])
    post = (0,) if version.post is None else (1, version.post)
    dev = (1,) if version.dev is None else (0, version.dev)
    local: tuple[Any, ...] = (0,)
    if version.local is not None:
        segments = version.local.replace("-", ".").replace("_", ".").split(".")
        local = (
            1,
            tuple((1, int(s), "") if s.isdigit() else (0, 0, s.lower()) for s in segments),
        )
    return (version.epoch, tuple(release), pre, post, dev, local)


def encode_value(value: Any) -> bytes:
    """Any sort key made of ints, strings, tuples (and packaging Versions): tuples compare
    element by element, a shorter one first, so each element is flagged and the end marked
    below any flag; a string ends with 00 00, a NUL inside it being 00 FF."""
    kind = type(value)  # exact types first: this runs for every bound of every advisory
    if kind is tuple:
        return b"".join([_ELEMENT + _item(item) for item in value]) + _END
    if kind is int:
        return _int(value)
    if kind is str:
        return value.encode("utf-8").replace(b"\x00", b"\x00\xff") + b"\x00\x00"
    if isinstance(value, Version):
        return encode_value(_pep440(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(int(value))
    raise TypeError(f"no order-preserving encoding for {kind.__name__}")


_PIECES: dict[Any, bytes] = {}  # small tuples (tokens, runs), few and recurring
_PIECES_KEPT = 8192


def _item(item: Any) -> bytes:
    """encode_value of a key's element; the small tuples keys are built of (upstream tokens
    such as (3, 9), dpkg's character runs) recur across versions, so their encodings are kept."""
    if type(item) is not tuple or len(item) > 4:
        return encode_value(item)
    found = _PIECES.get(item)
    if found is None:
        found = encode_value(item)
        if len(_PIECES) < _PIECES_KEPT:
            _PIECES[item] = found
    return found


@lru_cache(maxsize=32768)
def encode(ecosystem: Ecosystem, version: str) -> bytes:
    """The encoding of `sort_key(ecosystem, version)`; VersionError as sort_key raises it.
    The key is computed afresh (not through sort_key's cache), so that an import, which
    encodes every bound once, leaves that cache, and its memory, to lookups."""
    return encode_value(_uncached_sort_key(ecosystem, version))


_uncached_sort_key = sort_key.__wrapped__


__all__ = ["ABOVE_ALL", "BELOW_ALL", "encode", "encode_value", "just_after"]
