"""One local process for a connector: an argument list, stdin, a hard timeout that kills the
process group, and output bounded in size."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

from scanner.respond.connectors.interface import OUTPUT_LIMIT
from scanner.respond.errors import ConnectorError


def run_process(
    full: Sequence[str], *, input: bytes | None, timeout: float, host: str, what: str
) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of `full`; ConnectorError when it cannot start or outlasts
    `timeout` (then it and its children are killed: it runs in a session of its own)."""
    try:
        proc = subprocess.Popen(
            list(full),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ConnectorError(f"{host}: cannot start {full[0]}: {exc.strerror}") from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ConnectorError(
            f"{host}: {what} did not finish within {timeout:g}s and was killed"
        ) from None
    return proc.returncode, out[:OUTPUT_LIMIT], err[:OUTPUT_LIMIT]
