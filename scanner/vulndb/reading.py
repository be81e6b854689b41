"""Feed files read into row batches (scanner/vulndb/rows.py), a big file in a helper process:
parsing JSON and building rows is most of an import's work, and the importing process writes
the previous batch to SQLite meanwhile, so an import uses two cores.

The helper is `python -m scanner.vulndb.reading FILE SIZE`, a fresh interpreter whatever the
importing process is running (threads, a REPL), sending marshal-encoded messages (plain data:
marshal, unlike pickle, runs nothing while decoding) through a pipe. A
thread of the importing process takes them off the pipe as they come, up to QUEUED batches
ahead, so that the helper never waits for SQLite; memory stays bounded by those batches.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

from scanner.vulndb.importers import VulnDbError, detect_format, read
from scanner.vulndb.rows import Batch, batches

HELPER_FROM_BYTES = 16 * 1024 * 1024  # smaller files are read in process: starting costs ~0.2 s
QUEUED = 3  # batches read ahead of the writer, at most
_FIELDS = [f.name for f in fields(Batch)]
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the scanner package


def read_batches(path: Path, size: int) -> tuple[str, Iterator[Batch]]:
    """The format of `path` and its records as batches of at most `size`; reading errors
    surface as VulnDbError, naming the file and the record, wherever the file is read."""
    if sys.executable and path.is_file() and path.stat().st_size >= HELPER_FROM_BYTES:
        return detect_format(path), _from_helper(path, size)
    kind, records = read(path)
    return kind, batches(records, size)


def _from_helper(path: Path, size: int) -> Iterator[Batch]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    helper = subprocess.Popen(
        [sys.executable, "-m", "scanner.vulndb.reading", str(path), str(size)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=environment,
    )
    assert helper.stdout is not None
    messages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUED)
    taker = threading.Thread(target=_take, args=(helper.stdout, messages), daemon=True)
    taker.start()
    try:
        while True:
            kind, payload = messages.get()
            if kind == "batch":
                yield Batch(*payload)
            elif kind == "done":
                return
            elif kind == "stopped":
                code = helper.wait()
                raise VulnDbError(f"{path}: the process reading it stopped (exit code {code})")
            else:
                raise VulnDbError(str(payload))
    finally:
        if helper.poll() is None:
            helper.kill()  # the import failed or stopped: nothing more to read
        helper.wait()
        helper.stdout.close()  # ends the taker, if it is still reading
        while taker.is_alive():  # or if it waits to hand over a batch
            with contextlib.suppress(queue.Empty):
                messages.get(timeout=0.1)


def _take(pipe: IO[bytes], messages: queue.Queue[tuple[str, Any]]) -> None:
    """In a thread: the helper's messages onto the queue, until its last one."""
    kind = "batch"
    while kind == "batch":
        try:
            head = pipe.read(8)
            body = pipe.read(int.from_bytes(head, "big")) if len(head) == 8 else b""
            message = marshal.loads(body)  # noqa: S302 - our own helper's data, no objects
        except (EOFError, ValueError, TypeError, OSError):
            message = ("stopped", None)
        kind = message[0]
        messages.put(message)


def _produce(path: Path, size: int, out: IO[bytes]) -> None:
    """In the helper: every batch of the file, then "done"; or the error that stopped it. Each
    message is its length, then its marshal encoding: read whole, it is decoded at C speed."""

    def send(message: tuple[str, Any]) -> None:
        data = marshal.dumps(message)
        out.write(len(data).to_bytes(8, "big") + data)
        out.flush()

    try:
        for batch in batches(read(path)[1], size):
            send(("batch", tuple(getattr(batch, name) for name in _FIELDS)))
    except VulnDbError as exc:
        send(("error", str(exc)))
    except Exception as exc:  # whatever it is, the importer must hear of it
        send(("error", f"{path}: reading failed ({type(exc).__name__}: {exc})"))
    else:
        send(("done", None))


def _main(argv: list[str]) -> int:
    _produce(Path(argv[0]), int(argv[1]), sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))


__all__ = ["HELPER_FROM_BYTES", "read_batches"]
