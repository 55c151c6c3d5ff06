"""One chat choice's output: engine deltas -> content, reasoning, tool calls and log probabilities.

Streamed chunks and the whole message come from the same `ChoiceOutput`, so both always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.base import Delta
from server.inference import protocol as p
from server.inference.chat.protocol import ChatMessageOut, ChoiceDelta, ToolCallDelta
from server.inference.reasoning import ReasoningSplitter
from server.inference.tool_calls import ToolCallParser
from server.inference.translate import finish_reason


def chat_logprobs(delta: Delta) -> list[p.TokenLogprob]:
    """The delta's token log probabilities in chat's shape (no alternatives: see docs)."""
    return [p.TokenLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes, top_logprobs=[]) for t in delta.logprobs]


@dataclass
class ChoiceOutput:
    """Accumulates one choice; `feed` returns what a stream chunk should carry."""

    tools: bool = False
    reasoning: bool = False
    logprobs: bool = False
    parser: ToolCallParser = field(default_factory=ToolCallParser)
    splitter: ReasoningSplitter = field(default_factory=ReasoningSplitter)
    content: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    tokens: list[p.TokenLogprob] = field(default_factory=list)
    finish: p.FinishReason | None = None

    def _split(self, text: str, final: bool) -> ChoiceDelta:
        thought = ""
        if self.reasoning:
            thought, text = self.splitter.feed(text)
            if final:
                more_thought, more_text = self.splitter.finish()
                thought, text = thought + more_thought, text + more_text
        calls: list[ToolCallDelta] = []
        if self.tools:
            text, calls = self.parser.feed(text)
            if final:
                text += self.parser.finish()
        self.content.append(text)
        self.thoughts.append(thought)
        out = ChoiceDelta()
        if text:
            out.content = text
        if thought:
            out.reasoning_content = thought
        if calls:
            out.tool_calls = calls
        return out

    def feed(self, delta: Delta) -> tuple[ChoiceDelta, p.ChoiceLogprobs | None]:
        """The chunk delta (possibly empty) and log probabilities for one engine delta."""
        out = self._split(delta.text, delta.final)
        logprobs = None
        if self.logprobs and delta.logprobs:
            tokens = chat_logprobs(delta)
            self.tokens.extend(tokens)
            logprobs = p.ChoiceLogprobs(content=tokens)
        if delta.final:
            reason = finish_reason(delta)
            self.finish = "tool_calls" if reason == "stop" and self.parser.calls else reason
        return out, logprobs

    def message(self) -> ChatMessageOut:
        """The whole answer."""
        text = "".join(self.content)
        message = ChatMessageOut(content=text if text or not self.parser.calls else None)
        if self.parser.calls:
            message.tool_calls = self.parser.tool_calls()
        if self.reasoning:
            message.reasoning_content = "".join(self.thoughts)
        return message

    def choice_logprobs(self) -> p.ChoiceLogprobs | None:
        """Log probabilities of the whole answer, if asked for."""
        return p.ChoiceLogprobs(content=self.tokens) if self.logprobs else None


def is_empty(delta: ChoiceDelta) -> bool:
    """Whether a chunk delta carries nothing."""
    return delta == ChoiceDelta()
