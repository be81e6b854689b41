"""Load rule packs from files and folders into a `RuleSet`, or fail with every problem of every
pack (file:line: reason) in one `PackError`, before anything is scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scanner.errors import ConfigError
from scanner.resources import rules_dir
from scanner.rules.errors import PackError, PackProblem
from scanner.rules.packfile import PackFileError, read_pack_file
from scanner.rules.ruleset import Pack, RuleSet
from scanner.rules.schema import parse_pack


def default_pack_paths() -> list[Path]:
    """The packs shipped with posture: every *.yaml of the rules folder, sorted."""
    try:
        folder = rules_dir()
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    return sorted(folder.glob("*.yaml"))


def _pack_files(paths: Sequence[Path], problems: list[PackProblem]) -> list[Path]:
    """Files to load, in order, each once: a folder stands for its *.yaml files."""
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                problems.append(PackProblem(str(path), 0, "folder has no *.yaml rule packs"))
        elif path.is_file():
            found = [path]
        else:
            problems.append(PackProblem(str(path), 0, "no such rule pack file or folder"))
            continue
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def load_packs(paths: Sequence[Path]) -> RuleSet:
    """Read and check every pack; raises PackError listing all problems of all packs."""
    problems: list[PackProblem] = []
    packs: list[Pack] = []
    first_rule: dict[str, str] = {}  # rule id -> "path:line" where it was first defined
    first_pack: dict[str, str] = {}  # pack name -> path
    for file in _pack_files(paths, problems):
        file_problems: list[PackProblem] = []
        pack = _load_file(file, file_problems, first_rule, first_pack)
        problems.extend(sorted(file_problems, key=lambda problem: problem.line))
        if pack is not None:
            packs.append(pack)
    if problems:
        raise PackError(problems)
    return RuleSet(packs)


def _load_file(
    file: Path,
    problems: list[PackProblem],
    first_rule: dict[str, str],
    first_pack: dict[str, str],
) -> Pack | None:
    """One file's pack (None when it has problems), recording its pack name and rule ids in
    `first_pack`/`first_rule` so duplicates across files are caught."""
    shown = str(file)
    try:
        doc, read_problems = read_pack_file(file)
    except PackFileError as exc:
        problems.append(PackProblem(shown, exc.line, exc.message))
        return None
    problems.extend(PackProblem(shown, line, message) for line, message in read_problems)
    parsed = parse_pack(doc, file, problems)
    if parsed.name is not None:
        if parsed.name in first_pack:
            also = first_pack[parsed.name]
            message = f"duplicate pack name '{parsed.name}' (also {also})"
            problems.append(PackProblem(shown, parsed.name_line, message))
        first_pack.setdefault(parsed.name, shown)
    for rule_id, line in parsed.rule_ids:
        if rule_id in first_rule:
            message = f"duplicate rule id '{rule_id}' (first defined at {first_rule[rule_id]})"
            problems.append(PackProblem(shown, line, message))
        else:
            first_rule[rule_id] = f"{shown}:{line}"
    return None if problems else parsed.pack
