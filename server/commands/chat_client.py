"""The chat client of `hearth run`: one streamed chat completion over the OpenAI API, and the
conversation (model, system prompt, parameters, history) it is built from."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from server.commands.client import ServerError, auth_headers, error_message


@dataclass
class Answer:
    """One streamed answer: its text, and the figures `--verbose` prints."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_s: float | None = None
    total_s: float = 0.0
    finish_reason: str | None = None


@dataclass
class Conversation:
    """What the chat sends with each turn: the model, system prompt, parameters and history."""

    model: str
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)

    def request(self, prompt: str) -> dict[str, Any]:
        """The streamed chat completion request for the next user turn."""
        turns = [{"role": "system", "content": self.system}] if self.system else []
        turns += [*self.messages, {"role": "user", "content": prompt}]
        return {
            "model": self.model,
            "messages": turns,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.parameters,
        }


def stream_chat(url: str, body: dict[str, Any], write: Callable[[str], None]) -> Answer:
    """POST a streamed chat completion and `write` each piece of text as it arrives.

    A Ctrl-C (KeyboardInterrupt) closes the connection, which cancels the generation on the
    server, and propagates. Error answers and error events become `ServerError`.
    """
    with _interruptible() as interrupted:
        return _stream(url, body, write, interrupted)


@contextlib.contextmanager
def _interruptible() -> Iterator[list[bool]]:
    """A Ctrl-C while streaming is noted and raised by the loop at its next line. Raised by the
    signal handler itself, it could land in a finalizer run by the garbage collector mid-stream,
    where Python prints and drops it (seen under load: the answer went on); a second Ctrl-C still
    raises at once, for a server that sends nothing."""
    pressed = [False]
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return

    def on_sigint(signum: int, frame: object) -> None:
        if pressed[0]:
            raise KeyboardInterrupt
        pressed[0] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _stream(url: str, body: dict[str, Any], write: Callable[[str], None], interrupted: list[bool]) -> Answer:
    answer = Answer()
    start = time.perf_counter()
    timeout = httpx.Timeout(10.0, read=None)
    with (
        httpx.Client(timeout=timeout, headers=auth_headers()) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body) as response,
    ):
        if response.status_code >= 400:
            response.read()
            raise ServerError(error_message(response), response.status_code)
        for line in response.iter_lines():
            if interrupted[0]:
                raise KeyboardInterrupt
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if "error" in chunk:
                raise ServerError(str(chunk["error"].get("message", chunk["error"])))
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if answer.first_token_s is None:
                        answer.first_token_s = time.perf_counter() - start
                    answer.text += text
                    write(text)
                answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
            if chunk.get("usage"):
                answer.prompt_tokens = chunk["usage"]["prompt_tokens"]
                answer.completion_tokens = chunk["usage"]["completion_tokens"]
    answer.total_s = time.perf_counter() - start
    return answer


def stats(answer: Answer) -> str:
    """The `--verbose` line after an answer: tokens, time to first token, speed."""
    parts = [f"total {answer.total_s:.2f}s"]
    if answer.first_token_s is not None:
        parts.append(f"first token {answer.first_token_s * 1000:.0f} ms")
    if answer.prompt_tokens is not None:
        parts.append(f"prompt {answer.prompt_tokens} tokens")
    if answer.completion_tokens:
        speed = answer.completion_tokens / max(answer.total_s - (answer.first_token_s or 0.0), 1e-9)
        parts.append(f"{answer.completion_tokens} tokens at {speed:.1f} tokens/s")
    return ", ".join(parts)
