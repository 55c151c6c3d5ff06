"""Legacy completions' answers: deltas -> streamed chunks or the whole completion, with the parallel-list
log probabilities OpenAI's legacy API reports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.base import Delta
from server.inference import protocol as p
from server.inference.call import Call
from server.inference.completions.protocol import Completion, CompletionChoice, CompletionLogprobs
from server.inference.completions.translate import PromptChoice
from server.inference.translate import finish_reason


def completion_logprobs(deltas: list[Delta], offset: int) -> CompletionLogprobs:
    """Legacy completions' parallel lists for the tokens of `deltas`; text offsets start at `offset`
    (after any echoed prompt)."""
    tokens = [t for delta in deltas for t in delta.logprobs]
    offsets: list[int] = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.token)
    return CompletionLogprobs(
        tokens=[t.token for t in tokens],
        token_logprobs=[t.logprob for t in tokens],
        # The sampled token only (as vLLM reports it): the engine gives no alternatives.
        top_logprobs=[{t.token: t.logprob} for t in tokens],
        text_offset=offsets,
    )


def to_chunk(
    call: Call,
    index: int,
    text: str,
    finish: p.FinishReason | None = None,
    logprobs: CompletionLogprobs | None = None,
) -> Completion:
    """One choice's piece of a streamed answer."""
    choice = CompletionChoice(index=index, text=text, finish_reason=finish, logprobs=logprobs)
    return Completion(**call.chunk_fields(), choices=[choice])


async def to_chunks(call: Call, choices: list[PromptChoice], logprobs: bool) -> AsyncIterator[Completion]:
    """Every chunk of a streamed answer: echoed prompts first, then text and finish reasons."""
    started: set[int] = set()
    offsets = [len(choice.echo) for choice in choices]
    async for index, delta in call.deltas():
        text = delta.text
        if index not in started:
            started.add(index)
            text = choices[index].echo + text
        if text or delta.logprobs:
            lp = completion_logprobs([delta], offsets[index]) if logprobs else None
            offsets[index] += sum(len(t.token) for t in delta.logprobs)
            yield to_chunk(call, index, text, logprobs=lp)
        if delta.final:
            yield to_chunk(call, index, "", finish_reason(delta))


async def to_completion(call: Call, choices: list[PromptChoice], logprobs: bool) -> Completion:
    """The whole answer, once every choice has finished."""
    deltas: list[list[Delta]] = [[] for _ in choices]
    async for index, delta in call.deltas():
        deltas[index].append(delta)
    out = [
        CompletionChoice(
            index=i,
            text=choice.echo + "".join(d.text for d in parts),
            finish_reason=finish_reason(parts[-1]),
            logprobs=completion_logprobs(parts, len(choice.echo)) if logprobs else None,
        )
        for i, (choice, parts) in enumerate(zip(choices, deltas, strict=True))
    ]
    return Completion(**call.fields(), choices=out, usage=call.usage.usage())
