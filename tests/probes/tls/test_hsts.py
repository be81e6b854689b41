"""Strict-Transport-Security parsing (RFC 6797)."""

from __future__ import annotations

import pytest

from scanner.probes.tls.hsts import parse_head, parse_hsts


@pytest.mark.parametrize(
    ("value", "max_age", "subdomains", "preload"),
    [
        ("max-age=31536000; includeSubDomains", 31536000, True, False),
        ('max-age="63072000"; includeSubDomains; preload', 63072000, True, True),
        ("MAX-AGE=0", 0, False, False),
        ("includesubdomains ; max-age = 300 ;", 300, True, False),
        ("max-age=abc", None, False, False),
        ("max-age=", None, False, False),
        ("", None, False, False),
    ],
)
def test_directives(value: str, max_age: int | None, subdomains: bool, preload: bool) -> None:
    policy = parse_hsts(value)
    assert policy.present
    assert (policy.max_age, policy.include_subdomains, policy.preload) == (
        max_age,
        subdomains,
        preload,
    )


def test_first_header_counts_and_names_are_case_insensitive() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nServer: x\r\nstrict-TRANSPORT-security: max-age=10\r\n"
        b"Strict-Transport-Security: max-age=999999"
    )
    policy = parse_head(head)
    assert policy is not None and policy.max_age == 10


def test_absent_header_and_non_http() -> None:
    absent = parse_head(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0")
    assert absent is not None and not absent.present
    assert parse_head(b"SSH-2.0-OpenSSH_9.2\r\n") is None


def test_hostile_header_is_clipped() -> None:
    policy = parse_hsts("max-age=1; " + "x" * 100_000)
    assert policy.header is not None and len(policy.header) < 600
    assert policy.header.endswith("chars]")
    assert policy.max_age == 1
