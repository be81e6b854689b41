"""Where the data folders (rule packs, playbooks, report templates) live.

A wheel carries them inside the package as `scanner/_data/<name>`; a checkout (editable install,
tests) keeps them at the repository root. Both are found without configuration.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `rules`, `playbooks` or `reports`, installed or from the checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"posture's {name!r} folder is missing (looked in {_PACKAGE / '_data'} and "
        f"{_PACKAGE.parent}); reinstall posture"
    )


def rules_dir() -> Path:
    return data_dir("rules")


def playbooks_dir() -> Path:
    return data_dir("playbooks")


def reports_dir() -> Path:
    return data_dir("reports")
