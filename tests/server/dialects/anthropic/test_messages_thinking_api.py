"""`thinking` on a reasoning model: the test copy of the default model whose chat template opens a
`<think>` block (tests/server/fim_model.py), served by its own server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

from tests.conftest import run_hearth
from tests.server.dialects.anthropic.conftest import anthropic_client
from tests.server.fim_model import write_fim_model

MODEL = "fim-test"
HI: list[MessageParam] = [{"role": "user", "content": "Hi"}]
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[anthropic.Anthropic]:
    home = tmp_path_factory.mktemp("hearth-thinking")
    path = write_fim_model(home / "fim-test.gguf")
    with (
        run_hearth(home, "--model", MODEL, "--model-path", str(path)) as server,
        anthropic_client(server) as client,
    ):
        yield client


def test_thinking_blocks_streamed_and_whole(thinker: anthropic.Anthropic) -> None:
    """With thinking on, what the model writes inside <think> is a thinking block, the same whole
    and streamed (thinking_delta events, then a signature_delta before the block stops)."""
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 12, "messages": HI, "thinking": {"type": "adaptive"}}
    whole = thinker.messages.create(**kwargs, extra_body=GREEDY)
    assert whole.content and whole.content[0].type == "thinking" and whole.content[0].thinking
    with thinker.messages.stream(**kwargs, extra_body=GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta" and e.index == 0]
    assert set(deltas) == {"thinking_delta", "signature_delta"} and deltas[-1] == "signature_delta"
    assert final.content[0].type == "thinking" and final.content[0].thinking == whole.content[0].thinking


def test_thinking_disabled_shows_no_thinking(thinker: anthropic.Anthropic) -> None:
    message = thinker.messages.create(
        model=MODEL, max_tokens=12, messages=HI, thinking={"type": "disabled"}, extra_body=GREEDY
    )
    assert all(block.type != "thinking" for block in message.content)
    assert message.usage.output_tokens > 0
