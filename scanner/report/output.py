"""Writing a rendered report to a file atomically: readers never see half a report."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from scanner.errors import ConfigError


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write `text` (UTF-8; bytes as given) to a temporary file beside `path`, then rename it
    over `path`.

    The file is readable by its owner only (mkstemp's 0600): findings are sensitive.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write the report there ({exc.strerror}); choose another -o path"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8") if isinstance(text, str) else text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"{path}: cannot write the report ({exc.strerror}); choose another -o path"
            ) from None
        raise
