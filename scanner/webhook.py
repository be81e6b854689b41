"""JSON webhooks: one POST with retries and backoff, for scheduled jobs and playbooks alike."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 1024 * 1024


def check_url(url: str) -> str | None:
    """Why `url` cannot be a webhook (None: it can): http or https with a host, nothing else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url[:80]!r} is not an http(s) URL"
    return None


def post_json(
    url: str,
    payload: Any,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 0.5,
) -> tuple[int | None, str | None]:
    """POSTs `payload` as JSON; (HTTP status, None) once a 2xx answer came, else (last status
    or None, why it failed) after `attempts` tries, sleeping backoff, 2*backoff, ... between."""
    problem = check_url(url)
    if problem:
        return None, problem
    body = json.dumps(payload).encode("utf-8")
    if len(body) > MAX_BODY:
        return None, f"the body is {len(body)} bytes; at most {MAX_BODY}"
    status: int | None = None
    error = "not sent"
    for attempt in range(max(attempts, 1)):
        request = urllib.request.Request(  # noqa: S310 - http(s) checked above
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "posture",
                **dict(headers or {}),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                status = int(answer.status)
                if 200 <= status < 300:
                    return status, None
                error = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except OSError as exc:
            error = str(getattr(exc, "reason", exc)) or type(exc).__name__
        if attempt + 1 < attempts:
            time.sleep(backoff * 2**attempt)
    return status, error
