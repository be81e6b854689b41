"""Problems found while loading rule packs, each tied to a file and line, raised together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scanner.errors import ConfigError


@dataclass(frozen=True, order=True)
class PackProblem:
    """One reason a pack cannot be loaded, where it is."""

    path: str
    line: int  # 1-based; 0 when the problem concerns the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class PackError(ConfigError):
    """One or more rule packs are broken (exit 2); the message lists every problem, one a line."""

    def __init__(self, problems: Iterable[PackProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
