"""JSON webhooks: one POST with retries and backoff, for scheduled jobs and playbooks alike."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 1024 * 1024
# Worth another try: the receiver or the path to it may recover. Other 4xx answers will not.
RETRY_STATUSES = frozenset({408, 425, 429})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an HTTP header name (RFC 9110)


def check_url(url: str) -> str | None:
    """Why `url` cannot be a webhook (None: it can): http or https with a host, nothing else.
    The answer never repeats the URL: webhook URLs often carry their token in the path."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "the webhook URL is malformed (bad address or port)"
    if not parts.scheme:
        return "a webhook URL is http or https with a host, not a bare path"
    if parts.scheme not in ("http", "https"):
        return f"a webhook URL is http or https, not {parts.scheme[:20]!r}"
    if not parts.hostname:
        return "the webhook URL has no host"
    return None


def check_header(name: str, value: str) -> str | None:
    """Why a header cannot be sent (None: it can); never repeats the value, which may be a
    token. A line break in a value would smuggle a header or a request of its own."""
    if not _TOKEN.match(name):
        return f"{name[:40]!r} is not an HTTP header name"
    if any(c in value for c in "\r\n\0") or len(value) > 8192:
        return f"the value of header {name} holds a line break or NUL, or is over 8 KiB"
    return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would carry the headers (a bearer token) to
    wherever the receiver points, and turn the POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


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
    or None, why it failed). Network errors, 5xx, 408, 425 and 429 are tried again, up to
    `attempts` tries, sleeping backoff, 2*backoff, ... between; redirects are not followed.
    Error texts hold neither the URL nor header values."""
    problem = check_url(url)
    if problem:
        return None, problem
    for name, value in (headers or {}).items():
        problem = check_header(name, value)
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
        again = True
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                status = int(answer.status)
                if 200 <= status < 300:
                    return status, None
                error = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if 300 <= exc.code < 400:
                where = "".join(
                    c if c.isprintable() else "?" for c in str(exc.headers.get("Location", ""))
                )[:200]
                error += f" redirect to {where!r}: redirects are not followed, give the final URL"
            again = exc.code >= 500 or exc.code in RETRY_STATUSES
        except (OSError, http.client.HTTPException) as exc:
            # OSError: refused, unreachable, timed out; HTTPException: not an HTTP answer.
            reason = getattr(exc, "reason", None) or exc
            text = str(reason)[:200] or type(reason).__name__
            error = "".join(c if c.isprintable() else "?" for c in text)  # a receiver's bytes
        if not again:
            break
        if attempt + 1 < attempts:
            time.sleep(backoff * 2**attempt)
    return status, error
