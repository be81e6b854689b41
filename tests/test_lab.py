"""demo.lab: the lab starts real services where it says, speaks their protocols, and stops.

Addresses: 127.0.52.x for the labs started here, 127.0.56.x for `python -m demo.lab`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.lab import LAB_HOSTS, Lab, LabEndpoint, ServiceLoop
from scanner.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def exchange(address: str, port: int, send: bytes = b"", size: int = 4096) -> bytes:
    """Connect, optionally send, return the first bytes the server answers (bounded)."""
    with socket.create_connection((address, port), 5) as sock:
        sock.settimeout(5)
        if send:
            sock.sendall(send)
        return sock.recv(size)


def http_get(address: str, port: int, path: str, *, tls: bool = False) -> bytes:
    with socket.create_connection((address, port), 5) as raw:
        raw.settimeout(5)
        sock: socket.socket = raw
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(raw)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: lab\r\n\r\n".encode())
        data = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def refuses(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), 2).close()
    except ConnectionRefusedError:
        return True
    return False


# --- configuration errors ---------------------------------------------------------------------


def test_unknown_host_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown lab host\(s\) mainframe: choose from"):
        Lab("127.0.52", hosts=["cache", "mainframe"])


@pytest.mark.parametrize("base", ["10.0.0", "127.0", "lab", "127.0.52.1"])
def test_base_must_be_a_loopback_slash_24(base: str) -> None:
    with pytest.raises(ConfigError, match="lab base"):
        Lab(base)


def test_low_ports_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    lab = Lab("127.0.52", hosts=["legacy-unix"])
    with pytest.raises(ConfigError, match=r"ports below 1024 \(21, 23, 512, 513, 514\).*root"):
        lab.start()
    assert lab.endpoints == [] and refuses("127.0.52.10", 6000)


def test_busy_port_fails_the_start_and_stops_the_rest() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.52.12", 2379))
        squatter.listen(1)
        lab = Lab("127.0.52", hosts=["container"])
        with pytest.raises(ConfigError, match=r"cannot serve etcd on 127\.0\.52\.12:2379"):
            lab.start()
    assert refuses("127.0.52.12", 2375)  # docker had started before etcd failed: stopped


# --- a lab that needs no root -----------------------------------------------------------------


def test_cache_and_container_hosts() -> None:
    lab = Lab("127.0.52", hosts=["cache", "container"])
    with lab:
        cache, container = lab.address_of("cache"), lab.address_of("container")
        assert lab.addresses == [cache, container] == ["127.0.52.11", "127.0.52.12"]
        names = {ep.name for ep in lab.endpoints}
        assert {"docker", "etcd", "kubelet"} <= names
        assert names <= {"docker", "etcd", "kubelet", "redis", "memcached"}
        assert lab.port_list() == ",".join(str(ep.port) for ep in sorted_by_port(lab.endpoints))
        for ep in lab.endpoints:
            assert ep.proto == "tcp"
            assert ep.kind == ("real" if ep.name in ("redis", "memcached") else "emulated")
            assert not refuses(ep.address, ep.port), ep
        if "redis" in names:
            assert b"redis_version:" in exchange(cache, 6379, b"INFO server\r\n")
        if "memcached" in names:
            assert exchange(cache, 11211, b"version\r\n").startswith(b"VERSION ")
        version = http_get(container, 2375, "/version")
        assert version.startswith(b"HTTP/1.0 200 OK\r\nApi-Version: 1.43\r\n")
        assert b"Server: Docker/24.0.7 (linux)" in version and b'"ApiVersion":"1.43"' in version
        assert b'"etcdserver":"3.5.9"' in http_get(container, 2379, "/version")
        kubelet = http_get(container, 10250, "/pods", tls=True)
        assert kubelet.startswith(b"HTTP/1.0 403 Forbidden") and b"system:anonymous" in kubelet
        with pytest.raises(KeyError):
            lab.address_of("windows")
    assert lab.endpoints == []
    for ep_port in (2375, 2379, 10250):
        assert refuses("127.0.52.12", ep_port)


def sorted_by_port(endpoints: list[LabEndpoint]) -> list[LabEndpoint]:
    return sorted(endpoints, key=lambda ep: ep.port)


def test_lab_stops_itself_when_its_lifetime_is_over() -> None:
    lab = Lab("127.0.52", hosts=["container"], lifetime=0.5).start()
    try:
        for _ in range(100):  # bounded wait for the lab's own timer
            if refuses("127.0.52.12", 2375):
                break
            time.sleep(0.1)
        assert refuses("127.0.52.12", 2375)
    finally:
        lab.stop()  # a second stop is harmless


def test_connections_per_service_are_bounded() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)

    loop = ServiceLoop(max_connections=2)
    try:
        loop.serve("127.0.52.20", 7100, hold)
        with contextlib.ExitStack() as stack:
            for _ in range(2):
                stack.enter_context(socket.create_connection(("127.0.52.20", 7100), 5))
            time.sleep(0.2)  # let the loop accept both before the third arrives
            third = stack.enter_context(socket.create_connection(("127.0.52.20", 7100), 5))
            third.settimeout(5)
            assert third.recv(10) == b""  # hung up on at once
    finally:
        loop.close()


# --- the whole lab, protocol by protocol --------------------------------------------------------


@pytest.mark.root
def test_full_lab_speaks_each_protocol() -> None:
    with Lab("127.0.52") as lab:
        assert len(lab.addresses) == len(LAB_HOSTS)
        at: dict[str, tuple[str, int]] = {}
        for ep in lab.endpoints:  # the first host serving each protocol
            at.setdefault(ep.name, (ep.address, ep.port))
        assert exchange(*at["ftp"]).startswith(b"220 pyftpdlib")
        assert exchange(*at["telnet"]) == b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"
        assert exchange(*at["rsh"], b"0\0root\0root\0id\0") == b"\x01Permission denied.\n"
        x11 = exchange(*at["x11"], b"l\0\x0b\0\0\0\0\0\0\0\0\0")
        assert x11[0] == 1 and b"The X.Org Foundation" in x11
        assert exchange(*at["ssh"]) == b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
        assert exchange(*at["vnc"]) == b"RFB 003.008\n"
        rdp = exchange(*at["rdp"], b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00")
        assert rdp[:2] == b"\x03\x00" and rdp[5] == 0xD0
        assert exchange(*at["netbios-ssn"], b"\x81\0\0\x44" + b"\x20" * 68) == b"\x83\0\0\x01\x82"
        greeting = exchange(*at["mysql"])
        assert greeting[4] == 10 and greeting[5:11] == b"8.0.36"
        ssl_request = struct.pack(">II", 8, 80877103)
        assert exchange(*at["postgresql"], ssl_request) == b"N"
        es = http_get(*at["elasticsearch"], "/")
        assert b'"number" : "7.10.2"' in es and b"You Know, for Search" in es
        assert exchange(*at["smb"], b"\0\0\0\x04junk") == b""
        # The unpatched host: known-vulnerable versions, as their daemons announce themselves.
        unpatched = lab.address_of("unpatched")
        assert exchange(unpatched, 21) == b"220 (vsFTPd 2.3.4)\r\n"
        assert exchange(unpatched, 22) == b"SSH-2.0-OpenSSH_7.2p2 Ubuntu-4ubuntu2.8\r\n"
        assert exchange(unpatched, 25).startswith(b"220 mail.unpatched.test ESMTP Exim 4.89 ")
        assert b"\r\nServer: Apache/2.4.49 (Unix)\r\n" in http_get(unpatched, 80, "/")


# --- python -m demo.lab ----------------------------------------------------------------------


def test_module_runs_the_lab_for_the_given_time() -> None:
    args = ["--base", "127.0.56", "--hosts", "container", "--seconds", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "demo.lab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "127.0.56.12:2375 /tcp  docker (emulated)" in proc.stdout
    assert "--ports 2375,2379,10250" in proc.stdout and "lab stopped" in proc.stdout
    assert refuses("127.0.56.12", 2375)


def test_module_reports_configuration_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "demo.lab", "--hosts", "nope", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2 and "unknown lab host(s) nope" in proc.stderr
