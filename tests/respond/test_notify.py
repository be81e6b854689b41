"""notify.webhook against a real HTTP receiver the test starts on 127.0.104.1: what arrives,
retries on 500 then 200, no retry on 404, a timeout, redirects not followed, and secrets (a
bearer token, a URL with its token in the path) kept out of outputs, records and errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scanner.respond.actions.notify import Webhook
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.errors import ActionError
from scanner.respond.secrets import Secret
from tests.respond.step_context import step_context

TOKEN = "tok-3f9a8c7e6d5b4a39-secret"
ADDRESS = "127.0.104.1"


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # statuses to give, in order; then 200
    seen: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    hang: threading.Event = field(default_factory=threading.Event)  # set: answer at once
    hang_first: int = 0  # how many requests to hold until the client gave up


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    state.hang.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.seen.append((self.path, dict(self.headers), body))
            if len(state.seen) <= state.hang_first:
                state.hang.wait(timeout=30)
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{state.url}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((ADDRESS, 0), Handler)
    state.url = f"http://{ADDRESS}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        state.hang.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_posts_the_body_with_a_secret_header_after_a_500(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.answers = [500]
    act = Webhook()
    headers = {"Authorization": Secret("tok", f"Bearer {TOKEN}"), "X-Team": "soc"}
    body = {"event": "isolated", "host": "10.0.0.5"}
    params = act.validate({"url": f"{receiver.url}/hook", "body": body, "headers": headers,
                           "retries": 2, "backoff": 0.05})  # fmt: skip
    ctx, seen = step_context(tmp_path)
    out = act.run(params, ctx)
    assert out["status"] == 200 and len(receiver.seen) == 2  # one 500, then accepted
    path, headers, body = receiver.seen[-1]
    assert path == "/hook" and body == {"event": "isolated", "host": "10.0.0.5"}
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["X-Team"] == "soc"
    assert headers["Content-Type"] == "application/json"
    # Both tries carry the same key; another run of the same step would carry another one.
    assert (
        receiver.seen[0][1]["Idempotency-Key"]
        == headers["Idempotency-Key"]
        == out["idempotency_key"]
    )
    other, _ = step_context(tmp_path, run_id="r-2")
    assert act.run(params, other)["idempotency_key"] != out["idempotency_key"]
    shown = act.describe(params, LocalConnector())[0]
    assert "Authorization: <secret tok>" in shown and "X-Team: soc" in shown
    assert TOKEN not in json.dumps([out, seen.records, shown])
    assert seen.kinds("post")[0]["status"] == 200


def test_gives_up_after_its_retries_and_does_not_retry_a_404(
    tmp_path: Path, receiver: Receiver
) -> None:
    act = Webhook()
    receiver.answers = [500, 503, 500]
    with pytest.raises(ActionError, match="HTTP 500"):
        act.run(
            act.validate({"url": receiver.url, "retries": 2, "backoff": 0.01}),
            step_context(tmp_path)[0],
        )
    assert len(receiver.seen) == 3
    receiver.answers = [404]
    with pytest.raises(ActionError, match="HTTP 404"):
        act.run(
            act.validate({"url": receiver.url, "retries": 3, "backoff": 0.01}),
            step_context(tmp_path)[0],
        )
    assert len(receiver.seen) == 4  # a 404 will not change by asking again


def test_a_receiver_that_does_not_answer_times_out(tmp_path: Path, receiver: Receiver) -> None:
    receiver.hang.clear()
    receiver.hang_first = 2
    act = Webhook()
    ctx, seen = step_context(tmp_path)
    with pytest.raises(ActionError, match="timed out"):
        act.run(
            act.validate({"url": receiver.url, "timeout": 0.3, "retries": 1, "backoff": 0}), ctx
        )
    assert len(receiver.seen) == 2 and "timed out" in seen.kinds("post")[0]["error"]


def test_a_redirect_is_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [307]
    act = Webhook()
    headers = {"Authorization": Secret("tok", TOKEN)}
    params = act.validate({"url": f"{receiver.url}/hook", "headers": headers, "retries": 2,
                           "backoff": 0})  # fmt: skip
    with pytest.raises(ActionError, match=r"HTTP 307 redirect to .*/elsewhere.*give the final URL"):
        act.run(params, step_context(tmp_path)[0])
    # The token did not follow the redirect, and a redirect is not tried again.
    assert [path for path, _, _ in receiver.seen] == ["/hook"]


def test_a_secret_url_is_used_and_never_shown(tmp_path: Path, receiver: Receiver) -> None:
    act = Webhook()
    params = act.validate(
        {"url": Secret("chat", f"{receiver.url}/services/{TOKEN}"), "body": {"a": 1}}
    )
    ctx, seen = step_context(tmp_path)
    out = act.run(params, ctx)
    assert receiver.seen[0][0] == f"/services/{TOKEN}"
    receiver.answers = [404]
    failing = act.validate(
        {"url": Secret("chat", f"{receiver.url}/services/{TOKEN}"), "retries": 0}
    )
    with pytest.raises(ActionError) as info:
        act.run(failing, ctx)
    assert "webhook <secret chat>: HTTP 404" in str(info.value)
    everything = json.dumps(
        [out, seen.records, act.describe(params, LocalConnector()), str(info.value)]
    )
    assert TOKEN not in everything and "<secret chat>" in everything


def test_an_unreachable_receiver_is_an_error(tmp_path: Path) -> None:
    act = Webhook()
    # Port 9 (discard) on an address of this test's block: nothing listens there.
    with pytest.raises(ActionError, match="refused"):
        act.run(
            act.validate({"url": f"http://{ADDRESS}:9/", "retries": 0}), step_context(tmp_path)[0]
        )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"url": "file:///etc/passwd"}, "http or https, not 'file'"),
        ({"url": "ftp://127.0.104.1/x"}, "http or https, not 'ftp'"),
        ({"url": "/just/a/path"}, "with a host, not a bare path"),
        ({"url": "http://127.0.104.1:99999/"}, "malformed"),
        ({"url": "http:///nohost"}, "no host"),
        ({"url": "http://127.0.104.1/", "headers": {"Bad Name": "x"}}, "not an HTTP header name"),
        ({"url": "http://127.0.104.1/", "headers": {"Idempotency-Key": "x"}}, "set by posture"),
        ({"url": "http://127.0.104.1/", "timeout": 0}, "greater than 0"),
        ({"url": "http://127.0.104.1/", "retries": 11}, "less than or equal to 10"),
    ],
)
def test_bad_params_are_refused(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Webhook().validate(raw)


def test_a_line_break_in_a_secret_header_is_refused_without_showing_it() -> None:
    smuggled = Secret("tok", f"Bearer {TOKEN}\r\nX-Evil: 1")
    with pytest.raises(ValidationError) as info:
        Webhook().validate({"url": "http://127.0.104.1/", "headers": {"Authorization": smuggled}})
    assert "holds a line break" in str(info.value) and TOKEN not in str(info.value)
