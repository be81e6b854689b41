"""A separate process writing to a store, for the crash and concurrency tests.

store_worker.py crash DB SCAN_ID
    stores one chunk, then dies (os._exit) in the middle of storing the next one.
store_worker.py write DB SCAN_ID INDEX CHUNKS READY_FILE GO_FILE
    says it is ready, waits for the go file, then stores CHUNKS chunks of two hosts each.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from scanner.model import Confidence, Finding, Host, HostState, Service, Severity
from scanner.store import Store

CRASH_EXIT = 17
GO_WAIT = 60.0  # seconds a writer waits for the go file before giving up


class DiesWhenStored:
    """Evidence whose serialisation kills the process: a crash inside the write transaction."""

    def __str__(self) -> str:
        os._exit(CRASH_EXIT)


def chunk(addresses: list[str], evidence: object = "ok") -> tuple[list[Host], list[Finding]]:
    hosts = [
        Host(a, HostState.UP, services=(Service(port=21, proto="tcp", state="open"),))
        for a in addresses
    ]
    findings = [
        Finding(
            rule_id="ftp.anonymous",
            severity=Severity.HIGH,
            confidence=Confidence.CERTAIN,
            title="Anonymous FTP login allowed",
            host=a,
            port=21,
            proto="tcp",
            evidence={"detail": evidence},
        )
        for a in addresses
    ]
    return hosts, findings


def crash(db: str, scan_id: int) -> None:
    with Store(db) as store:
        undetermined = [("127.0.0.1", "tcp", 22, "ssh.weak")]
        store.record_chunk(
            scan_id, *chunk(["127.0.0.1", "127.0.0.2"]), {"tcp": "21-22"}, undetermined
        )
        # Hosts and undetermined rules are written before the findings that kill the process.
        undetermined = [("127.0.0.3", "tcp", 22, "ssh.weak")]
        store.record_chunk(
            scan_id,
            *chunk(["127.0.0.3", "127.0.0.4"], DiesWhenStored()),
            {"tcp": "21-22"},
            undetermined,
        )
    raise SystemExit("the second chunk was stored: the crash did not happen")


def write(db: str, scan_id: int, index: int, chunks: int, ready: Path, go: Path) -> None:
    with Store(db) as store:
        ready.touch()
        deadline = time.monotonic() + GO_WAIT
        while not go.exists():
            if time.monotonic() > deadline:
                raise SystemExit("no go file: the test did not start the writers")
            time.sleep(0.01)
        for n in range(chunks):
            addresses = [f"127.{index}.{n}.1", f"127.{index}.{n}.2"]
            store.record_chunk(scan_id, *chunk(addresses), {"tcp": "21"})


def main(argv: list[str]) -> None:
    mode, db, scan_id = argv[0], argv[1], int(argv[2])
    if mode == "crash":
        crash(db, scan_id)
    elif mode == "write":
        write(db, scan_id, int(argv[3]), int(argv[4]), Path(argv[5]), Path(argv[6]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
