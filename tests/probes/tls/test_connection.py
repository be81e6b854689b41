"""STARTTLS preambles against small servers that speak each protocol's plain-text part, and the
per-host connection cap and pacing."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable

import pytest

from scanner.probes.tls.connection import (
    Connector,
    Endpoint,
    HostLimiter,
    ProbeConnectionError,
    StartTlsRefused,
)
from scanner.probes.tls.model import StartTls

ADDRESS = "127.0.84.1"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _with_server(script: Script, run: Callable[[int], Awaitable[object]]) -> object:
    """Serve `script` on ADDRESS (a free port) while `run(port)` runs; the server always stops."""
    seen: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append(task)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(10):
                await script(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, ADDRESS, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await run(port)
    finally:
        server.close()
        for task in seen:
            task.cancel()
        await server.wait_closed()


async def _preamble(protocol: StartTls, script: Script, timeout: float = 2.0) -> None:
    async def run(port: int) -> None:
        connector = Connector(
            Endpoint(ADDRESS, port, starttls=protocol), HostLimiter(), timeout=timeout
        )
        async with connector.open() as (_reader, writer):
            writer.write(b"\x16\x03\x01")  # where the ClientHello would start
            await writer.drain()
            await asyncio.sleep(0.05)

    await _with_server(script, run)


def _line_server(lines: list[tuple[bytes | None, bytes]], log: list[bytes]) -> Script:
    """Expect each command (None: none, just send) and answer with its reply; then record
    what comes next (the first TLS bytes)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for expected, reply in lines:
            if expected is not None:
                got = await reader.readline()
                log.append(got)
                assert got == expected, got
            writer.write(reply)
            await writer.drain()
        log.append(await reader.read(3))

    return script


@pytest.mark.parametrize(
    ("protocol", "dialogue"),
    [
        (
            StartTls.SMTP,
            [
                (None, b"220-mail.example ESMTP\r\n220 ready\r\n"),
                (
                    b"EHLO posture.invalid\r\n",
                    b"250-mail.example\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
                ),
                (b"STARTTLS\r\n", b"220 2.0.0 Ready to start TLS\r\n"),
            ],
        ),
        (
            StartTls.IMAP,
            [
                (None, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                (b"P1 STARTTLS\r\n", b"* some untagged line\r\nP1 OK Begin TLS now\r\n"),
            ],
        ),
        (StartTls.POP3, [(None, b"+OK POP3 ready\r\n"), (b"STLS\r\n", b"+OK Begin TLS\r\n")]),
        (
            StartTls.FTP,
            [
                (None, b"220-Welcome\r\n220 FTP ready\r\n"),
                (b"AUTH TLS\r\n", b"234 AUTH TLS OK.\r\n"),
            ],
        ),
    ],
)
def test_preamble_reaches_tls(
    protocol: StartTls, dialogue: list[tuple[bytes | None, bytes]]
) -> None:
    log: list[bytes] = []
    asyncio.run(_preamble(protocol, _line_server(dialogue, log)))
    assert log[-1] == b"\x16\x03\x01"  # the server saw TLS bytes right after the preamble
    assert len(log) == sum(1 for expected, _ in dialogue if expected is not None) + 1


def test_postgres_ssl_request() -> None:
    log: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log.append(await reader.readexactly(8))
        writer.write(b"S")
        await writer.drain()
        log.append(await reader.read(3))

    asyncio.run(_preamble(StartTls.POSTGRES, script))
    assert log == [struct.pack("!II", 8, 80877103), b"\x16\x03\x01"]


@pytest.mark.parametrize(
    ("protocol", "dialogue", "message"),
    [
        (
            StartTls.SMTP,
            [(None, b"220 ready\r\n"), (b"EHLO posture.invalid\r\n", b"250-x\r\n250 SIZE 10\r\n")],
            "does not offer STARTTLS",
        ),
        (StartTls.SMTP, [(None, b"554 go away\r\n")], "554 go away"),
        (
            StartTls.IMAP,
            [(None, b"* OK hi\r\n"), (b"P1 STARTTLS\r\n", b"P1 BAD unknown command\r\n")],
            "P1 BAD",
        ),
        (StartTls.POP3, [(None, b"+OK\r\n"), (b"STLS\r\n", b"-ERR no\r\n")], "-ERR no"),
        (
            StartTls.FTP,
            [(None, b"220 hi\r\n"), (b"AUTH TLS\r\n", b"500 unknown command\r\n")],
            "500 unknown",
        ),
    ],
)
def test_refusals_are_clear(
    protocol: StartTls, dialogue: list[tuple[bytes | None, bytes]], message: str
) -> None:
    with pytest.raises(StartTlsRefused, match=message):
        asyncio.run(_preamble(protocol, _line_server(dialogue, [])))


def test_postgres_without_ssl_is_refused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(b"N")
        await writer.drain()
        await asyncio.sleep(1)

    with pytest.raises(StartTlsRefused, match="does not accept SSL"):
        asyncio.run(_preamble(StartTls.POSTGRES, script))


def test_silent_server_costs_its_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    with pytest.raises(ProbeConnectionError, match=r"no answer within 0\.3s"):
        asyncio.run(_preamble(StartTls.SMTP, script, timeout=0.3))


def test_endless_line_is_bounded() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(200):  # 200 x 64 KiB without a newline
            writer.write(b"2" * 65536)
            await writer.drain()

    with pytest.raises(ProbeConnectionError, match="longer than"):
        asyncio.run(_preamble(StartTls.SMTP, script))


def test_endless_greeting_lines_are_bounded() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(1000):
            writer.write(b"220-more\r\n")
            await writer.drain()

    with pytest.raises(ProbeConnectionError, match="lines without an end"):
        asyncio.run(_preamble(StartTls.SMTP, script))


def test_refused_connection_is_a_clear_error() -> None:
    async def run() -> None:
        connector = Connector(Endpoint(ADDRESS, 1), HostLimiter(), timeout=1)
        async with connector.open():
            pass

    with pytest.raises(ProbeConnectionError, match=r"127\.0\.84\.1:1: connection refused"):
        asyncio.run(run())


def test_limiter_caps_concurrency_and_paces_starts() -> None:
    async def run() -> tuple[int, list[float]]:
        limiter = HostLimiter(connections=2, delay=0.05)
        active = peak = 0
        starts: list[float] = []

        async def job() -> None:
            nonlocal active, peak
            async with limiter.slot():
                starts.append(time.monotonic())
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.02)
                active -= 1

        await asyncio.gather(*(job() for _ in range(8)))
        return peak, starts

    peak, starts = asyncio.run(run())
    assert peak <= 2
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert min(gaps) >= 0.045


@pytest.mark.parametrize(("connections", "delay"), [(0, 0.0), (1, -1.0)])
def test_limiter_refuses_nonsense(connections: int, delay: float) -> None:
    with pytest.raises(ValueError):
        HostLimiter(connections, delay)
