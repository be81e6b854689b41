"""Fixtures of the response-engine tests: the file-writing test action in the registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scanner.respond.actions import registry
from tests.respond.netns import lab  # noqa: F401 - the namespace hosts fixture
from tests.respond.postgres import postgres  # noqa: F401 - the PostgreSQL server fixture


@pytest.fixture
def write_action(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.ACTIONS, "test.write_file", "tests.respond.file_action:WriteFile")
    registry.action.cache_clear()
    yield
    registry.action.cache_clear()
