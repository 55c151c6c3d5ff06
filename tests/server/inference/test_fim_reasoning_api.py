"""Fill-in-the-middle and reasoning_content, on a test copy of the default model that has FIM
tokens and a thinking chat template (tests/server/fim_model.py), served by its own server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import CLIENT_TIMEOUT_S, HearthServer, parse_sse, run_hearth
from tests.openai_schema import validate
from tests.server.fim_model import FIM_TOKENS, RENAMED_IDS, write_fim_model

MODEL = "fim-test"
PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"


@pytest.fixture(scope="module")
def fim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    home = tmp_path_factory.mktemp("hearth-fim")
    path = write_fim_model(home / "fim-test.gguf")
    with run_hearth(home, "--model", MODEL, "--model-path", str(path)) as server:
        yield server


@pytest.fixture(scope="module")
def fim_http(fim_server: HearthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fim_server.base_url, timeout=CLIENT_TIMEOUT_S) as client:
        yield client


def test_fim_tokens_are_single_special_tokens(fim_http: httpx.Client) -> None:
    ids = fim_http.post("/tokenize", json={"content": "".join(FIM_TOKENS), "add_special": False}).json()["tokens"]
    assert tuple(ids) == RENAMED_IDS


def test_suffix_builds_a_fim_prompt_streamed_and_whole(fim_server: HearthServer, fim_http: httpx.Client) -> None:
    """The prompt is <fim_prefix>prefix<fim_suffix>suffix<fim_middle> (its token count proves it);
    streamed and whole middles agree."""
    client = openai.OpenAI(base_url=fim_server.api_url, api_key="unused", max_retries=0)
    kwargs: dict[str, Any] = {"model": MODEL, "prompt": PREFIX, "suffix": SUFFIX, "temperature": 0, "max_tokens": 8}
    whole = client.completions.create(**kwargs)
    validate("CreateCompletionResponse", whole.model_dump(exclude_unset=True))
    fim = f"{FIM_TOKENS[0]}{PREFIX}{FIM_TOKENS[1]}{SUFFIX}{FIM_TOKENS[2]}"
    expected = fim_http.post("/tokenize", json={"content": fim}).json()["count"]
    assert whole.usage is not None and whole.usage.prompt_tokens == expected
    streamed = "".join(c.choices[0].text for c in client.completions.create(**kwargs, stream=True) if c.choices)
    assert streamed == whole.choices[0].text


def test_echo_with_suffix_is_refused(fim_http: httpx.Client) -> None:
    response = fim_http.post(
        "/v1/completions", json={"model": MODEL, "prompt": PREFIX, "suffix": SUFFIX, "echo": True, "max_tokens": 2}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "echo"


def test_reasoning_content_is_split_streamed_and_whole(fim_http: httpx.Client) -> None:
    """The template opens <think>: what the model writes until </think> is reasoning_content, in
    the whole message and in stream deltas alike."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "max_tokens": 12}
    whole = fim_http.post("/v1/chat/completions", json=body).json()
    validate("CreateChatCompletionResponse", whole)
    message = whole["choices"][0]["message"]
    assert message["reasoning_content"]
    raw = fim_http.post("/v1/chat/completions", json={**body, "stream": True}).text
    chunks = parse_sse(raw)
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
    assert "".join(d.get("content", "") for d in deltas) == message["content"]
