"""Connections for TLS probing: every connect and read bounded by a timeout, at most N at a time
per host (with an optional pause between them), and the plain-text STARTTLS preambles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from scanner.probes.tls.model import StartTls
from scanner.safetext import decode_banner, for_terminal

LINE_LIMIT = 8192  # bytes in one line of a STARTTLS preamble
PREAMBLE_LINES = 64  # lines of greeting/capabilities read before giving up
STREAM_LIMIT = 64 * 1024  # asyncio stream buffer

# Default ports where a service speaks STARTTLS rather than TLS from the first byte.
STARTTLS_PORTS: dict[int, StartTls] = {
    25: StartTls.SMTP,
    587: StartTls.SMTP,
    143: StartTls.IMAP,
    110: StartTls.POP3,
    21: StartTls.FTP,
    5432: StartTls.POSTGRES,
}


class ProbeConnectionError(Exception):
    """The endpoint could not be reached, or its STARTTLS preamble failed: the message says
    which, in words a user can act on."""


class StartTlsRefused(ProbeConnectionError):
    """The plain-text service answered clearly that it does not do STARTTLS."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one TLS endpoint."""

    address: str
    port: int
    sni: str | None = None  # a DNS name; never an address
    starttls: StartTls | None = None

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


async def close_now(writer: asyncio.StreamWriter) -> None:
    """Drops the connection without waiting for the peer, and returns once the socket is closed.

    `abort()` alone closes the socket on the loop's next iteration: a connection released from
    a HostLimiter slot before then would let the next one open while it still exists."""
    writer.transport.abort()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class HostLimiter:
    """At most `connections` connections open at once to one host, the starts of consecutive
    connections at least `delay` seconds apart. One limiter per host, shared by every probe of
    every port of that host within one event loop."""

    def __init__(self, connections: int = 5, delay: float = 0.0) -> None:
        if connections < 1:
            raise ValueError("the per-host connection cap must be at least 1")
        if delay < 0:
            raise ValueError("the delay between connections cannot be negative")
        self._slots = asyncio.Semaphore(connections)
        self._delay = delay
        self._pace = asyncio.Lock()
        self._last_start = 0.0
        self.opened = 0  # connections started through this limiter

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            if self._delay:
                async with self._pace:
                    wait = self._last_start + self._delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    self._last_start = time.monotonic()
            self.opened += 1
            yield


class Connector:
    """Opens bounded connections to one endpoint (STARTTLS preamble included) for the probes."""

    def __init__(
        self,
        endpoint: Endpoint,
        limiter: HostLimiter,
        *,
        timeout: float = 5.0,
        source_address: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.limiter = limiter
        self.timeout = timeout
        self.source_address = source_address
        self.connections = 0

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """A connection ready for a ClientHello; reset on exit, and its socket closed before the
        slot is given back, so the per-host cap holds at the socket level too."""
        async with self.limiter.slot():
            self.connections += 1
            source = (self.source_address, 0) if self.source_address else None
            try:
                async with asyncio.timeout(self.timeout):
                    reader, writer = await asyncio.open_connection(
                        self.endpoint.address,
                        self.endpoint.port,
                        limit=STREAM_LIMIT,
                        local_addr=source,
                    )
            except TimeoutError:
                raise ProbeConnectionError(
                    f"{self.endpoint}: no connection within {self.timeout:g}s"
                ) from None
            except OSError as exc:
                # asyncio words a refusal as "Connect call failed (...)": name the errno instead.
                reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
                raise ProbeConnectionError(f"{self.endpoint}: {reason.lower()}") from None
            try:
                if self.endpoint.starttls is not None:
                    await starttls_preamble(reader, writer, self.endpoint.starttls, self.timeout)
                yield reader, writer
            finally:
                await close_now(writer)


async def _line(reader: asyncio.StreamReader, timeout: float, what: str) -> str:
    try:
        async with asyncio.timeout(timeout):
            raw = await reader.readuntil(b"\n")
    except TimeoutError:
        raise ProbeConnectionError(f"{what}: no answer within {timeout:g}s") from None
    except asyncio.LimitOverrunError:
        raise ProbeConnectionError(f"{what}: a line longer than {LINE_LIMIT} bytes") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raw = exc.partial
        else:
            raise ProbeConnectionError(f"{what}: the server closed the connection") from None
    if len(raw) > LINE_LIMIT:
        raise ProbeConnectionError(f"{what}: a line longer than {LINE_LIMIT} bytes")
    return decode_banner(raw.rstrip(b"\r\n"))


async def _reply(
    reader: asyncio.StreamReader, timeout: float, what: str, done: re.Pattern[str]
) -> list[str]:
    """Lines up to and including the first one matching `done` (a reply's last line)."""
    lines: list[str] = []
    for _ in range(PREAMBLE_LINES):
        line = await _line(reader, timeout, what)
        lines.append(line)
        if done.match(line):
            return lines
    raise ProbeConnectionError(f"{what}: more than {PREAMBLE_LINES} lines without an end")


async def _send(writer: asyncio.StreamWriter, data: bytes, timeout: float, what: str) -> None:
    writer.write(data)
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError:
        raise ProbeConnectionError(f"{what}: could not send within {timeout:g}s") from None
    except OSError as exc:
        raise ProbeConnectionError(f"{what}: {(exc.strerror or 'send failed').lower()}") from None


def _refused(what: str, line: str) -> ProbeConnectionError:
    return StartTlsRefused(f"{what}: the server refused STARTTLS: {for_terminal(line, 200)}")


_SMTP_END = re.compile(r"^\d{3}(?: |$)")
_FTP_END = _SMTP_END
_IMAP_TAG = "P1"


async def starttls_preamble(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: StartTls, timeout: float
) -> None:
    """Speak the protocol's plain-text part up to the point where the next bytes are TLS."""
    what = f"STARTTLS ({protocol.value})"
    if protocol is StartTls.SMTP:
        greeting = await _reply(reader, timeout, what, _SMTP_END)
        if not greeting[-1].startswith("220"):
            raise _refused(what, greeting[-1])
        await _send(writer, b"EHLO posture.invalid\r\n", timeout, what)
        ehlo = await _reply(reader, timeout, what, _SMTP_END)
        if not ehlo[-1].startswith("250"):
            raise _refused(what, ehlo[-1])
        if not any(line[4:].strip().upper().startswith("STARTTLS") for line in ehlo):
            raise StartTlsRefused(f"{what}: the server does not offer STARTTLS")
        await _send(writer, b"STARTTLS\r\n", timeout, what)
        answer = await _reply(reader, timeout, what, _SMTP_END)
        if not answer[-1].startswith("220"):
            raise _refused(what, answer[-1])
    elif protocol is StartTls.IMAP:
        first = await _line(reader, timeout, what)
        if not first.upper().startswith("* OK"):
            raise _refused(what, first)
        await _send(writer, f"{_IMAP_TAG} STARTTLS\r\n".encode(), timeout, what)
        tagged = await _reply(reader, timeout, what, re.compile(rf"^{_IMAP_TAG} "))
        if not tagged[-1].upper().startswith(f"{_IMAP_TAG} OK"):
            raise _refused(what, tagged[-1])
    elif protocol is StartTls.POP3:
        first = await _line(reader, timeout, what)
        if not first.startswith("+OK"):
            raise _refused(what, first)
        await _send(writer, b"STLS\r\n", timeout, what)
        reply = await _line(reader, timeout, what)
        if not reply.startswith("+OK"):
            raise _refused(what, reply)
    elif protocol is StartTls.FTP:
        greeting = await _reply(reader, timeout, what, _FTP_END)
        if not greeting[-1].startswith("220"):
            raise _refused(what, greeting[-1])
        await _send(writer, b"AUTH TLS\r\n", timeout, what)
        answer = await _reply(reader, timeout, what, _FTP_END)
        if not answer[-1].startswith("234"):
            raise _refused(what, answer[-1])
    elif protocol is StartTls.POSTGRES:
        # SSLRequest: length 8, then the magic code 80877103; the server answers one byte.
        await _send(writer, struct.pack("!II", 8, 80877103), timeout, what)
        try:
            async with asyncio.timeout(timeout):
                answer_byte = await reader.readexactly(1)
        except TimeoutError:
            raise ProbeConnectionError(f"{what}: no answer within {timeout:g}s") from None
        except asyncio.IncompleteReadError:
            raise ProbeConnectionError(f"{what}: the server closed the connection") from None
        if answer_byte != b"S":
            raise StartTlsRefused(f"{what}: the server does not accept SSL connections")
