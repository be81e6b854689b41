"""Shared test setup: tests marked `root` or `nmap` are skipped, with the reason printed, when
this machine cannot run them."""

from __future__ import annotations

import os
import shutil

import pytest

_MISSING = {
    "root": (
        lambda: os.geteuid() != 0,
        "needs root (raw sockets, ports below 1024): run the tests as root",
    ),
    "nmap": (
        lambda: shutil.which("nmap") is None,
        "needs nmap: apt-get install -y nmap",
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (missing, reason) in _MISSING.items():
        if not missing():
            continue
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skipif(True, reason=reason))
