"""A lab of real services on loopback addresses, for `make demo`, the tests and the benchmarks.

Each lab host is its own address under a /24 base (default 127.0.77), with its services on their
well-known ports. redis-server, memcached and pyftpdlib are the real servers; the rest are small
asyncio servers speaking enough of each protocol for nmap -sV to identify them. Everything is
bounded: connections per service, bytes read, connection lifetime and the lab's own lifetime.

    python -m demo.lab --base 127.0.77 --seconds 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import email.utils
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.errors import ConfigError

log = logging.getLogger("demo.lab")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

DEFAULT_BASE = "127.0.77"
DEFAULT_LIFETIME = 3600.0  # seconds: a lab nobody stops stops itself
CONNECTION_LIFETIME = 30.0  # seconds any one client connection may last
MAX_CONNECTIONS = 64  # concurrent connections per emulated service; more are hung up on
READ_LIMIT = 16 * 1024  # bytes buffered per connection by an emulated service
READY_TIMEOUT = 15.0  # seconds start() waits for every port to accept
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the real daemons


@dataclass(frozen=True)
class LabEndpoint:
    """One service of the lab."""

    name: str  # the service, e.g. "telnet", "redis"
    address: str
    port: int
    proto: str  # "tcp"
    kind: str  # "real" (redis-server, memcached, pyftpdlib) or "emulated" (asyncio, in Python)


# --------------------------------------------------------------------------------------------
# Emulated services: one asyncio loop in a thread serves them all.


class ServiceLoop:
    """An asyncio event loop in a background thread serving emulated protocols."""

    def __init__(
        self,
        *,
        max_connections: int = MAX_CONNECTIONS,
        connection_lifetime: float = CONNECTION_LIFETIME,
    ) -> None:
        self.max_connections = max_connections
        self.connection_lifetime = connection_lifetime
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab-loop", daemon=True)
        self._thread.start()
        self._closed = False

    def serve(
        self, address: str, port: int, handler: Handler, *, tls: ssl.SSLContext | None = None
    ) -> None:
        """Listen on address:port (OSError if it cannot) and run `handler` per connection."""

        async def start() -> None:
            slots = asyncio.Semaphore(self.max_connections)

            async def on_connect(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                if slots.locked():
                    writer.close()
                    return
                async with slots:
                    try:
                        await asyncio.wait_for(handler(reader, writer), self.connection_lifetime)
                    except _CLIENT_TROUBLE:
                        pass  # clients (nmap above all) hang up and send junk: that is normal
                    except asyncio.CancelledError:
                        # close() cancels open connections; ending quietly spares asyncio's
                        # stream callback a traceback about the cancellation
                        return
                    finally:
                        writer.close()
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(writer.wait_closed(), 2)

            extra: dict[str, Any] = {"ssl": tls, "ssl_handshake_timeout": 10} if tls else {}
            server = await asyncio.start_server(
                on_connect, address, port, limit=READ_LIMIT, reuse_address=True, **extra
            )
            self._servers.append(server)

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def stop() -> None:
            for server in self._servers:
                server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


_CLIENT_TROUBLE = (
    TimeoutError,
    OSError,
    EOFError,  # includes asyncio.IncompleteReadError
    ValueError,
    IndexError,
    struct.error,
    asyncio.LimitOverrunError,
)


async def _read(reader: asyncio.StreamReader, size: int = 4096, timeout: float = 10.0) -> bytes:
    """Whatever the client sends next (at most `size` bytes); b"" on EOF or silence."""
    try:
        return await asyncio.wait_for(reader.read(size), timeout)
    except TimeoutError:
        return b""


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


# --- legacy unix ------------------------------------------------------------------------------

_IAC, _DO = 255, 253
_TELNET_OPTIONS = (24, 32, 35, 39)  # terminal type, speed, X display, new environ: as telnetd


def telnet(hostname: str = "legacy") -> Handler:
    """A Debian telnetd: option negotiation first, then the issue banner and a login prompt."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _send(writer, bytes(b for opt in _TELNET_OPTIONS for b in (_IAC, _DO, opt)))
        if not await _read(reader, 512, 15):
            return  # the client never answered the negotiation
        banner = f"\r\nDebian GNU/Linux 12\r\n\r\n{hostname} login: ".encode()
        await _send(writer, banner)
        if not await _read(reader, 256, 20):
            return
        await _send(writer, b"Password: ")
        if not await _read(reader, 256, 20):
            return
        await asyncio.sleep(1)  # as login(1) does after a wrong password
        await _send(writer, b"\r\nLogin incorrect\r\n")

    return handler


def r_service(refusal: bytes) -> Handler:
    """rsh/rlogin/rexec: read the client's request, refuse it the way the BSD daemons do."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _read(reader, 1024, 15):
            await _send(writer, b"\x01" + refusal)

    return handler


def x11(vendor: bytes = b"The X.Org Foundation") -> Handler:
    """An X server without access control (xhost +): accepts any connection setup."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read(reader, 1024, 15)
        if len(request) < 12 or request[:1] not in (b"l", b"B"):
            return
        order = "<" if request[:1] == b"l" else ">"
        padded = vendor + b"\0" * (-len(vendor) % 4)
        fixed = struct.pack(
            f"{order}IIIIHHBBBBBBBB4x",
            12101007,  # release 1.21.1.7, Debian 12's Xorg
            0x04000000,  # resource-id-base
            0x001FFFFF,  # resource-id-mask
            256,  # motion-buffer-size
            len(vendor),
            65535,  # maximum-request-length
            0,  # screens
            0,  # pixmap formats
            0,
            0,
            32,
            32,
            8,  # min keycode
            255,  # max keycode
        )
        body = fixed + padded
        head = struct.pack(f"{order}BxHHH", 1, 11, 0, len(body) // 4)
        await _send(writer, head + body)
        await _read(reader, 1024, 10)

    return handler


# --- hardened / windows -----------------------------------------------------------------------


def ssh_banner(banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _send(writer, banner + b"\r\n")
        await _read(reader, 1024, 15)

    return handler


def line_service(greeting: bytes, replies: Sequence[tuple[bytes, bytes]], other: bytes) -> Handler:
    """A line-oriented daemon (FTP, SMTP): its greeting, then per line the reply of the first
    command prefix that matches (case-insensitive), else `other`; at most 20 lines."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _send(writer, greeting)
        for _ in range(20):
            try:
                line = await asyncio.wait_for(reader.readline(), 15)
            except (TimeoutError, ValueError):
                return
            if not line:
                return
            command = line.strip().upper()
            reply = next((r for prefix, r in replies if command.startswith(prefix)), other)
            await _send(writer, reply)
            if command.startswith((b"QUIT", b"BYE")):
                return

    return handler


XENIAL_SSH = b"SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8"  # Ubuntu 16.04's last build


def vsftpd_234() -> Handler:
    """vsftpd 2.3.4's greeting: the release whose source tarball was backdoored (CVE-2011-2523)."""
    return line_service(
        b"220 (vsFTPd 2.3.4)\r\n",
        ((b"USER", b"331 Please specify the password.\r\n"), (b"QUIT", b"221 Goodbye.\r\n")),
        b"530 Please login with USER and PASS.\r\n",
    )


def exim_489(hostname: str = "mail.unpatched.test") -> Handler:
    """Exim 4.89 (Debian 9's), affected by CVE-2019-10149 ("The Return of the WIZard")."""
    name = hostname.encode()
    return line_service(
        b"220 " + name + b" ESMTP Exim 4.89 Tue, 24 Nov 2026 10:00:00 +0000\r\n",
        (
            (b"EHLO", b"250-" + name + b" Hello\r\n250-SIZE 52428800\r\n250 HELP\r\n"),
            (b"HELO", b"250 " + name + b" Hello\r\n"),
            (b"QUIT", b"221 " + name + b" closing connection\r\n"),
        ),
        b"500 unrecognized command\r\n",
    )


def apache_2449() -> Handler:
    """Apache httpd 2.4.49, the release with the path traversal of CVE-2021-41773."""

    def route(request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            200 if request.path == "/" else 404,
            (("Server", "Apache/2.4.49 (Unix)"), ("Content-Type", "text/html")),
            b"<html><body><h1>It works!</h1></body></html>\n",
            go_style=False,
        )

    bad = b"HTTP/1.1 400 Bad Request\r\nServer: Apache/2.4.49 (Unix)\r\nConnection: close\r\n\r\n"
    return http_service(route, bad_request=bad)


def vnc() -> Handler:
    """RFB 3.8 with VNC authentication; every password is wrong."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _send(writer, b"RFB 003.008\n")
        if len(await _read(reader, 12, 15)) < 12:
            return
        await _send(writer, b"\x01\x02")  # one security type: VNC authentication
        if not await _read(reader, 1, 15):
            return
        await _send(writer, secrets.token_bytes(16))
        if not await _read(reader, 16, 15):
            return
        reason = b"Authentication failed"
        await _send(writer, struct.pack(">II", 1, len(reason)) + reason)

    return handler


def rdp() -> Handler:
    """X.224 connection confirm selecting CredSSP, as Windows Server answers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read(reader, 4096, 15)
        if request[:2] == b"\x03\x00":
            # TPKT, X.224 connection confirm, RDP_NEG_RSP selecting PROTOCOL_HYBRID (CredSSP)
            tpkt = b"\x03\x00\x00\x13"
            confirm = b"\x0e\xd0\x00\x00\x12\x34\x00"
            negotiation = b"\x02\x1f\x08\x00\x02\x00\x00\x00"
            await _send(writer, tpkt + confirm + negotiation)
            await _read(reader, 4096, 10)

    return handler


def netbios_session() -> Handler:
    """NetBIOS session service: every session request gets "called name not present"."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read(reader, 4096, 15)
        if request[:1] == b"\x81":
            await _send(writer, b"\x83\x00\x00\x01\x82")

    return handler


def hang_up() -> Handler:
    """Accepts, reads what the client sends, then closes (SMB here: nmap names it by port)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read(reader, 4096, 15)

    return handler


# --- database ---------------------------------------------------------------------------------


def mysql(version: str = "8.0.36") -> Handler:
    """A MySQL protocol v10 greeting; the login that follows is refused (error 1045)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        salt = bytes(secrets.choice(alphabet) for _ in range(20))
        payload = (
            b"\x0a"
            + version.encode()
            + b"\0"
            + struct.pack("<I", secrets.randbelow(0xFFFF) + 1)  # connection id
            + salt[:8]
            + b"\0"
            + struct.pack("<H", 0xFFFF)  # capabilities, low half
            + bytes([255])  # utf8mb4_0900_ai_ci
            + struct.pack("<H", 2)  # SERVER_STATUS_AUTOCOMMIT
            + struct.pack("<H", 0xDFFF)  # capabilities, high half
            + bytes([21])
            + b"\0" * 10
            + salt[8:]
            + b"\0"
            + b"caching_sha2_password\0"
        )
        await _send(writer, struct.pack("<I", len(payload))[:3] + b"\0" + payload)
        if not await _read(reader, 4096, 15):
            return
        message = b"#28000Access denied for user 'root'@'localhost' (using password: NO)"
        error = b"\xff" + struct.pack("<H", 1045) + message
        await _send(writer, struct.pack("<I", len(error))[:3] + b"\x02" + error)

    return handler


def _pg_error(code: str, message: str) -> bytes:
    fields = (
        f"SFATAL\0VFATAL\0C{code}\0M{message}\0Fpostmaster.c\0L2138\0RProcessStartupPacket\0\0"
    ).encode()
    return b"E" + struct.pack(">I", len(fields) + 4) + fields


def postgresql() -> Handler:
    """PostgreSQL 14's startup: SSL refused ('N'), logins refused, other protocols rejected."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):  # an SSL/GSS request may come before the real startup packet
            head = await asyncio.wait_for(reader.readexactly(4), 15)
            length = struct.unpack(">I", head)[0]
            if not 8 <= length <= 10000:
                await _send(writer, _pg_error("08P01", "invalid length of startup packet"))
                return
            packet = await asyncio.wait_for(reader.readexactly(length - 4), 15)
            code = struct.unpack(">I", packet[:4])[0]
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                await _send(writer, b"N")
                continue
            if code == 196608:  # protocol 3.0
                params = packet[4:].split(b"\0")
                user = params[params.index(b"user") + 1].decode() if b"user" in params else ""
                await _send(
                    writer,
                    _pg_error(
                        "28000",
                        f'no pg_hba.conf entry for host "127.0.0.1", user "{user[:64]}", '
                        'database "postgres", no encryption',
                    ),
                )
                return
            major, minor = code >> 16, code & 0xFFFF
            await _send(
                writer,
                _pg_error(
                    "0A000",
                    f"unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0",
                ),
            )
            return

    return handler


# --- HTTP services ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    version: str  # "1.0" or "1.1"
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    go_style: bool = True  # Go's net/http: sorted headers, then Date and Content-Length


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


_BAD_REQUEST = HttpRequest("", "", "1.1", {}, b"")  # answered with a 400, as real servers do


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    try:
        # The request line alone first: junk (nmap's binary probes) gets its 400 at once
        # instead of waiting for a blank line that never comes.
        first = await asyncio.wait_for(reader.readuntil(b"\n"), 15)
        parts = first.decode("latin-1").strip().split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
            return _BAD_REQUEST
        headers = {}
        for _ in range(100):
            line = (await asyncio.wait_for(reader.readuntil(b"\n"), 15)).decode("latin-1")
            if not line.strip():
                break
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        body = b""
        length = headers.get("content-length", "0")
        if length.isdigit() and 0 < int(length) <= READ_LIMIT:
            body = await asyncio.wait_for(reader.readexactly(int(length)), 15)
    except asyncio.IncompleteReadError as exc:
        return _BAD_REQUEST if exc.partial else None
    except (TimeoutError, asyncio.LimitOverrunError):
        return None
    return HttpRequest(parts[0], parts[1], parts[2][5:], headers, body)


def _render(request: HttpRequest, response: HttpResponse) -> bytes:
    version = "1.0" if request.version == "1.0" else "1.1"
    lines = [f"HTTP/{version} {response.status} {_REASONS.get(response.status, 'Error')}"]
    if response.go_style:
        lines += [f"{k}: {v}" for k, v in sorted(response.headers)]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.append(f"Content-Length: {len(response.body)}")
    else:
        lines += [f"{k}: {v}" for k, v in response.headers]
        lines.append(f"content-length: {len(response.body)}")
    body = b"" if request.method == "HEAD" else response.body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_GO_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)


def http_service(
    route: Callable[[HttpRequest], HttpResponse], *, bad_request: bytes = _GO_400
) -> Handler:
    """One request per connection (Connection: close), answered by `route`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request is None:
            return
        if not request.method:
            await _send(writer, bad_request)
            return
        await _send(writer, _render(request, route(request)))

    return handler


def _json(data: Any, *, pretty: bool = False) -> bytes:
    if pretty:  # Elasticsearch's own layout: "key" : value, two-space indent
        return json.dumps(data, indent=2, separators=(",", " : ")).encode() + b"\n"
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


_GO_404 = HttpResponse(
    404,
    (("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")),
    b"404 page not found\n",
)

DOCKER_VERSION = {
    "Platform": {"Name": "Docker Engine - Community"},
    "Components": [
        {
            "Name": "Engine",
            "Version": "24.0.7",
            "Details": {
                "ApiVersion": "1.43",
                "Arch": "amd64",
                "BuildTime": "2023-10-26T09:07:41.000000000+00:00",
                "Experimental": "false",
                "GitCommit": "311b9ff",
                "GoVersion": "go1.20.10",
                "KernelVersion": "6.1.0-13-amd64",
                "MinAPIVersion": "1.12",
                "Os": "linux",
            },
        },
        {"Name": "containerd", "Version": "1.6.24", "Details": {"GitCommit": "61f9fd88"}},
        {"Name": "runc", "Version": "1.1.9", "Details": {"GitCommit": "v1.1.9-0-gccaecfc"}},
    ],
    "Version": "24.0.7",
    "ApiVersion": "1.43",
    "MinAPIVersion": "1.12",
    "GitCommit": "311b9ff",
    "GoVersion": "go1.20.10",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.1.0-13-amd64",
    "BuildTime": "2023-10-26T09:07:41.000000000+00:00",
}


def docker_api(*, authorization: bool = False) -> Handler:
    """Docker Engine 24.0.7 on tcp://:2375; with `authorization`, a plugin denies every call."""
    engine = (
        ("Api-Version", "1.43"),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Server", "Docker/24.0.7 (linux)"),
    )
    json_type = (("Content-Type", "application/json"),)

    def route(request: HttpRequest) -> HttpResponse:
        path = request.path.split("?")[0]
        if request.method == "OPTIONS":
            return HttpResponse(200, engine)
        if path.endswith("/version") or path.endswith("/_ping"):
            if authorization:
                body = {"message": "authorization denied by plugin posture-lab-authz: denied"}
                return HttpResponse(403, engine + json_type, _json(body))
            if path.endswith("/_ping"):
                return HttpResponse(200, (*engine, ("Content-Type", "text/plain")), b"OK")
            return HttpResponse(200, engine + json_type, _json(DOCKER_VERSION))
        return HttpResponse(404, json_type, _json({"message": "page not found"}))

    return http_service(route)


def etcd(*, auth: bool = False) -> Handler:
    """etcd 3.5.9's client port: /version, /health and the v3 JSON gateway's Range."""
    json_type = (("Content-Type", "application/json"),)
    header = {
        "cluster_id": "14841639068965178418",
        "member_id": "10276657743932975437",
        "revision": "1",
        "raft_term": "2",
    }

    def route(request: HttpRequest) -> HttpResponse:
        path = request.path.split("?")[0]
        if path == "/version":
            return HttpResponse(
                200, json_type, _json({"etcdserver": "3.5.9", "etcdcluster": "3.5.0"})
            )
        if path == "/health":
            return HttpResponse(200, json_type, _json({"health": "true", "reason": ""}))
        if path == "/v3/kv/range" and request.method == "POST":
            gateway = (*json_type, ("Grpc-Metadata-Content-Type", "application/grpc"))
            if auth:
                message = "etcdserver: user name is empty"
                body = {"error": message, "code": 3, "message": message}
                return HttpResponse(400, gateway, _json(body))
            return HttpResponse(200, gateway, _json({"header": header}))
        return _GO_404

    return http_service(route)


ELASTICSEARCH_BUILDS = {
    "7.10.2": {
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "747e1cc71def077253878a59143c1f785afa92b9",
        "build_date": "2021-01-13T00:42:12.435326Z",
        "build_snapshot": False,
        "lucene_version": "8.7.0",
        "minimum_wire_compatibility_version": "6.8.0",
        "minimum_index_compatibility_version": "6.0.0-beta1",
    },
    "8.11.1": {
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "6f9ff581fbcde658e6f69d6ce03050f060d1fd0c",
        "build_date": "2023-11-11T10:05:59.421038163Z",
        "build_snapshot": False,
        "lucene_version": "9.8.0",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
}


def elasticsearch(*, version: str = "7.10.2", auth: bool = False) -> Handler:
    """Elasticsearch's REST API (7.10.2 or 8.11.1); with `auth`, security is on (401).

    The lab runs 7.10.2: nmap 7.93 recognises its headers, while 8.x's (X-elastic-product
    first) leave it unrecognised and nmap then spends minutes on every probe it has.
    """
    if version.startswith("7."):
        product: tuple[tuple[str, str], ...] = (
            ("content-type", "application/json; charset=UTF-8"),
        )
    else:
        product = (("X-elastic-product", "Elasticsearch"), ("content-type", "application/json"))
    root = {
        "name": "es-node-1",
        "cluster_name": "posture-lab",
        "cluster_uuid": "Hx9y3q2VQ8eU8h7qS1bPxw",
        "version": {"number": version, **ELASTICSEARCH_BUILDS[version]},
        "tagline": "You Know, for Search",
    }

    def route(request: HttpRequest) -> HttpResponse:
        path = request.path.split("?")[0]
        if auth:
            reason = f"missing authentication credentials for REST request [{path[:200]}]"
            cause = {"type": "security_exception", "reason": reason}
            body = {"error": {"root_cause": [cause], **cause}, "status": 401}
            headers = (
                ("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'),
                ("WWW-Authenticate", "ApiKey"),
                *product,
            )
            return HttpResponse(401, headers, _json(body), go_style=False)
        if path == "/" and request.method in ("GET", "HEAD"):
            return HttpResponse(200, product, _json(root, pretty=True), go_style=False)
        cause = {
            "type": "index_not_found_exception",
            "reason": f"no such index [{path.strip('/')[:100]}]",
        }
        body = {"error": {"root_cause": [cause], **cause}, "status": 404}
        return HttpResponse(404, product, _json(body), go_style=False)

    bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
    return http_service(route, bad_request=bad)


def kubelet() -> Handler:
    """The kubelet API (HTTPS) with anonymous authentication on and webhook authorization:
    anyone reaches it, most paths are then forbidden to system:anonymous."""

    def route(request: HttpRequest) -> HttpResponse:
        path = request.path.split("?")[0]
        if path == "/":
            return _GO_404
        body = b"Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"
        headers = (("Content-Type", "text/plain; charset=utf-8"),)
        return HttpResponse(403, headers, body)

    return http_service(route)


def self_signed_tls(common_name: str, directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate (kept in `directory`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    # RSA, and OpenSSL's default suites rather than Python's stricter list: nmap's TLS probes
    # offer RSA key exchange only, which Go servers such as the kubelet accept.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT")
    context.load_cert_chain(cert_path, key_path)
    return context


# --------------------------------------------------------------------------------------------
# Real servers: pyftpdlib in a thread, redis-server and memcached as child processes.


class FtpServer:
    """pyftpdlib (a real FTP server) in a thread: anonymous read-only on `root` if allowed."""

    def __init__(
        self,
        address: str,
        port: int,
        root: Path,
        *,
        anonymous: bool = True,
        users: dict[str, str] | None = None,
        banner: str | None = None,
    ) -> None:
        with warnings.catch_warnings():
            # pyftpdlib is built on asyncore/asynchat and says so on import, in every test run
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler
            from pyftpdlib.ioloop import IOLoop
            from pyftpdlib.servers import FTPServer

        # pyftpdlib configures logging at INFO on stderr unless its logger already has a handler
        ftp_log = logging.getLogger("pyftpdlib")
        ftp_log.setLevel(logging.WARNING)
        if not ftp_log.handlers:
            ftp_log.addHandler(logging.NullHandler())
        authorizer = DummyAuthorizer()
        if anonymous:
            authorizer.add_anonymous(str(root))  # perm "elr": read-only
        for user, password in (users or {}).items():
            authorizer.add_user(user, password, str(root), perm="elr")
        # A subclass per server: pyftpdlib configures handlers through class attributes.
        settings: dict[str, Any] = {
            "authorizer": authorizer,
            "timeout": CONNECTION_LIFETIME,
            "max_login_attempts": 1,
        }
        if banner is not None:
            settings["banner"] = banner
        handler = type("LabFtpHandler", (FTPHandler,), settings)
        # Its own IOLoop: pyftpdlib's default one is a process-wide singleton.
        self._server = FTPServer((address, port), handler, ioloop=IOLoop())
        self._server.max_cons = MAX_CONNECTIONS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-ftp", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # pyftpdlib's loop cannot be stopped from another thread: run it in short slices
        ioloop = self._server.ioloop
        while not self._stop.is_set():
            ioloop.loop(timeout=0.1, blocking=False)
        self._server.close_all()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Daemon:
    """A real server binary as a child process, bounded by coreutils `timeout` when present."""

    def __init__(self, argv: Sequence[str], *, lifetime: float, log_path: Path) -> None:
        wrapper = shutil.which("timeout")
        # Even if this process is killed outright, `timeout` ends the daemon when its time is up.
        prefix = [wrapper, "--kill-after=5", f"{max(1, int(lifetime))}s"] if wrapper else []
        self.argv = [*prefix, *argv]
        self.log_path = log_path
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def log_tail(self, size: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace").strip()
        return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def redis_argv(
    address: str, port: int = 6379, *, password: str | None = None, protected_mode: bool = False
) -> list[str]:
    """redis-server in the foreground, no persistence, bound to `address` only."""
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        address,
        "--protected-mode",
        "yes" if protected_mode else "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--maxclients",
        str(MAX_CONNECTIONS),
        "--timeout",
        str(int(CONNECTION_LIFETIME)),
    ]
    if password is not None:
        argv += ["--requirepass", password]
    return argv


def memcached_argv(address: str, port: int = 11211, *, auth_file: Path | None = None) -> list[str]:
    """memcached on TCP only (-U 0), bound to `address` only."""
    argv = [shutil.which("memcached") or "memcached", "-l", address, "-p", str(port), "-U", "0"]
    argv += ["-c", str(MAX_CONNECTIONS)]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without naming a user
    if auth_file is not None:
        argv += ["-Y", str(auth_file)]
    return argv


def wait_for_port(address: str, port: int, timeout: float = READY_TIMEOUT) -> bool:
    """True once address:port accepts a TCP connection, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 1):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------------------------
# The lab.


@dataclass(frozen=True)
class _Service:
    name: str
    port: int
    kind: str  # "emulated", "ftp", "redis", "memcached"
    handler: Callable[[], Handler] | None = None
    tls: bool = False


LAB_HOSTS: dict[str, tuple[int, tuple[_Service, ...]]] = {
    "legacy-unix": (
        10,
        (
            _Service("ftp", 21, "ftp"),
            _Service("telnet", 23, "emulated", lambda: telnet("legacy")),
            _Service("rexec", 512, "emulated", lambda: r_service(b"Login incorrect.\n")),
            _Service("rlogin", 513, "emulated", lambda: r_service(b"Permission denied.\n")),
            _Service("rsh", 514, "emulated", lambda: r_service(b"Permission denied.\n")),
            _Service("x11", 6000, "emulated", x11),
        ),
    ),
    "cache": (
        11,
        (_Service("redis", 6379, "redis"), _Service("memcached", 11211, "memcached")),
    ),
    "container": (
        12,
        (
            _Service("docker", 2375, "emulated", docker_api),
            _Service("etcd", 2379, "emulated", etcd),
            _Service("kubelet", 10250, "emulated", kubelet, tls=True),
        ),
    ),
    "windows": (
        13,
        (
            _Service("netbios-ssn", 139, "emulated", netbios_session),
            _Service("smb", 445, "emulated", hang_up),
            _Service("rdp", 3389, "emulated", rdp),
            _Service("vnc", 5900, "emulated", vnc),
        ),
    ),
    "database": (
        14,
        (
            _Service("mysql", 3306, "emulated", mysql),
            _Service("postgresql", 5432, "emulated", postgresql),
            _Service("elasticsearch", 9200, "emulated", elasticsearch),
        ),
    ),
    "hardened": (15, (_Service("ssh", 22, "emulated", ssh_banner),)),
    # Software years behind: known-vulnerable versions, three of them in CISA KEV.
    "unpatched": (
        16,
        (
            _Service("ftp", 21, "emulated", vsftpd_234),
            _Service("ssh", 22, "emulated", lambda: ssh_banner(XENIAL_SSH)),
            _Service("smtp", 25, "emulated", exim_489),
            _Service("http", 80, "emulated", apache_2449),
        ),
    ),
}

_BINARIES = {"redis": "redis-server", "memcached": "memcached"}


class Lab:
    """Starts the lab's services on `<base>.10` … `<base>.15` and stops them all.

    `hosts` picks lab hosts by role (see LAB_HOSTS); default all. Services on ports below 1024
    need root. A service whose binary is missing (redis-server, memcached) is skipped with a
    warning. The lab stops itself after `lifetime` seconds if nobody stops it first.
    """

    def __init__(
        self,
        base: str = DEFAULT_BASE,
        *,
        hosts: Sequence[str] | None = None,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        self.base = _check_base(base)
        roles = list(LAB_HOSTS) if hosts is None else list(dict.fromkeys(hosts))
        unknown = [r for r in roles if r not in LAB_HOSTS]
        if unknown:
            raise ConfigError(
                f"unknown lab host(s) {', '.join(unknown)}: choose from {', '.join(LAB_HOSTS)}"
            )
        self.roles = roles
        self.lifetime = lifetime
        self._plan = [
            (role, f"{self.base}.{LAB_HOSTS[role][0]}", service)
            for role in roles
            for service in LAB_HOSTS[role][1]
        ]
        self._endpoints: list[LabEndpoint] = []
        self._loop: ServiceLoop | None = None
        self._ftp: list[FtpServer] = []
        self._daemons: list[Daemon] = []
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._running = False

    @property
    def endpoints(self) -> list[LabEndpoint]:
        """The services running (after start), in lab order."""
        return list(self._endpoints)

    @property
    def addresses(self) -> list[str]:
        """The addresses of the lab hosts, in ascending order."""
        return sorted(
            {f"{self.base}.{LAB_HOSTS[r][0]}" for r in self.roles},
            key=lambda a: ipaddress.ip_address(a),
        )

    def address_of(self, role: str) -> str:
        """The address of one lab host, e.g. address_of("cache")."""
        if role not in self.roles:
            raise KeyError(f"lab host {role!r} is not part of this lab ({', '.join(self.roles)})")
        return f"{self.base}.{LAB_HOSTS[role][0]}"

    def port_list(self) -> str:
        """Every port the lab serves, as a comma list for `--ports`."""
        ports = {ep.port for ep in self._endpoints} if self._running else set()
        if not ports:
            ports = {service.port for _, _, service in self._plan}
        return ",".join(str(p) for p in sorted(ports))

    def start(self) -> Lab:
        """Start every service and wait (bounded) until each one accepts connections."""
        with self._lock:
            if self._running:
                return self
            low = sorted({s.port for _, _, s in self._plan if s.port < 1024})
            if low and os.geteuid() != 0:
                raise ConfigError(
                    f"the lab serves ports below 1024 ({', '.join(map(str, low))}), which needs "
                    "root: run it as root, or choose hosts without them (e.g. cache, container)"
                )
            self._running = True
            try:
                self._start_all()
            except BaseException:
                self._stop_all()
                raise
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start_all(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="posture-lab-")
        workdir = Path(self._workdir.name)
        self._loop = ServiceLoop()
        pending: list[tuple[LabEndpoint, Daemon | None]] = []
        for _role, address, service in self._plan:
            endpoint = LabEndpoint(
                service.name,
                address,
                service.port,
                "tcp",
                "emulated" if service.kind == "emulated" else "real",
            )
            binary = _BINARIES.get(service.kind)
            if binary is not None and shutil.which(binary) is None:
                log.warning(
                    "lab: %s is not installed: %s on %s skipped", binary, service.name, address
                )
                continue
            try:
                daemon = self._start_service(service, address, workdir)
            except OSError as exc:
                raise ConfigError(
                    f"lab: cannot serve {service.name} on {address}:{service.port}: {exc} "
                    "(is something else listening there? choose another --base)"
                ) from None
            pending.append((endpoint, daemon))
        for endpoint, daemon in pending:
            if not wait_for_port(endpoint.address, endpoint.port):
                detail = daemon.log_tail() if daemon else ""
                raise ConfigError(
                    f"lab: {endpoint.name} on {endpoint.address}:{endpoint.port} did not accept "
                    f"connections within {READY_TIMEOUT:.0f}s"
                    + (f"; its log says: {detail}" if detail else "")
                )
            self._endpoints.append(endpoint)

    def _start_service(self, service: _Service, address: str, workdir: Path) -> Daemon | None:
        """Start one service; the Daemon for a binary, None for one served in this process."""
        assert self._loop is not None
        if service.kind == "emulated":
            assert service.handler is not None
            tls = self_signed_tls(service.name, workdir) if service.tls else None
            self._loop.serve(address, service.port, service.handler(), tls=tls)
            return None
        if service.kind == "ftp":
            root = workdir / "ftp"
            root.mkdir(exist_ok=True)
            (root / "README.txt").write_text("posture lab: anonymous, read-only FTP\n")
            self._ftp.append(FtpServer(address, service.port, root))
            return None
        argv = (
            redis_argv(address, service.port)
            if service.kind == "redis"
            else memcached_argv(address, service.port)
        )
        log_path = workdir / f"{service.name}-{address}.log"
        daemon = Daemon(argv, lifetime=self.lifetime + 60, log_path=log_path)
        self._daemons.append(daemon)
        return daemon

    def stop(self) -> None:
        """Stop every service (safe to call more than once, from any thread)."""
        with self._lock:
            if not self._running:
                return
            self._stop_all()

    def _stop_all(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        for ftp in self._ftp:
            ftp.close()
        for daemon in self._daemons:
            daemon.close()
        self._ftp, self._daemons, self._endpoints = [], [], []
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self._running = False

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_base(base: str) -> str:
    base = base.strip().rstrip(".")
    try:
        network = ipaddress.ip_network(f"{base}.0/24")
    except ValueError:
        raise ConfigError(f"lab base {base!r} must be three octets, like 127.0.77") from None
    if not network.is_loopback:
        raise ConfigError(f"lab base {base!r} must be on loopback (127.x.y): the lab is local")
    return base


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.lab", description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="address prefix, a loopback /24")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long")
    parser.add_argument(
        "--hosts",
        default=None,
        help=f"comma list of lab hosts (default all: {','.join(LAB_HOSTS)})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hosts = [h.strip() for h in args.hosts.split(",")] if args.hosts else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Lab(args.base, hosts=hosts, lifetime=args.seconds + 30) as lab:
            for ep in lab.endpoints:
                print(f"{ep.address:>15}:{ep.port:<5}/{ep.proto}  {ep.name} ({ep.kind})")
            print(
                f"lab up for {args.seconds:.0f}s; scan it with: posture scan "
                f"{' '.join(lab.addresses)} --ports {lab.port_list()}",
                flush=True,
            )
            stop.wait(args.seconds)
    except ConfigError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    print("lab stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
