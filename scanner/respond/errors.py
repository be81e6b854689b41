"""Errors of the response engine, each a one-line message a responder can act on."""

from __future__ import annotations

from scanner.errors import ConfigError, PostureError


class PlaybookError(ConfigError):
    """A playbook that cannot be loaded or rendered: names the file, line and reason (exit 2)."""


class RespondError(PostureError):
    """A run that could not be carried out (exit 3)."""

    exit_code = 3


class ConnectorError(RespondError):
    """A target could not be reached, or a command on it could not be started."""


class ActionError(RespondError):
    """An action failed; the message never holds a secret value."""


class VerifyError(ActionError):
    """An action ran but its effect could not be proven (e.g. isolation leaks, old key works)."""


class KeystoreError(RespondError):
    """The keystore is missing, locked with another key, or has no such secret."""
