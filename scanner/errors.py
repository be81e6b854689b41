"""Errors a user can act on, each mapped to the exit code a pipeline gates on.

Exit codes: 0 success, 1 findings at or above --fail-on, 2 usage or configuration error,
3 the scan itself failed.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SCAN_FAILED = 3


class PostureError(Exception):
    """Base of every error posture reports to the user as one line."""

    exit_code = EXIT_USAGE


class ConfigError(PostureError):
    """Bad configuration, arguments, rule pack, or target list (exit 2)."""

    exit_code = EXIT_USAGE


class ScopeError(ConfigError):
    """Targets outside the allowed scope: refused before any packet is sent (exit 2)."""


class ToolMissingError(ConfigError):
    """A required external tool (e.g. nmap) is not installed (exit 2)."""


class ScanFailedError(PostureError):
    """The scan could not be carried out (exit 3)."""

    exit_code = EXIT_SCAN_FAILED
