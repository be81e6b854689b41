"""`posture tls` target parsing: HOST, HOST:PORT, [IPv6]:PORT, bare IPv6."""

from __future__ import annotations

import click
import pytest

from scanner.cli.tls import split_endpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:8443", ("example.com", 8443)),
        ("127.0.85.1:443", ("127.0.85.1", 443)),
        ("[::1]:993", ("::1", 993)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("fe80::1:2", ("fe80::1:2", None)),
    ],
)
def test_split(text: str, expected: tuple[str, int | None]) -> None:
    assert split_endpoint(text) == expected


@pytest.mark.parametrize("text", ["host:0", "host:65536", "host:http", ":443", "[::1]x", "[::1"])
def test_bad(text: str) -> None:
    with pytest.raises(click.BadParameter):
        split_endpoint(text)
