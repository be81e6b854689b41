"""The one interface every connector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes kept of a command's stdout and of its stderr


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Connector(ABC):
    """Runs argument lists on one target host.

    `run` never goes through a local shell; the ssh connector quotes every argument for the
    remote shell, so an argument is always one argument on the target too. A command that does
    not finish within `timeout` seconds is killed and raises ConnectorError; a non-zero exit is
    returned, not raised (the action decides what it means).
    """

    kind: str  # "local" or "ssh"
    host: str  # the address or name the connector reaches, as shown in plans and audit entries

    @abstractmethod
    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
    ) -> CommandResult: ...

    @abstractmethod
    def describe(self, argv: Sequence[str]) -> str:
        """The command as a responder would type it for this target, for plans and audit
        (e.g. `ssh -p 22 root@10.0.0.5 -- nft list tables`); argument-quoted, secret-free."""

    def read_file(self, path: str, *, timeout: float = 30.0) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        result = self.run(["cat", "--", path], timeout=timeout)
        return result.stdout if result.ok else None

    def write_file(
        self, path: str, data: bytes, *, mode: int = 0o600, timeout: float = 30.0
    ) -> None:
        """Replaces the file atomically (temp file in the same folder, chmod, rename)."""
        from scanner.respond.errors import ConnectorError

        tmp = f"{path}.posture-tmp"
        steps = (
            (["sh", "-c", 'umask 077 && cat > "$1"', "sh", tmp], data),
            (["chmod", f"{mode:o}", "--", tmp], None),
            (["mv", "-f", "--", tmp, path], None),
        )
        for argv, stdin in steps:
            result = self.run(argv, input=stdin, timeout=timeout)
            if not result.ok:
                self.run(["rm", "-f", "--", tmp], timeout=timeout)
                reason = result.stderr.decode("utf-8", "replace").strip()[-200:]
                raise ConnectorError(f"{self.host}: cannot write {path}: {reason}")
