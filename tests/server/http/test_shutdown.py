"""SIGTERM drains the server: streams in flight end cleanly within the grace period (an error event,
then `[DONE]`; the Responses API's `error` event), a whole answer in flight is a 503, new requests
are refused with 503 meanwhile, a request whose body never comes is answered 503 too, and the log
shows no traceback. Raw streams are read with httpx to
check the framing itself; one goes through the official openai client."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil

from tests.conftest import DEFAULT_MODEL, HearthServer, parse_sse, run_hearth

GRACE_S = 3.0
# Long enough that nothing finishes on its own before the grace period is over.
LONG = {
    "model": DEFAULT_MODEL,
    "messages": [{"role": "user", "content": "Count from 1 to 5000, one number per line."}],
    "max_tokens": 6000,
    "ignore_eos": True,
}


class _Stream(threading.Thread):
    """One raw stream, read to its end; `started` is set at its first event."""

    def __init__(self, base_url: str, body: dict[str, Any], path: str = "/v1/chat/completions") -> None:
        super().__init__(daemon=True)
        self.base_url, self.body, self.path = base_url, body, path
        self.started = threading.Event()
        self.raw = ""
        self.ended_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=60) as http,
                http.stream("POST", self.path, json=self.body) as response,
            ):
                assert response.status_code == 200
                for text in response.iter_text():
                    self.raw += text
                    self.started.set()
        except BaseException as exc:  # the assertions below report it
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.started.set()


class _SDKStream(threading.Thread):
    """One streamed chat through the openai client; the error it raised, if any."""

    def __init__(self, server: HearthServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.started = threading.Event()
        self.content = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.openai_client() as client:
                stream = client.chat.completions.create(
                    model=DEFAULT_MODEL,
                    messages=[{"role": "user", "content": "Count from 1 to 5000, one number per line."}],
                    max_tokens=6000,
                    stream=True,
                    extra_body={"ignore_eos": True},
                )
                for chunk in stream:
                    if chunk.choices:
                        self.content += chunk.choices[0].delta.content or ""
                    self.started.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()


class _SlowBody(threading.Thread):
    """A client that sends a request's headers and then only a little of its body: a request in
    flight that is no model call, so the drain middleware itself has to end it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent = threading.Event()
        self.answer = b""

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Content-Length: 100000\r\n\r\n".encode() + b'{"model": ')
            self.sent.set()
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    self.answer += chunk


class _Whole(threading.Thread):
    """One non-streamed chat; its response."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.response: httpx.Response | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            self.response = http.post("/v1/chat/completions", json=LONG)


def test_sigterm_ends_streams_cleanly_and_refuses_new_requests(tmp_path: Path) -> None:
    with run_hearth(tmp_path / "home", "--shutdown-grace-s", str(GRACE_S)) as server:
        streams = [_Stream(server.base_url, {**LONG, "stream": True})]
        sdk = _SDKStream(server)
        responses = _Stream(
            server.base_url,
            {
                "model": DEFAULT_MODEL,
                "input": "Count to 5000.",
                "max_output_tokens": 6000,
                "ignore_eos": True,
                "stream": True,
            },
            "/v1/responses",
        )
        whole = _Whole(server.base_url)
        slow = _SlowBody(server.port)
        for thread in [*streams, sdk, responses, whole, slow]:
            thread.start()
        assert slow.sent.wait(30)
        for started in (streams[0].started, sdk.started, responses.started):
            assert started.wait(60), "a stream did not start"
        time.sleep(0.5)  # the whole answer is being generated too
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            refused = http.post("/v1/chat/completions", json={**LONG, "max_tokens": 1})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "server_shutting_down"
        assert refused.headers.get("connection") == "close"

        for thread in [*streams, sdk, responses, whole, slow]:
            thread.join(GRACE_S + 10)
        assert server.process.wait(GRACE_S + 10) == 0
        for stream in streams:
            assert stream.error is None, repr(stream.error)
            assert stream.ended_at - signalled < GRACE_S + 2
            chunks = parse_sse(stream.raw)  # ends with data: [DONE], every event whole
            assert chunks[-1]["error"]["code"] == "server_shutting_down", chunks[-1]
            assert any(c.get("choices") and c["choices"][0]["delta"].get("content") for c in chunks[:-1])
        assert isinstance(sdk.error, openai.APIError) and "shutting down" in sdk.error.message, repr(sdk.error)
        assert sdk.content
        assert responses.error is None, repr(responses.error)
        events = responses.raw.split("\n\n")
        assert events[-1] == "" and events[-2].startswith("event: error\ndata: "), events[-3:]
        assert '"code":"server_shutting_down"' in events[-2]
        assert any(e.startswith("event: response.output_text.delta") for e in events)
        assert whole.response is not None
        assert whole.response.status_code == 503, whole.response.text
        assert whole.response.json()["error"]["code"] == "server_shutting_down"
        assert slow.answer.startswith(b"HTTP/1.1 503 "), slow.answer[:300]
        assert b'"code":"server_shutting_down"' in slow.answer
        output = server.output()
        assert "Traceback" not in output and "CancelledError" not in output, output[-4000:]
        assert "shutting down: 5 request(s) in flight" in output


def test_sigterm_to_the_whole_process_group_still_drains(tmp_path: Path) -> None:
    """`systemctl stop` (and a terminal's Ctrl-C) signal every process of the group: the model
    worker must not die before the server has ended its streams cleanly."""
    with run_hearth(tmp_path / "home", "--shutdown-grace-s", "1") as server:
        stream = _Stream(server.base_url, {**LONG, "stream": True})
        stream.start()
        assert stream.started.wait(60), "the stream did not start"
        os.killpg(server.process.pid, signal.SIGTERM)
        stream.join(20)
        assert server.process.wait(20) == 0
        assert stream.error is None, repr(stream.error)
        chunks = parse_sse(stream.raw)
        assert chunks[-1]["error"]["code"] == "server_shutting_down", chunks[-1]
        output = server.output()
        assert "exited (code" not in output and "died" not in output, output[-3000:]


def test_stopping_during_the_quick_start_hand_over_does_not_wait_for_the_build(tmp_path: Path) -> None:
    """Stopped soon after its first answer, while the batching pipeline builds on a thread
    (quick start, docs/adapters.md), the server ends cleanly and its worker with it: the worker
    leaves without waiting for the build (adapters/worker_main.py), which took ~5 s more."""
    home = tmp_path / "home"
    for _ in range(2):  # a first start saves the model's IR when the session had none to share
        with run_hearth(home, quick_start=True) as server:
            answer = httpx.post(
                f"{server.api_url}/chat/completions",
                json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            workers = psutil.Process(server.process.pid).children()
            assert workers
            time.sleep(1.5)  # the build starts after 1 s with nothing asked, and takes ~5 s
            os.killpg(server.process.pid, signal.SIGTERM)
            assert server.process.wait(20) == 0
            _, alive = psutil.wait_procs(workers, timeout=5)
            assert not alive
            output = server.output()
            if "stateful pipeline first" in output:
                break
    assert "stateful pipeline first" in output, output[-3000:]
    assert "Traceback" not in output and "exited (code" not in output, output[-3000:]
