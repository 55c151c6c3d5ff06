"""Incremental detokenization for many sequences at once, with no lag.

OpenVINO GenAI's TextStreamer holds text back by a couple of tokens, which delays the first
streamed word by two decode steps. This decodes the way vLLM and TGI do instead: each sequence
keeps two offsets, and a step decodes the tail window with and without the newest tokens; the
difference is new text, released unless it ends in an incomplete UTF-8 character. All sequences
of a step are decoded in one batched tokenizer call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_INCOMPLETE = "\ufffd"

BatchDecode = Callable[[list[list[int]]], Sequence[str]]


class DecodeState:
    """The generated token ids of one sequence and how far they have been released as text."""

    __slots__ = ("ids", "prefix_offset", "read_offset")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    @property
    def pending(self) -> bool:
        """Whether some tokens have not been released as text yet."""
        return self.read_offset < len(self.ids)


def decode_step(decode: BatchDecode, states: Sequence[DecodeState], final: Sequence[bool]) -> list[str]:
    """New text of each state since its last release; `final` states release everything left."""
    windows: list[list[int]] = []
    for state in states:
        windows.append(state.ids[state.prefix_offset : state.read_offset])
        windows.append(state.ids[state.prefix_offset :])
    texts = decode(windows) if windows else []
    out: list[str] = []
    for i, (state, last) in enumerate(zip(states, final, strict=True)):
        before, after = texts[2 * i], texts[2 * i + 1]
        if len(after) > len(before) and (last or not after.endswith(_INCOMPLETE)):
            out.append(after[len(before) :])
            state.prefix_offset = state.read_offset
            state.read_offset = len(state.ids)
        else:
            out.append("")
    return out
