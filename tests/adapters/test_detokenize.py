"""Incremental detokenization: no lag, no broken UTF-8, same text as a whole decode."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from adapters.detokenize import DecodeState, decode_step


def byte_decode(windows: list[list[int]]) -> Sequence[str]:
    """A byte-level 'tokenizer': each token is one byte of UTF-8."""
    return [bytes(w).decode("utf-8", errors="replace") for w in windows]


def stream(text: str, chunk: int) -> list[str]:
    data = list(text.encode())
    state = DecodeState()
    out: list[str] = []
    for i in range(0, len(data), chunk):
        state.ids.extend(data[i : i + chunk])
        last = i + chunk >= len(data)
        out.extend(decode_step(byte_decode, [state], [last]))
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_streamed_text_equals_whole_text(chunk: int) -> None:
    text = "Héllo wörld 😀 — ünïcode ✓"
    assert "".join(stream(text, chunk)) == text


def test_ascii_is_released_at_once() -> None:
    assert stream("abc", 1) == ["a", "b", "c"]


def test_incomplete_character_is_held_until_complete() -> None:
    pieces = stream("😀", 1)  # four bytes
    assert pieces == ["", "", "", "😀"]


def test_final_step_releases_a_broken_tail() -> None:
    state = DecodeState()
    state.ids.extend([0xF0, 0x9F])
    assert decode_step(byte_decode, [state], [False]) == [""]
    assert state.pending
    assert decode_step(byte_decode, [state], [True]) == ["\ufffd"]


def test_many_states_in_one_batch() -> None:
    a, b = DecodeState(), DecodeState()
    a.ids.extend(b"hi")
    b.ids.extend(b"yo")
    calls: list[int] = []

    def counting(windows: list[list[int]]) -> Sequence[str]:
        calls.append(len(windows))
        return byte_decode(windows)

    assert decode_step(counting, [a, b], [False, False]) == ["hi", "yo"]
    assert calls == [4]
