"""posture scan against plain `nmap -sV`, side by side, on the same hosts and ports.

Runs inside a network namespace of its own (root and `ip netns` needed) so that a full
65535-port scan touches only the services this benchmark started: nothing else listens there.
Scenarios: a full 65535-port scan of one lab host, and a sweep of 256 hosts. Prints a table of
median times and the ratio posture / nmap. Goal: posture's overhead at most 15 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.run import posture_argv  # noqa: E402

SWEEP_BASE = "127.0.91"
SWEEP_PORTS = "22,80,443"


@contextlib.contextmanager
def sweep_hosts(count: int) -> Iterator[list[str]]:
    """`count` hosts on 127.0.91.x, each with an SSH banner on 22 and a web server on 80."""
    addresses = [f"{SWEEP_BASE}.{i}" for i in range(count)]
    loop = asyncio.new_event_loop()
    servers: list[asyncio.base_events.Server] = []

    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(256), 10)
        writer.close()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(4096), 10)
        body = b"<html><body>It works!</body></html>"
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: Apache/2.4.57 (Debian)\r\nContent-Type: text/html\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        writer.close()

    async def start() -> None:
        for address in addresses:
            servers.append(await asyncio.start_server(ssh, address, 22))
            servers.append(await asyncio.start_server(http, address, 80))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield addresses
    finally:

        async def stop() -> None:
            for server in servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def nmap_command(targets: list[str], ports: str, xml: Path) -> list[str]:
    """The plain nmap a user would run: the same scan type and timeouts posture uses."""
    from scanner.probes.portscan import build_nmap_command, find_nmap, parse_ports
    from scanner.targets import Target

    spec = parse_ports(ports)
    return build_nmap_command(
        find_nmap(),
        [Target(a) for a in targets],
        spec,
        host_timeout="5m",
        xml_path=xml,
        privileged=os.geteuid() == 0,
        no_ping=False,
        version_intensity=None,
    )


def open_ports_in_xml(xml: Path) -> int:
    import defusedxml.ElementTree as ET

    tree = ET.parse(xml)
    return sum(1 for p in tree.iter("port") if p.find("state").get("state") == "open")  # type: ignore[union-attr]


def time_nmap(targets: list[str], ports: str, workdir: Path) -> tuple[float, int]:
    xml = workdir / "nmap.xml"
    # A user's plain nmap: no progress lines (posture asks for them every second).
    cmd = nmap_command(targets, ports, xml)
    at = cmd.index("--stats-every")
    del cmd[at : at + 2]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    return elapsed, open_ports_in_xml(xml)


def time_posture(spec: str, ports: str, workdir: Path, extra: list[str]) -> tuple[float, int]:
    db = workdir / "posture.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [*posture_argv(), "scan", spec, "--ports", ports, "--db", str(db), "--json", *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        (services,) = conn.execute("SELECT count(*) FROM services WHERE state = 'open'").fetchone()
    json.loads(proc.stdout)
    return elapsed, int(services)


def measure(
    name: str, targets: list[str], spec: str, ports: str, repeat: int, extra: list[str]
) -> dict[str, object]:
    nmap_times: list[float] = []
    posture_times: list[float] = []
    found: set[tuple[str, int]] = set()
    with tempfile.TemporaryDirectory(prefix="posture-bench-") as tmp:
        work = Path(tmp)
        for i in range(repeat):
            # Alternate the order so that neither tool always runs on a warm cache.
            order = ("nmap", "posture") if i % 2 == 0 else ("posture", "nmap")
            for tool in order:
                if tool == "nmap":
                    t, n = time_nmap(targets, ports, work)
                    nmap_times.append(t)
                else:
                    t, n = time_posture(spec, ports, work, extra)
                    posture_times.append(t)
                found.add((tool, n))
    n_med = statistics.median(nmap_times)
    p_med = statistics.median(posture_times)
    return {
        "scenario": name,
        "nmap_s": n_med,
        "posture_s": p_med,
        "ratio": p_med / n_med,
        "open_ports": sorted(found),
        "runs": repeat,
    }


def inner(args: argparse.Namespace) -> int:
    from demo.lab import Lab

    rows = []
    with Lab("127.0.90") as lab:
        host = lab.addresses[0]
        rows.append(measure("full 65535 ports, 1 host", [host], host, "all", args.repeat, []))
    with sweep_hosts(args.hosts) as addresses:
        spec = f"{SWEEP_BASE}.0/24" if args.hosts == 256 else f"{addresses[0]}-{args.hosts - 1}"
        rows.append(
            measure(
                f"{args.hosts}-host sweep, ports {SWEEP_PORTS}",
                addresses,
                spec,
                SWEEP_PORTS,
                args.repeat,
                [],
            )
        )
    print(json.dumps(rows))
    return 0


def outer(args: argparse.Namespace) -> int:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print(
            "bench/portscan.py needs root and iproute2 (`ip netns`): it runs in a namespace of "
            "its own so that a full port scan touches only its own services"
        )
        return 2
    ns = f"posture-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        proc = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                __file__,
                "--inner",
                "--repeat",
                str(args.repeat),
                "--hosts",
                str(args.hosts),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    nmap_version = subprocess.run(["nmap", "--version"], capture_output=True, text=True).stdout
    print(
        f"posture scan vs plain nmap -sV ({nmap_version.splitlines()[0]}), "
        f"median of {args.repeat} runs each, in a private network namespace"
    )
    header = f"{'scenario':<40} {'nmap s':>8} {'posture s':>10} {'ratio':>7} {'overhead':>9}"
    print(f"{header}  open ports")
    for r in rows:
        overhead = (r["ratio"] - 1) * 100
        found = ", ".join(f"{tool}={n}" for tool, n in r["open_ports"])
        print(
            f"{r['scenario']:<40} {r['nmap_s']:>8.2f} {r['posture_s']:>10.2f} "
            f"{r['ratio']:>7.2f} {overhead:>+8.1f}%  {found}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=256, choices=range(1, 257), metavar="N")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    raise SystemExit(main())
