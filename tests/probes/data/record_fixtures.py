"""Re-record the nmap XML fixtures of tests/probes/data from a live lab (root and nmap needed).

    .venv/bin/python tests/probes/data/record_fixtures.py

Uses 127.0.55.x only, and only the ports the lab (or this script) serves there.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from demo.lab import Lab, ServiceLoop  # noqa: E402
from scanner.probes.portscan import build_nmap_command, find_nmap, parse_ports  # noqa: E402

DATA = Path(__file__).resolve().parent
BASE = "127.0.55"
LAB_PORTS = "21,22,23,2375,2379,6000,10250"
SILENT = ("127.0.55.30", 7000)
EMPTY = "127.0.55.31"


def record(targets: list[str], ports: str, out: Path, host_timeout: str) -> None:
    cmd = build_nmap_command(
        find_nmap(),
        [SimpleNamespace(address=a, hostname=None) for a in targets],
        parse_ports(ports),
        host_timeout=host_timeout,
        xml_path=out,
        privileged=True,
        no_ping=False,
        version_intensity=None,
    )
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(25)  # accepts, never answers: nmap's service scan waits on it


def main() -> None:
    with Lab(BASE, hosts=["legacy-unix", "container", "hardened"]) as lab:
        record(lab.addresses, LAB_PORTS, DATA / "lab.xml", "2m")
    loop = ServiceLoop()
    try:
        loop.serve(*SILENT, silent)
        record([SILENT[0], EMPTY], str(SILENT[1]), DATA / "timedout.xml", "1s")
    finally:
        loop.close()


if __name__ == "__main__":
    main()
