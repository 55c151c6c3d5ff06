"""Splits a reasoning model's thinking (`<think>...</think>`, DeepSeek-R1 style) from its answer.

DeepSeek-R1's template opens the `<think>` block in the prompt, so the output starts inside it;
other models write the opening tag themselves. Either way, everything up to `</think>` is
`reasoning_content`, the rest is `content`, streamed or not.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN = "<think>"
CLOSE = "</think>"


def held_back(text: str, marker: str) -> int:
    """How many trailing characters of `text` could be the start of `marker` (so a streamed parser
    keeps them until the next piece says whether the marker follows)."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


@dataclass
class ReasoningSplitter:
    """Incremental splitter: `feed` text, get (reasoning, content) pieces back."""

    _thinking: bool = True
    _started: bool = False
    _buffer: str = ""
    _answering: bool = False

    def _answer(self, text: str) -> str:
        # The blank lines between the thinking and the answer belong to neither.
        if not self._answering:
            text = text.lstrip("\n")
            self._answering = bool(text)
        return text

    def feed(self, text: str) -> tuple[str, str]:
        """The reasoning and content that `text` adds."""
        if not self._thinking:
            return "", self._answer(text)
        self._buffer += text
        if not self._started:
            stripped = self._buffer.lstrip()
            if len(stripped) < len(OPEN) and OPEN.startswith(stripped):
                return "", ""  # may still become the opening tag
            self._started = True
            self._buffer = stripped.removeprefix(OPEN)
        close = self._buffer.find(CLOSE)
        if close >= 0:
            reasoning, content = self._buffer[:close], self._buffer[close + len(CLOSE) :]
            self._buffer, self._thinking = "", False
            return reasoning, self._answer(content)
        keep = held_back(self._buffer, CLOSE)
        reasoning = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return reasoning, ""

    def finish(self) -> tuple[str, str]:
        """What is still held back when generation ends (an unclosed block is all reasoning)."""
        rest, self._buffer = self._buffer, ""
        return (rest, "") if self._thinking else ("", rest)
