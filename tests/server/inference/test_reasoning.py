"""Splitting <think> blocks from answers, streamed at any chunking."""

from __future__ import annotations

import pytest

from server.inference.reasoning import ReasoningSplitter


def _split(text: str, size: int) -> tuple[str, str]:
    splitter = ReasoningSplitter()
    thought, content = "", ""
    for i in range(0, len(text), size):
        t, c = splitter.feed(text[i : i + size])
        thought, content = thought + t, content + c
    t, c = splitter.finish()
    return thought + t, content + c


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
@pytest.mark.parametrize("opening", ["<think>", "", "\n<think>"])
def test_reasoning_is_split_from_content(size: int, opening: str) -> None:
    assert _split(f"{opening}2 < 3, so yes</think>\n\nYes.", size) == ("2 < 3, so yes", "Yes.")


def test_unclosed_thinking_is_all_reasoning() -> None:
    assert _split("<think>still going", 3) == ("still going", "")
