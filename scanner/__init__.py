"""posture: security posture scanner and incident-response toolkit."""

__version__ = "0.1.0"
