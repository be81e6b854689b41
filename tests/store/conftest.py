"""Fixtures for store tests: a deterministic clock, a fresh database, and fact builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storefacts import Facts, FakeClock

from scanner.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "posture.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(db_path, clock=clock) as opened:
        yield opened


@pytest.fixture
def facts(store: Store) -> Facts:
    return Facts(store)
