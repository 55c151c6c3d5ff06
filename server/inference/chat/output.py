"""Chat's answers: engine deltas -> content, reasoning, tool calls and log probabilities, sent as
streamed chunks (`to_chunks`) or as the whole completion (`to_chat_completion`).

Both come from the same `ChoiceOutput` per choice, so they always agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from adapters.base import Delta
from server.inference import protocol as p
from server.inference.call import Call
from server.inference.chat.protocol import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessageOut,
    ChoiceDelta,
    ChunkChoice,
    ToolCallDelta,
)
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
    # Most tool calls this answer returns (1 for a named tool_choice or parallel_tool_calls false).
    max_tool_calls: int = 8
    parser: ToolCallParser = field(init=False)
    splitter: ReasoningSplitter = field(default_factory=ReasoningSplitter)
    content: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    tokens: list[p.TokenLogprob] = field(default_factory=list)
    finish: p.FinishReason | None = None
    # The turn was decided before the engine finished (a repeated call, the call limit): the
    # caller cancels the engine request and sends `finish`.
    stopped: bool = False

    def __post_init__(self) -> None:
        self.parser = ToolCallParser(max_calls=self.max_tool_calls)

    def _split(self, text: str, final: bool, cut: bool) -> ChoiceDelta:
        thought = ""
        if self.reasoning:
            thought, text = self.splitter.feed(text)
            if final:
                more_thought, more_text = self.splitter.finish()
                thought, text = thought + more_thought, text + more_text
        calls: list[ToolCallDelta] = []
        if self.tools:
            text, calls = self.parser.feed(text)
            if final or self.parser.ended:
                text += self.parser.finish(cut)
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
        """The chunk delta (possibly empty) and log probabilities for one engine delta (nothing
        once the answer has finished)."""
        if self.finish is not None:
            return ChoiceDelta(), None
        out = self._split(delta.text, delta.final, cut=delta.finish_reason == "length")
        logprobs = None
        if self.logprobs and delta.logprobs:
            tokens = chat_logprobs(delta)
            self.tokens.extend(tokens)
            logprobs = p.ChoiceLogprobs(content=tokens)
        if delta.final:
            reason = finish_reason(delta)
            # Whole calls were returned, and a call cut off after them was dropped: as vLLM does,
            # the answer asks for its calls to be run.
            self.finish = "tool_calls" if self.parser.calls and reason in ("stop", "length") else reason
        elif self.parser.ended:
            self.finish, self.stopped = "tool_calls", True
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


def to_chunk(
    call: Call,
    index: int,
    delta: ChoiceDelta,
    finish: p.FinishReason | None = None,
    logprobs: p.ChoiceLogprobs | None = None,
) -> ChatCompletionChunk:
    """One choice's piece of a streamed answer."""
    choice = ChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
    return ChatCompletionChunk(**call.chunk_fields(), choices=[choice])


async def to_chunks(call: Call, outputs: list[ChoiceOutput]) -> AsyncIterator[ChatCompletionChunk]:
    """Every chunk of a streamed answer: the role first, then text, tool calls and finish reasons."""
    started: set[int] = set()
    async for index, delta in call.deltas():
        if index not in started:
            started.add(index)
            yield to_chunk(call, index, ChoiceDelta(role="assistant", content=""))
        output = outputs[index]
        out, logprobs = output.feed(delta)
        if not is_empty(out) or logprobs is not None:
            yield to_chunk(call, index, out, logprobs=logprobs)
        if output.stopped:
            await call.stop(index)
        if delta.final or output.stopped:
            yield to_chunk(call, index, ChoiceDelta(), output.finish)


async def to_chat_completion(call: Call, outputs: list[ChoiceOutput]) -> ChatCompletion:
    """The whole answer, once every choice has finished (or its turn was decided)."""
    async for index, delta in call.deltas():
        outputs[index].feed(delta)
        if outputs[index].stopped:
            await call.stop(index)
    choices = [
        ChatChoice(index=i, message=out.message(), finish_reason=out.finish, logprobs=out.choice_logprobs())
        for i, out in enumerate(outputs)
    ]
    return ChatCompletion(**call.fields(), choices=choices, usage=call.usage.usage())
