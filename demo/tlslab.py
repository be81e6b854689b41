"""Real TLS endpoints on loopback for the tests, `make demo` and bench/tls.py: openssl s_server,
a private nginx, STARTTLS servers, and a handshake-level fake of what OpenSSL 3 cannot serve.

    python -m demo.tlslab --base 127.0.82 --seconds 60
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
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
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from demo.lab import Handler, ServiceLoop

DEFAULT_LIFETIME = 300.0  # seconds: a server nobody stops stops itself
READY_TIMEOUT = 10.0  # seconds start() waits for the port to accept
STOP_GRACE = 5.0  # seconds between the polite stop and SIGKILL
HARD_STOP_MARGIN = 15  # seconds past `lifetime` after which coreutils `timeout` kills the child
MAX_CONNECTIONS = 32  # concurrent connections per asyncio-hosted server; more are hung up on
CONNECTION_LIFETIME = 30.0  # seconds any one connection to an asyncio-hosted server may last

Protocol = Literal["tls1", "tls1_1", "tls1_2", "tls1_3"]
PROTOCOLS: tuple[Protocol, ...] = ("tls1", "tls1_1", "tls1_2", "tls1_3")
StartTlsProtocol = Literal["smtp", "imap", "pop3", "ftp", "postgres"]
HeartbeatMode = Literal["vulnerable", "patched"]

# Named finite-field groups `openssl genpkey -genparam` knows, for -dhparam / ssl_dhparam.
DH_GROUPS: dict[str, str] = {
    "ffdhe2048": "group:ffdhe2048",
    "ffdhe3072": "group:ffdhe3072",
    "ffdhe4096": "group:ffdhe4096",
    "rfc5114-1024": "dh_rfc5114:1",  # 1024-bit: the weak-DH case
    "rfc5114-2048": "dh_rfc5114:2",
}


class LabServerError(RuntimeError):
    """A lab server could not be started or configured; the message carries its log tail."""


# --------------------------------------------------------------------------------------------
# Common life cycle: start/stop, context manager, lifetime bound.


class LabServer(abc.ABC):
    """Start once, stop once (idempotent); stops itself after `lifetime` seconds."""

    def __init__(self, address: str, port: int, lifetime: float) -> None:
        ipaddress.ip_address(address)  # ValueError for anything but an address
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not 1-65535")
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self.address = address
        self.port = port
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._state = "new"  # new -> running -> stopped
        self._timer: threading.Timer | None = None

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._state == "running"

    def start(self) -> Self:
        with self._lock:
            if self._state != "new":
                raise LabServerError(f"{self.endpoint}: a lab server starts once ({self._state})")
            try:
                self._start()
            except BaseException:
                self._state = "stopped"
                self._stop()
                raise
            self._state = "running"
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._state != "running":
                self._state = "stopped"
                return
            self._state = "stopped"
            if self._timer is not None and self._timer is not threading.current_thread():
                self._timer.cancel()
            self._stop()

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _stop(self) -> None:
        """Release everything _start took, even when _start failed half-way."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _accepting(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), 1):
        return True
    return False


class _ProcessServer(LabServer):
    """A server binary in its own process group, with its output in a log file."""

    def __init__(
        self, address: str, port: int, lifetime: float, workdir: Path | None, name: str
    ) -> None:
        super().__init__(address, port, lifetime)
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"posture-tlslab-{name}-"))
            # Removed at stop(), or when a server that never ran is garbage-collected.
            self._cleanup: weakref.finalize[Any, Any] | None = weakref.finalize(
                self, shutil.rmtree, self.workdir, True
            )
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._cleanup = None
        self.log_path = self.workdir / f"{name}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def process_group(self) -> int | None:
        """The process group of the server (its children included), for checks after stop."""
        return self.process.pid if self.process is not None else None

    def log_tail(self, size: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace").strip()
        return ""

    def _spawn(self, argv: Sequence[str]) -> None:
        wrapper = shutil.which("timeout")
        # Should this Python process be killed outright, `timeout` still ends the server.
        bound = f"{int(self.lifetime) + HARD_STOP_MARGIN}s"
        prefix = [wrapper, "--kill-after=5", bound] if wrapper else []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: nginx workers go with the master
            )

    def _wait_ready(self, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise LabServerError(
                    f"{what} on {self.endpoint} exited (code {code}) before accepting "
                    f"connections; its log:\n{self.log_tail()}"
                )
            if _accepting(self.address, self.port):
                return
            time.sleep(0.05)
        raise LabServerError(
            f"{what} on {self.endpoint} did not accept connections within {READY_TIMEOUT:.0f}s; "
            f"its log:\n{self.log_tail()}"
        )

    def _kill_group(self) -> None:
        proc = self.process
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
        # Stragglers of the group (a worker whose master is gone) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _remove_workdir(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise LabServerError("openssl is not installed: apt-get install -y openssl")
    return found


def dh_params(group: str | Path, directory: Path) -> Path:
    """A PEM file of DH parameters: `group` is a name of DH_GROUPS or an existing file."""
    if isinstance(group, Path):
        if not group.is_file():
            raise LabServerError(f"no DH parameter file {group}")
        return group
    if group not in DH_GROUPS:
        raise ValueError(f"unknown DH group {group!r}: one of {', '.join(DH_GROUPS)} or a Path")
    out = directory / f"dh-{group}.pem"
    if not out.exists():
        argv = [_openssl(), "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt"]
        done = subprocess.run(
            [*argv, DH_GROUPS[group], "-out", str(out)],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise LabServerError(f"openssl genpkey for {group}: {done.stderr.decode()[-500:]}")
    return out


def _with_seclevel(ciphers: str | None, legacy: bool, default: str) -> str | None:
    """OpenSSL 3 refuses TLS 1.0/1.1 at security level 1 and above: lower it for legacy sets."""
    if not legacy:
        return ciphers
    base = ciphers if ciphers is not None else default
    return base if "@SECLEVEL" in base else f"{base}:@SECLEVEL=0"


def _check_protocols(protocols: Sequence[str]) -> tuple[Protocol, ...]:
    if not protocols:
        raise ValueError("at least one protocol is needed")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocols {unknown}: use {', '.join(PROTOCOLS)}")
    return tuple(p for p in PROTOCOLS if p in protocols)


# --------------------------------------------------------------------------------------------
# openssl s_server


class OpenSslServer(_ProcessServer):
    """`openssl s_server -www` with chosen protocols, suites, groups and certificate. It serves
    one connection at a time (queued ones wait): right for correctness tests and scanners."""

    def __init__(
        self,
        address: str,
        port: int,
        cert: Path,
        key: Path,
        *,
        protocols: Sequence[Protocol] = ("tls1_2", "tls1_3"),
        ciphers: str | None = None,
        ciphersuites: str | None = None,
        groups: str | None = None,
        server_preference: bool = False,
        dhparam: str | Path | None = None,
        chain_file: Path | None = None,
        extra_args: Sequence[str] = (),
        lifetime: float = DEFAULT_LIFETIME,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(address, port, lifetime, workdir, "s_server")
        self.cert, self.key, self.chain_file = Path(cert), Path(key), chain_file
        self.protocols = _check_protocols(protocols)
        legacy = any(p in ("tls1", "tls1_1") for p in self.protocols)
        self.ciphers = _with_seclevel(ciphers, legacy, "DEFAULT")
        self.ciphersuites = ciphersuites
        self.groups = groups
        self.server_preference = server_preference
        self.dhparam = dhparam
        self.extra_args = tuple(extra_args)

    def argv(self, dh_file: Path | None = None) -> list[str]:
        argv = [_openssl(), "s_server", "-accept", self.endpoint, "-www"]
        argv += ["-cert", str(self.cert), "-key", str(self.key)]
        if self.chain_file is not None:
            argv += ["-cert_chain", str(self.chain_file)]
        argv += [f"-no_{p}" for p in PROTOCOLS if p not in self.protocols]
        if self.ciphers is not None:
            argv += ["-cipher", self.ciphers]
        if self.ciphersuites is not None:
            argv += ["-ciphersuites", self.ciphersuites]
        if self.groups is not None:
            argv += ["-groups", self.groups]
        if self.server_preference:
            argv.append("-serverpref")
        if dh_file is not None:
            argv += ["-dhparam", str(dh_file)]
        return [*argv, *self.extra_args]

    def _start(self) -> None:
        for path in (self.cert, self.key, self.chain_file):
            if path is not None and not Path(path).is_file():
                raise LabServerError(f"s_server on {self.endpoint}: no such file {path}")
        dh_file = dh_params(self.dhparam, self.workdir) if self.dhparam is not None else None
        if self.chain_file is None:
            self.chain_file = self._split_chain()
        self._spawn(self.argv(dh_file))
        self._wait_ready("openssl s_server")

    def _split_chain(self) -> Path | None:
        """s_server sends only the first certificate of -cert; a full-chain file (as nginx
        takes) has its intermediates passed with -cert_chain instead."""
        marker = b"-----BEGIN CERTIFICATE-----"
        blocks = self.cert.read_bytes().split(marker)[1:]
        if len(blocks) < 2:
            return None
        chain = self.workdir / "s_server-chain.pem"
        chain.write_bytes(b"".join(marker + block for block in blocks[1:]))
        return chain

    def _stop(self) -> None:
        self._kill_group()
        self._remove_workdir()


# --------------------------------------------------------------------------------------------
# nginx


def nginx_binary() -> str | None:
    """nginx on PATH or in /usr/sbin (not on a user's PATH on Debian), else None."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def _directive_value(value: str | Path, what: str) -> str:
    text = str(value)
    # Inside double quotes only these could end the string or expand a variable.
    if any(c in text for c in '"\\$\n\r') or not text.strip():
        raise ValueError(f"{what} {text!r} cannot go into an nginx configuration")
    return f'"{text}"'


class NginxServer(_ProcessServer):
    """A private nginx (own prefix, pid, logs) serving `/` over TLS, with HSTS when asked."""

    def __init__(
        self,
        address: str,
        port: int,
        cert: Path,
        key: Path,
        *,
        protocols: str = "TLSv1.2 TLSv1.3",
        ciphers: str | None = None,
        ciphersuites: str | None = None,
        prefer_server_ciphers: bool = False,
        hsts: str | None = None,
        ecdh_curve: str | None = None,
        dhparam: str | Path | None = None,
        chain_file: Path | None = None,
        server_directives: Sequence[str] = (),
        lifetime: float = DEFAULT_LIFETIME,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(address, port, lifetime, workdir, "nginx")
        self.cert, self.key, self.chain_file = Path(cert), Path(key), chain_file
        names = protocols.split()
        allowed = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
        if not names or not set(names) <= allowed:
            raise ValueError(f"protocols {protocols!r}: a space-separated subset of {allowed}")
        self.protocols = protocols
        legacy = bool({"TLSv1", "TLSv1.1"} & set(names))
        self.ciphers = _with_seclevel(ciphers, legacy, "HIGH:!aNULL:!MD5")
        self.ciphersuites = ciphersuites
        self.prefer_server_ciphers = prefer_server_ciphers
        self.hsts = hsts
        self.ecdh_curve = ecdh_curve
        self.dhparam = dhparam
        self.server_directives = tuple(server_directives)
        self.prefix = self.workdir / f"nginx-{port}"
        self.conf_path = self.prefix / "nginx.conf"
        self.log_path = self.prefix / "error.log"

    @staticmethod
    def available() -> bool:
        return nginx_binary() is not None

    def config(self, dh_file: Path | None = None) -> str:
        q = _directive_value
        p = self.prefix
        cert = self.cert
        if self.chain_file is not None:
            cert = p / "fullchain.pem"
        listen = f"[{self.address}]:{self.port}" if ":" in self.address else self.endpoint
        server = [
            f"listen {listen} ssl;",
            "server_name _;",
            f"ssl_certificate {q(cert, 'certificate')};",
            f"ssl_certificate_key {q(self.key, 'key')};",
            f"ssl_protocols {self.protocols};",
            f"ssl_prefer_server_ciphers {'on' if self.prefer_server_ciphers else 'off'};",
            "ssl_session_cache off;",
        ]
        if self.ciphers is not None:
            server.append(f"ssl_ciphers {q(self.ciphers, 'cipher list')};")
        if self.ciphersuites is not None:
            server.append(f"ssl_conf_command Ciphersuites {q(self.ciphersuites, 'suites')};")
        if self.ecdh_curve is not None:
            server.append(f"ssl_ecdh_curve {q(self.ecdh_curve, 'curve list')};")
        if dh_file is not None:
            server.append(f"ssl_dhparam {q(dh_file, 'DH file')};")
        server += self.server_directives
        location = ["default_type text/plain;"]
        if self.hsts is not None:
            location.append(f"add_header Strict-Transport-Security {q(self.hsts, 'HSTS')} always;")
        location.append('return 200 "posture TLS lab\\n";')
        temp = " ".join(
            f"{name}_temp_path {q(p / name, 'path')};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        inner = "\n        ".join(location)
        body = "\n    ".join(server)
        return f"""daemon off;
master_process on;
worker_processes 1;
pid {q(p / "nginx.pid", "path")};
error_log {q(p / "error.log", "path")} info;
events {{ worker_connections 64; }}
http {{
    access_log {q(p / "access.log", "path")};
    {temp}
    server {{
    {body}
    location / {{
        {inner}
    }}
    }}
}}
"""

    def _base_argv(self) -> list[str]:
        binary = nginx_binary()
        if binary is None:
            raise LabServerError("nginx is not installed: apt-get install -y nginx-light")
        # -e: nginx opens its compiled-in error log before reading the configuration.
        return [binary, "-p", str(self.prefix), "-c", str(self.conf_path), "-e", str(self.log_path)]

    def _start(self) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        for path in (self.cert, self.key, self.chain_file):
            if path is not None and not Path(path).is_file():
                raise LabServerError(f"nginx on {self.endpoint}: no such file {path}")
        if self.chain_file is not None:
            pem = self.cert.read_bytes().rstrip(b"\n") + b"\n" + self.chain_file.read_bytes()
            (self.prefix / "fullchain.pem").write_bytes(pem)
        dh_file = dh_params(self.dhparam, self.prefix) if self.dhparam is not None else None
        self.conf_path.write_text(self.config(dh_file))
        check = subprocess.run(
            [*self._base_argv(), "-t"], capture_output=True, timeout=15, check=False
        )
        if check.returncode != 0:
            message = (check.stderr or check.stdout).decode("utf-8", "replace").strip()
            raise LabServerError(
                f"nginx -t rejected the configuration for {self.endpoint}:\n{message}"
            )
        self._spawn(self._base_argv())
        self._wait_ready("nginx")

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [*self._base_argv(), "-s", "quit"], capture_output=True, timeout=5, check=False
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_GRACE)
        self._kill_group()
        self._remove_workdir()


# --------------------------------------------------------------------------------------------
# Servers hosted on an asyncio loop in a thread (demo.lab.ServiceLoop).


def _server_context(
    cert: Path, key: Path, versions: Sequence[Protocol], ciphers: str | None
) -> ssl.SSLContext:
    chosen = _check_protocols(versions)
    ranks = [PROTOCOLS.index(p) for p in chosen]
    if ranks != list(range(ranks[0], ranks[-1] + 1)):
        raise ValueError(f"Python's ssl serves a contiguous range of versions, not {chosen}")
    by_name = {
        "tls1": ssl.TLSVersion.TLSv1,
        "tls1_1": ssl.TLSVersion.TLSv1_1,
        "tls1_2": ssl.TLSVersion.TLSv1_2,
        "tls1_3": ssl.TLSVersion.TLSv1_3,
    }
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are the point here
        context.minimum_version = by_name[chosen[0]]
        context.maximum_version = by_name[chosen[-1]]
    legacy = chosen[0] in ("tls1", "tls1_1")
    cipher_string = _with_seclevel(ciphers, legacy, "DEFAULT")
    if cipher_string is not None:
        try:
            context.set_ciphers(cipher_string)
        except ssl.SSLError as exc:
            raise ValueError(f"cipher string {cipher_string!r}: {exc}") from None
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise LabServerError(f"cannot load {cert} / {key}: {exc}") from None
    return context


class _LoopServer(LabServer):
    """A server whose connections are coroutines on a private demo.lab.ServiceLoop."""

    def __init__(
        self,
        address: str,
        port: int,
        lifetime: float,
        max_connections: int,
        connection_lifetime: float,
    ) -> None:
        super().__init__(address, port, lifetime)
        self.max_connections = max_connections
        self.connection_lifetime = connection_lifetime
        self._loop: ServiceLoop | None = None

    @abc.abstractmethod
    def _handler_factory(self) -> Handler: ...

    def _start(self) -> None:
        self._loop = ServiceLoop(
            max_connections=self.max_connections, connection_lifetime=self.connection_lifetime
        )
        try:
            self._loop.serve(self.address, self.port, self._handler_factory())
        except OSError as exc:
            raise LabServerError(f"cannot listen on {self.endpoint}: {exc}") from None
        if not _accepting(self.address, self.port):
            raise LabServerError(f"{self.endpoint} does not accept connections")

    def _stop(self) -> None:
        if self._loop is not None:
            self._loop.close()


@dataclass(frozen=True)
class TlsSession:
    """One TLS upgrade a StartTlsServer saw: what was negotiated, or why it failed."""

    version: str | None  # "TLSv1.3", ...
    cipher: str | None  # OpenSSL name
    error: str | None = None


async def _line(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes | None:
    """The next line, without its end; None on EOF or silence."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        return None
    return line.rstrip(b"\r\n") if line else None


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


MAX_COMMANDS = 20  # plain-text commands before STARTTLS; a client sending more is hung up on


class StartTlsServer(_LoopServer):
    """A plain-text SMTP, IMAP, POP3, FTP or PostgreSQL preamble as real servers speak it, then
    an upgrade to TLS with Python's ssl, one minimal answer, and close."""

    def __init__(
        self,
        address: str,
        port: int,
        protocol: StartTlsProtocol,
        cert: Path,
        key: Path,
        *,
        tls_versions: Sequence[Protocol] = ("tls1_2", "tls1_3"),
        ciphers: str | None = None,
        offer_starttls: bool = True,
        hostname: str = "mail.lab.test",
        max_connections: int = MAX_CONNECTIONS,
        connection_lifetime: float = CONNECTION_LIFETIME,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        super().__init__(address, port, lifetime, max_connections, connection_lifetime)
        if protocol not in _PREAMBLES:
            raise ValueError(f"unknown STARTTLS protocol {protocol!r}: {', '.join(_PREAMBLES)}")
        self.protocol = protocol
        self.context = _server_context(Path(cert), Path(key), tls_versions, ciphers)
        self.offer_starttls = offer_starttls
        self.hostname = hostname
        self._sessions: list[TlsSession] = []
        self._server_names: list[str | None] = []
        self.context.sni_callback = self._note_server_name

    def _note_server_name(self, _tls: object, name: str | None, _context: object) -> None:
        if len(self._server_names) < 10_000:
            self._server_names.append(name)

    @property
    def sessions(self) -> list[TlsSession]:
        """The TLS upgrades attempted so far, oldest first."""
        return list(self._sessions)

    @property
    def server_names(self) -> list[str | None]:
        """The SNI of every ClientHello received after STARTTLS (None: no SNI sent)."""
        return list(self._server_names)

    def _handler_factory(self) -> Handler:
        preamble = _PREAMBLES[self.protocol]
        goodbye = _GOODBYES[self.protocol]

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not await preamble(self, reader, writer):
                return
            try:
                await writer.start_tls(self.context, ssl_handshake_timeout=10)
            except (OSError, EOFError, TimeoutError) as exc:
                self._sessions.append(TlsSession(None, None, str(exc) or type(exc).__name__))
                return
            tls = writer.get_extra_info("ssl_object")
            cipher = tls.cipher() if tls is not None else None
            self._sessions.append(
                TlsSession(tls.version() if tls else None, cipher[0] if cipher else None)
            )
            await goodbye(self, reader, writer)

        return handler


async def _smtp(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    name = server.hostname.encode()
    await _send(writer, b"220 " + name + b" ESMTP Postfix (Debian/GNU)\r\n")
    for _ in range(MAX_COMMANDS):
        line = await _line(reader)
        if line is None:
            return False
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"QUIT":
            await _send(writer, b"221 2.0.0 Bye\r\n")
            return False
        if verb == b"EHLO":
            caps = [name, b"PIPELINING", b"SIZE 10240000", b"VRFY", b"ETRN"]
            if server.offer_starttls:
                caps.append(b"STARTTLS")
            caps += [b"ENHANCEDSTATUSCODES", b"8BITMIME", b"DSN", b"CHUNKING"]
            lines = [b"250-" + c for c in caps[:-1]] + [b"250 " + caps[-1]]
            await _send(writer, b"\r\n".join(lines) + b"\r\n")
        elif verb == b"HELO":
            await _send(writer, b"250 " + name + b"\r\n")
        elif verb == b"STARTTLS":
            if server.offer_starttls:
                await _send(writer, b"220 2.0.0 Ready to start TLS\r\n")
                return True
            await _send(writer, b"502 5.5.1 Error: command not implemented\r\n")
        elif verb in (b"NOOP", b"RSET"):
            await _send(writer, b"250 2.0.0 Ok\r\n")
        else:
            await _send(writer, b"502 5.5.2 Error: command not recognized\r\n")
    return False


async def _imap(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    caps = b"IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"
    if server.offer_starttls:
        caps += b" STARTTLS LOGINDISABLED"
    await _send(writer, b"* OK [CAPABILITY " + caps + b"] Dovecot (Debian) ready.\r\n")
    for _ in range(MAX_COMMANDS):
        line = await _line(reader)
        if line is None:
            return False
        parts = line.split(b" ", 2)
        if len(parts) < 2:
            await _send(writer, b"* BAD Error in IMAP command received by server.\r\n")
            continue
        tag, command = parts[0], parts[1].upper()
        if command == b"CAPABILITY":
            await _send(writer, b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK Pre-login\r\n")
        elif command == b"STARTTLS" and server.offer_starttls:
            await _send(writer, tag + b" OK Begin TLS negotiation now.\r\n")
            return True
        elif command == b"LOGOUT":
            await _send(writer, b"* BYE Logging out\r\n" + tag + b" OK Logout completed.\r\n")
            return False
        elif command == b"NOOP":
            await _send(writer, tag + b" OK NOOP completed.\r\n")
        else:
            await _send(writer, tag + b" BAD Error in IMAP command " + command[:32] + b"\r\n")
    return False


async def _pop3(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    await _send(writer, b"+OK Dovecot (Debian) ready.\r\n")
    for _ in range(MAX_COMMANDS):
        line = await _line(reader)
        if line is None:
            return False
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"QUIT":
            await _send(writer, b"+OK Logging out\r\n")
            return False
        if verb == b"CAPA":
            caps = [b"CAPA", b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING", b"AUTH-RESP-CODE"]
            if server.offer_starttls:
                caps.append(b"STLS")
            await _send(writer, b"+OK\r\n" + b"".join(c + b"\r\n" for c in caps) + b".\r\n")
        elif verb == b"STLS" and server.offer_starttls:
            await _send(writer, b"+OK Begin TLS negotiation now.\r\n")
            return True
        else:
            await _send(writer, b"-ERR Unknown command.\r\n")
    return False


async def _ftp(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    await _send(writer, b"220 (vsFTPd 3.0.3)\r\n")
    for _ in range(MAX_COMMANDS):
        line = await _line(reader)
        if line is None:
            return False
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"QUIT":
            await _send(writer, b"221 Goodbye.\r\n")
            return False
        if verb == b"FEAT":
            features = [b" EPRT", b" EPSV", b" MDTM", b" PASV", b" REST STREAM", b" SIZE"]
            if server.offer_starttls:
                features = [b" AUTH TLS", b" PBSZ", b" PROT", *features]
            await _send(writer, b"211-Features:\r\n" + b"\r\n".join(features) + b"\r\n211 End\r\n")
        elif (
            verb == b"AUTH"
            and server.offer_starttls
            and line[5:].strip().upper() in (b"TLS", b"SSL")
        ):
            await _send(writer, b"234 AUTH TLS OK.\r\n")
            return True
        else:  # vsftpd without TLS answers AUTH TLS the same way
            await _send(writer, b"530 Please login with USER and PASS.\r\n")
    return False


SSL_REQUEST = 80877103  # PostgreSQL's SSLRequest code
GSSENC_REQUEST = 80877104


async def _postgres(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    for _ in range(3):  # a GSSENCRequest may come before the SSLRequest
        head = await asyncio.wait_for(reader.readexactly(8), 10)
        length, code = struct.unpack(">II", head)
        if length != 8 or code not in (SSL_REQUEST, GSSENC_REQUEST):
            return False  # a startup packet in the clear: this lab wants TLS or nothing
        if code == SSL_REQUEST and server.offer_starttls:
            await _send(writer, b"S")
            return True
        await _send(writer, b"N")
    return False


async def _smtp_goodbye(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    line = await _line(reader, 5)
    if line is not None and line.upper().startswith(b"EHLO"):
        await _send(writer, b"250-" + server.hostname.encode() + b"\r\n250 8BITMIME\r\n")
        await _line(reader, 5)
    await _send(writer, b"221 2.0.0 Bye\r\n")


async def _imap_goodbye(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    line = await _line(reader, 5) or b""
    tag = line.split(b" ", 1)[0][:32] or b"*"
    await _send(writer, b"* BYE Lab closing\r\n" + tag + b" OK done\r\n")


async def _pop3_goodbye(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await _line(reader, 5)
    await _send(writer, b"+OK Logging out\r\n")


async def _ftp_goodbye(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await _line(reader, 5)
    await _send(writer, b"221 Goodbye.\r\n")


async def _postgres_goodbye(
    server: StartTlsServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(TimeoutError, EOFError):
        head = await asyncio.wait_for(reader.readexactly(4), 5)
        length = struct.unpack(">I", head)[0]
        if 8 <= length <= 10000:
            await asyncio.wait_for(reader.readexactly(length - 4), 5)
    fields = b"SFATAL\0C28000\0Mno pg_hba.conf entry for this lab\0\0"
    await _send(writer, b"E" + struct.pack(">I", len(fields) + 4) + fields)


_PREAMBLES = {
    "smtp": _smtp,
    "imap": _imap,
    "pop3": _pop3,
    "ftp": _ftp,
    "postgres": _postgres,
}
_GOODBYES = {
    "smtp": _smtp_goodbye,
    "imap": _imap_goodbye,
    "pop3": _pop3_goodbye,
    "ftp": _ftp_goodbye,
    "postgres": _postgres_goodbye,
}


# --------------------------------------------------------------------------------------------
# A handshake-level fake of what OpenSSL 3 can no longer serve (SSLv2, SSLv3, RC4, EXPORT,
# DEFLATE, heartbeat): it answers the ClientHello like an old server, and goes no further.

CONTENT_ALERT, CONTENT_HANDSHAKE, CONTENT_HEARTBEAT = 21, 22, 24
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_CERTIFICATE, HS_SERVER_HELLO_DONE = 1, 2, 11, 14
EXT_HEARTBEAT, EXT_RENEGOTIATION_INFO = 0x000F, 0xFF01
SCSV_RENEGOTIATION, SCSV_FALLBACK = 0x00FF, 0x5600
ALERT_HANDSHAKE_FAILURE, ALERT_PROTOCOL_VERSION, ALERT_INAPPROPRIATE_FALLBACK = 40, 70, 86
SSL2_VERSION = 0x0002
LEGACY_VERSIONS = frozenset({0x0300, 0x0301, 0x0302, 0x0303})
MAX_FRAGMENT = 16384  # plaintext bytes per record (RFC 5246 6.2.1)
MAX_RECORD = MAX_FRAGMENT + 2048  # largest record a peer may send
MAX_HELLO = 65536  # bytes of ClientHello this fake reassembles at most
MAX_RECORDS_AFTER_HELLO = 16
# SSLv2 cipher kinds (3 bytes): RC4-MD5, EXP-RC4-MD5, RC2-MD5, EXP-RC2-MD5, IDEA, DES, 3DES.
SSL2_CIPHER_KINDS = (0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0)
# Anonymous (DH_anon, ECDH_anon) suites: the server sends no Certificate for them.
ANON_SUITES = frozenset(
    {0x0017, 0x0018, 0x0019, 0x001A, 0x001B, 0x0034, 0x003A, 0x0046, 0x006C, 0x006D}
    | {0x0089, 0x009B, 0x00A6, 0x00A7, 0xC015, 0xC016, 0xC017, 0xC018, 0xC019}
)
_FAKE_MEMORY = b"GET /admin HTTP/1.1\r\nCookie: session=lab-fake-memory-not-a-secret\r\n\r\n"


class HelloError(ValueError):
    """The client's bytes are not a well-formed ClientHello (or record) this fake accepts."""


@dataclass(frozen=True)
class ClientHello:
    """What a client offered, parsed from a TLS/SSLv3 or SSLv2-format hello."""

    version: int  # client_version: 0x0002 for a real SSLv2 CLIENT-HELLO
    suites: tuple[int, ...]  # TLS suite numbers (SSLv2-format: the specs that map to one)
    compression: tuple[int, ...] = (0,)
    extensions: tuple[tuple[int, bytes], ...] = ()  # (type, body), in the client's order
    sslv2_format: bool = False
    sslv2_ciphers: tuple[int, ...] = ()  # 3-byte SSLv2 cipher kinds, SSLv2-format only
    record_version: int = 0  # of the record that carried it (0 for SSLv2 format)

    def extension(self, ext_type: int) -> bytes | None:
        return next((body for kind, body in self.extensions if kind == ext_type), None)


@dataclass(frozen=True)
class LegacyAnswer:
    """How the fake answered one ClientHello: a hello (version, suite) or a fatal alert."""

    version: int | None
    suite: int | None
    alert: int | None = None
    compression: int = 0
    extensions: tuple[int, ...] = ()
    sslv2_ciphers: tuple[int, ...] = ()  # kinds sent in an SSLv2 SERVER-HELLO


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise HelloError(f"truncated: wanted {size} bytes at offset {self.at}")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    @property
    def left(self) -> int:
        return len(self.data) - self.at


def parse_client_hello(body: bytes, record_version: int = 0) -> ClientHello:
    """A ClientHello handshake body (after type and length) into its offers."""
    cur = _Cursor(body)
    version = cur.number(2)
    cur.take(32)  # random
    if len(cur.vector(1)) > 32:
        raise HelloError("session id longer than 32 bytes")
    raw_suites = cur.vector(2)
    if len(raw_suites) % 2 or not raw_suites:
        raise HelloError("cipher suite list empty or of odd length")
    suites = struct.unpack(f">{len(raw_suites) // 2}H", raw_suites)
    compression = tuple(cur.vector(1))
    if not compression:
        raise HelloError("no compression methods")
    extensions: list[tuple[int, bytes]] = []
    if cur.left:
        block = _Cursor(cur.vector(2))
        while block.left:
            kind = block.number(2)
            extensions.append((kind, block.vector(2)))
    if cur.left:
        raise HelloError(f"{cur.left} bytes after the extensions")
    return ClientHello(version, suites, compression, tuple(extensions), False, (), record_version)


def parse_sslv2_client_hello(message: bytes) -> ClientHello:
    """An SSLv2-format CLIENT-HELLO (after the 2-byte record header): a real SSLv2 hello when
    its version is 0x0002, else an SSLv3/TLS hello in the old format (RFC 5246 E.2)."""
    cur = _Cursor(message)
    if cur.number(1) != 1:
        raise HelloError("SSLv2 record is not a CLIENT-HELLO")
    version = cur.number(2)
    specs_length, session_length, challenge_length = cur.number(2), cur.number(2), cur.number(2)
    if specs_length % 3 or not specs_length:
        raise HelloError("SSLv2 cipher specs empty or not a multiple of 3 bytes")
    if session_length not in (0, 16) or not 16 <= challenge_length <= 32:
        raise HelloError("SSLv2 session id or challenge of a wrong length")
    specs = cur.take(specs_length)
    cur.take(session_length + challenge_length)
    kinds = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3))
    suites = tuple(k for k in kinds if k <= 0xFFFF)  # 0x00XXXX: a TLS suite
    return ClientHello(version, suites, (0,), (), True, kinds, 0)


def _records(content_type: int, version: int, data: bytes) -> bytes:
    chunks = [data[i : i + MAX_FRAGMENT] for i in range(0, len(data), MAX_FRAGMENT)] or [b""]
    return b"".join(struct.pack(">BHH", content_type, version, len(c)) + c for c in chunks)


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def alert_record(version: int, description: int) -> bytes:
    return _records(CONTENT_ALERT, version, bytes([2, description]))


class LegacyTlsServer(_LoopServer):
    """Answers ClientHellos the way an old OpenSSL configured with these versions and suites
    would: ServerHello, Certificate, ServerHelloDone (or an alert), then waits for the client.
    It never completes a handshake and sends no ServerKeyExchange: use the real servers above
    for anything past the hello. A heartbeat request is answered when `heartbeat` is
    "vulnerable" (echoing as many bytes as claimed, padded with fake memory); "patched" answers
    only well-formed requests and drops over-long ones silently."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        versions: set[int] | frozenset[int],
        suites: Sequence[int],
        cert_der: bytes,
        chain_der: Sequence[bytes] = (),
        compression: bool = False,
        secure_renegotiation: bool = True,
        heartbeat: HeartbeatMode | None = None,
        sslv2: bool = False,
        sslv2_ciphers: Sequence[int] = SSL2_CIPHER_KINDS,
        server_preference: bool = True,
        fallback_scsv: bool = True,
        max_connections: int = MAX_CONNECTIONS,
        connection_lifetime: float = CONNECTION_LIFETIME,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        super().__init__(address, port, lifetime, max_connections, connection_lifetime)
        if not set(versions) <= LEGACY_VERSIONS:
            bad = sorted(hex(v) for v in set(versions) - LEGACY_VERSIONS)
            raise ValueError(f"versions {bad}: this fake speaks 0x0300-0x0303 (SSLv2: sslv2=True)")
        if not versions and not sslv2:
            raise ValueError("no versions: give at least one, or sslv2=True")
        if not suites or not all(0 <= s <= 0xFFFF for s in suites):
            raise ValueError("suites: one or more 16-bit suite numbers")
        if heartbeat not in (None, "vulnerable", "patched"):
            raise ValueError(f"heartbeat {heartbeat!r}: 'vulnerable', 'patched' or None")
        if not cert_der:
            raise ValueError("cert_der: the DER of the certificate to send")
        self.versions = frozenset(versions)
        self.suites = tuple(suites)
        self.certificates = (bytes(cert_der), *map(bytes, chain_der))
        self.compression = compression
        self.secure_renegotiation = secure_renegotiation
        self.heartbeat = heartbeat
        self.sslv2 = sslv2
        self.sslv2_ciphers = tuple(sslv2_ciphers)
        self.server_preference = server_preference
        self.fallback_scsv = fallback_scsv
        self._hellos: list[ClientHello] = []
        self._answers: list[LegacyAnswer] = []
        self._heartbeats = 0

    @property
    def hellos(self) -> list[ClientHello]:
        """The ClientHellos received so far, oldest first."""
        return list(self._hellos)

    @property
    def answers(self) -> list[LegacyAnswer]:
        return list(self._answers)

    @property
    def heartbeats_answered(self) -> int:
        return self._heartbeats

    # --- the decisions, without I/O ---

    def respond(self, hello: ClientHello) -> tuple[bytes, LegacyAnswer]:
        """The bytes this server sends in answer to `hello`, and what they say."""
        if hello.version == SSL2_VERSION:
            return self._sslv2_answer(hello)
        top = max(self.versions, default=0)
        alert_version = min(max(hello.version, 0x0300), 0x0303)
        if self.fallback_scsv and SCSV_FALLBACK in hello.suites and hello.version < top:
            return self._alert(alert_version, ALERT_INAPPROPRIATE_FALLBACK)
        usable = [v for v in self.versions if v <= hello.version]
        if not usable:
            return self._alert(alert_version, ALERT_PROTOCOL_VERSION)
        version = max(usable)
        offered = set(hello.suites)
        if self.server_preference:
            common = [s for s in self.suites if s in offered]
        else:
            mine = set(self.suites)
            common = [s for s in hello.suites if s in mine]
        if not common:
            return self._alert(version, ALERT_HANDSHAKE_FAILURE)
        suite = common[0]
        method = 1 if self.compression and 1 in hello.compression else 0
        extensions: list[tuple[int, bytes]] = []
        wants_reneg = (
            hello.extension(EXT_RENEGOTIATION_INFO) is not None or SCSV_RENEGOTIATION in offered
        )
        if self.secure_renegotiation and wants_reneg:
            extensions.append((EXT_RENEGOTIATION_INFO, b"\x00"))
        if self.heartbeat is not None and hello.extension(EXT_HEARTBEAT) is not None:
            extensions.append((EXT_HEARTBEAT, b"\x01"))  # peer_allowed_to_send
        random = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + secrets.token_bytes(28)
        body = struct.pack(">H", version) + random + b"\x20" + secrets.token_bytes(32)
        body += struct.pack(">HB", suite, method)
        if extensions:
            block = b"".join(struct.pack(">HH", k, len(v)) + v for k, v in extensions)
            body += struct.pack(">H", len(block)) + block
        flight = _handshake(HS_SERVER_HELLO, body)
        if suite not in ANON_SUITES:
            certs = b"".join(len(c).to_bytes(3, "big") + c for c in self.certificates)
            flight += _handshake(HS_CERTIFICATE, len(certs).to_bytes(3, "big") + certs)
        flight += _handshake(HS_SERVER_HELLO_DONE, b"")
        answer = LegacyAnswer(version, suite, None, method, tuple(k for k, _ in extensions))
        return _records(CONTENT_HANDSHAKE, version, flight), answer

    def _alert(self, version: int, description: int) -> tuple[bytes, LegacyAnswer]:
        return alert_record(version, description), LegacyAnswer(None, None, description)

    def _sslv2_answer(self, hello: ClientHello) -> tuple[bytes, LegacyAnswer]:
        common = [k for k in self.sslv2_ciphers if k in hello.sslv2_ciphers]
        if not common:
            message = b"\x00\x00\x01"  # ERROR: NO-CIPHER-ERROR
            answer = LegacyAnswer(None, None, 1)
        else:
            cert = self.certificates[0]
            specs = b"".join(k.to_bytes(3, "big") for k in common)
            message = b"\x04\x00\x01" + struct.pack(
                ">HHHH", SSL2_VERSION, len(cert), len(specs), 16
            )
            message += cert + specs + secrets.token_bytes(16)
            answer = LegacyAnswer(SSL2_VERSION, None, sslv2_ciphers=tuple(common))
        if len(message) > 0x7FFF:
            raise LabServerError("certificate too large for an SSLv2 record")
        return struct.pack(">H", 0x8000 | len(message)) + message, answer

    def heartbeat_response(self, payload: bytes, version: int) -> bytes | None:
        """The records answering one heartbeat record's payload, or None to stay silent."""
        if self.heartbeat is None or len(payload) < 3 or payload[0] != 1:
            return None
        claimed = struct.unpack(">H", payload[1:3])[0]
        data = payload[3:]
        if self.heartbeat == "patched":
            if 3 + claimed + 16 > len(payload):
                return None  # RFC 6520: silently discard
            echoed = data[:claimed]
        else:
            # As OpenSSL 1.0.1f: copy `claimed` bytes from the payload on, whatever follows it.
            memory = (_FAKE_MEMORY * (claimed // len(_FAKE_MEMORY) + 1))[: max(0, claimed)]
            echoed = (data + memory)[:claimed]
        message = b"\x02" + struct.pack(">H", claimed) + echoed + secrets.token_bytes(16)
        return _records(CONTENT_HEARTBEAT, version, message)

    # --- the connection ---

    def _handler_factory(self) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            hello = await _read_hello(reader)
            self._hellos.append(hello)
            if hello.version == SSL2_VERSION and not self.sslv2:
                return  # an SSLv3+ server hangs up on a real SSLv2 hello
            reply, answer = self.respond(hello)
            self._answers.append(answer)
            await _send(writer, reply)
            if answer.alert is not None or answer.version == SSL2_VERSION:
                return
            version = answer.version or 0x0300
            for _ in range(MAX_RECORDS_AFTER_HELLO):
                record = await _read_record(reader)
                if record is None:
                    return
                content_type, payload = record
                if content_type == CONTENT_HEARTBEAT:
                    response = self.heartbeat_response(payload, version)
                    if response is not None:
                        self._heartbeats += 1
                        await _send(writer, response)
                elif content_type == CONTENT_ALERT:
                    return
                else:
                    # The client goes on with the handshake, which this fake cannot finish.
                    await _send(writer, alert_record(version, ALERT_HANDSHAKE_FAILURE))
                    return

        return handler


async def _read_record(
    reader: asyncio.StreamReader, timeout: float = 10.0
) -> tuple[int, bytes] | None:
    """(content type, payload) of the next record; None on EOF or silence."""
    try:
        head = await asyncio.wait_for(reader.readexactly(5), timeout)
        content_type, _, length = struct.unpack(">BHH", head)
        if length > MAX_RECORD:
            raise HelloError(f"record of {length} bytes")
        return content_type, await asyncio.wait_for(reader.readexactly(length), timeout)
    except (TimeoutError, asyncio.IncompleteReadError):
        return None


async def _read_hello(reader: asyncio.StreamReader, timeout: float = 10.0) -> ClientHello:
    first = await asyncio.wait_for(reader.readexactly(2), timeout)
    if first[0] & 0x80:
        length = ((first[0] & 0x7F) << 8) | first[1]
        return parse_sslv2_client_hello(await asyncio.wait_for(reader.readexactly(length), timeout))
    if first[0] != CONTENT_HANDSHAKE:
        raise HelloError(f"first record of type {first[0]}, not a handshake")
    rest = await asyncio.wait_for(reader.readexactly(3), timeout)
    record_version = (first[1] << 8) | rest[0]
    length = struct.unpack(">H", rest[1:])[0]
    if length > MAX_RECORD:
        raise HelloError(f"record of {length} bytes")
    buffer = await asyncio.wait_for(reader.readexactly(length), timeout)
    for _ in range(MAX_HELLO // 1024):  # records of under 1 KiB each, at worst
        if len(buffer) >= 4:
            if buffer[0] != HS_CLIENT_HELLO:
                raise HelloError(f"handshake message {buffer[0]}, not a ClientHello")
            size = int.from_bytes(buffer[1:4], "big")
            if size > MAX_HELLO:
                raise HelloError(f"ClientHello of {size} bytes")
            if len(buffer) >= 4 + size:
                return parse_client_hello(buffer[4 : 4 + size], record_version)
        record = await _read_record(reader, timeout)
        if record is None or record[0] != CONTENT_HANDSHAKE:
            raise HelloError("ClientHello cut short")
        buffer += record[1]
    raise HelloError("ClientHello spread over too many records")


# --------------------------------------------------------------------------------------------
# The showcase: `python -m demo.tlslab`, and `make demo`.

# Mozilla's "intermediate" TLS 1.2 suites (server side, OpenSSL names).
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
DEFAULT_BASE = "127.0.82"


@dataclass(frozen=True)
class ShowcaseEndpoint:
    name: str
    address: str
    port: int
    server: str  # nginx, s_server, legacy-fake, starttls
    starttls: str | None
    description: str


def _pem_to_der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


@contextlib.contextmanager
def showcase(
    base: str,
    certs: dict[str, tuple[Path, Path]],
    *,
    lifetime: float,
    https_port: int = 443,
    smtp_port: int = 25,
) -> Iterator[list[ShowcaseEndpoint]]:
    """Five endpoints on base.1-5: good nginx (s_server when nginx is missing), an expired
    certificate, TLS 1.0 only, the SSLv2/SSLv3/RC4/Heartbleed fake, and STARTTLS SMTP."""
    good_cert, good_key = certs["good"]
    expired_cert, expired_key = certs["expired"]
    endpoints: list[ShowcaseEndpoint] = []
    with contextlib.ExitStack() as stack:

        def up(server: LabServer, kind: str, name: str, starttls: str | None, text: str) -> None:
            stack.enter_context(server)
            endpoints.append(
                ShowcaseEndpoint(name, server.address, server.port, kind, starttls, text)
            )

        first = f"{base}.1"
        if NginxServer.available():
            good: LabServer = NginxServer(
                first,
                https_port,
                good_cert,
                good_key,
                ciphers=MOZILLA_INTERMEDIATE_CIPHERS,
                dhparam="ffdhe2048",
                hsts="max-age=31536000; includeSubDomains",
                lifetime=lifetime,
            )
            kind, text = "nginx", "Mozilla intermediate, TLS 1.2 and 1.3, HSTS"
        else:
            good = OpenSslServer(
                first,
                https_port,
                good_cert,
                good_key,
                ciphers=MOZILLA_INTERMEDIATE_CIPHERS,
                dhparam="ffdhe2048",
                lifetime=lifetime,
            )
            kind, text = "s_server", "Mozilla intermediate, TLS 1.2 and 1.3 (no nginx here)"
        up(good, kind, "good", None, text)
        expired = OpenSslServer(
            f"{base}.2", https_port, expired_cert, expired_key, lifetime=lifetime
        )
        up(expired, "s_server", "expired", None, "certificate expired")
        tls10 = OpenSslServer(
            f"{base}.3", https_port, good_cert, good_key, protocols=("tls1",), lifetime=lifetime
        )
        up(tls10, "s_server", "tls1.0-only", None, "TLS 1.0 only")
        legacy = LegacyTlsServer(
            f"{base}.4",
            https_port,
            versions={0x0300, 0x0301},
            suites=(0x0005, 0x0004, 0x000A, 0x0003),  # RC4-SHA, RC4-MD5, 3DES, EXPORT RC4
            cert_der=_pem_to_der(good_cert),
            compression=True,
            secure_renegotiation=False,
            heartbeat="vulnerable",
            sslv2=True,
            lifetime=lifetime,
        )
        up(legacy, "legacy-fake", "legacy", None, "SSLv2, SSLv3, RC4, EXPORT, DEFLATE, Heartbleed")
        smtp = StartTlsServer(
            f"{base}.5", smtp_port, "smtp", good_cert, good_key, lifetime=lifetime
        )
        up(smtp, "starttls", "smtp", "smtp", "SMTP with STARTTLS, TLS 1.2 and 1.3")
        yield endpoints


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default=DEFAULT_BASE, help="address prefix: hosts .1 to .5")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long")
    root = os.geteuid() == 0
    parser.add_argument("--https-port", type=int, default=443 if root else 8443)
    parser.add_argument("--smtp-port", type=int, default=25 if root else 2525)
    args = parser.parse_args(argv)
    try:
        network = ipaddress.ip_network(f"{args.base}.0/24")
    except ValueError:
        parser.error(f"--base {args.base!r}: three octets, e.g. 127.0.82")
    if not network.is_loopback:
        parser.error("--base must be a loopback prefix (127.x.y)")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")

    from demo.pki import standard_set

    with tempfile.TemporaryDirectory(prefix="posture-tlslab-") as tmp:
        certs = standard_set(Path(tmp))
        try:
            with showcase(
                args.base,
                certs,
                lifetime=args.seconds + 5,
                https_port=args.https_port,
                smtp_port=args.smtp_port,
            ) as endpoints:
                document = {
                    "ca": str(Path(tmp) / "ca.pem"),
                    "seconds": args.seconds,
                    "endpoints": [dataclasses.asdict(ep) for ep in endpoints],
                }
                print(json.dumps(document, indent=2), flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    time.sleep(args.seconds)
        except LabServerError as exc:
            print(f"tlslab: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the servers on kill too
    sys.exit(main())
