"""Action names as playbooks write them (`uses:`), mapped to their classes."""

from __future__ import annotations

import importlib
from functools import cache

from scanner.respond.actions.interface import Action

ACTIONS: dict[str, str] = {
    "host.isolate": "scanner.respond.actions.host:Isolate",
    "host.release": "scanner.respond.actions.host:Release",
    "host.verify_isolated": "scanner.respond.actions.host:VerifyIsolated",
    "credentials.rotate_ssh_key": "scanner.respond.actions.ssh_key:RotateSshKey",
    "credentials.rotate_db_password": "scanner.respond.actions.db_password:RotateDbPassword",
    "evidence.collect": "scanner.respond.actions.evidence:CollectEvidence",
    "notify.webhook": "scanner.respond.actions.notify:Webhook",
    "command": "scanner.respond.actions.command:Command",
}


@cache
def action(name: str) -> Action:
    """The action called `name`; KeyError when there is none."""
    module, _, cls = ACTIONS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
