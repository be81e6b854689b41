"""HSTS of an HTTPS endpoint: one GET / over a TLS connection made by the local OpenSSL, and
the Strict-Transport-Security header parsed (RFC 6797)."""

from __future__ import annotations

import asyncio
import re
import ssl

from scanner.probes.tls.connection import Endpoint, ProbeConnectionError, close_now
from scanner.probes.tls.model import HstsPolicy
from scanner.safetext import clip, decode_banner

HEADER_LIMIT = 64 * 1024  # bytes of response head read at most
_MAX_AGE = re.compile(r'^max-age\s*=\s*"?(\d{1,12})"?$', re.IGNORECASE)


def parse_hsts(value: str) -> HstsPolicy:
    """The directives of one header value; an unparsable max-age leaves max_age None (a browser
    ignores such a header, so it protects nothing)."""
    max_age: int | None = None
    include_subdomains = preload = False
    for directive in value.split(";"):
        directive = directive.strip()
        if not directive:
            continue
        if match := _MAX_AGE.match(directive):
            max_age = int(match.group(1))
        elif directive.lower() == "includesubdomains":
            include_subdomains = True
        elif directive.lower() == "preload":
            preload = True
    return HstsPolicy(
        present=True,
        max_age=max_age,
        include_subdomains=include_subdomains,
        preload=preload,
        header=clip(value, 512),
    )


def _client_context() -> ssl.SSLContext:
    # Only headers are read and nothing secret is sent, so the peer is not verified here; the
    # certificate is judged from posture's own handshakes.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def parse_head(head: bytes) -> HstsPolicy | None:
    """HSTS from an HTTP response head; None when it is not HTTP at all."""
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/"):
        return None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"strict-transport-security":
            # The first header counts (RFC 6797 section 8.1).
            return parse_hsts(decode_banner(value.strip()))
    return HstsPolicy(present=False)


async def fetch_hsts(endpoint: Endpoint, *, timeout: float) -> HstsPolicy | None:
    """The endpoint's HSTS policy, or None when it did not answer HTTP over TLS."""
    host = endpoint.sni or endpoint.address
    try:
        async with asyncio.timeout(timeout * 2):
            reader, writer = await asyncio.open_connection(
                endpoint.address,
                endpoint.port,
                ssl=_client_context(),
                server_hostname=endpoint.sni or "",
                ssl_handshake_timeout=timeout,
            )
    except (TimeoutError, OSError, ssl.SSLError) as exc:
        raise ProbeConnectionError(f"HTTPS request to {endpoint} failed: {exc}") from None
    try:
        authority = f"[{host}]" if ":" in host else host
        request = (
            f"GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: posture\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii", "replace"))
        head = bytearray()
        async with asyncio.timeout(timeout):
            await writer.drain()
            while b"\r\n\r\n" not in head and len(head) < HEADER_LIMIT:
                chunk = await reader.read(HEADER_LIMIT - len(head))
                if not chunk:
                    break
                head += chunk
    except (TimeoutError, OSError, ssl.SSLError):
        return None
    finally:
        await close_now(writer)
    return parse_head(bytes(head).split(b"\r\n\r\n", 1)[0])
