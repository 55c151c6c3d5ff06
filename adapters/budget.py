"""What every backend checks before it queues a request: token-id prompts and the context budget."""

from __future__ import annotations

from adapters.base import Delta, EngineError


def new_token_budget(
    request_id: int, n_prompt: int, context: int, wanted: int | None, default: int | None = None
) -> int | list[Delta]:
    """How many tokens a request with an `n_prompt`-token prompt may generate in a `context`-token
    window (`wanted`: its max_tokens, None for the rest of the window, capped by `default` if set),
    or the deltas that answer it at once: a context overflow in OpenAI's words, or an empty
    `length` finish for max_tokens 0."""
    if n_prompt >= context or (wanted is not None and n_prompt + wanted > context):
        asked = n_prompt + (wanted or 0)
        message = (
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{asked} tokens ({n_prompt} in the prompt, {wanted or 0} for the completion). "
            "Please reduce the length of the prompt or of max_tokens."
        )
        return [Delta(request_id=request_id, error=EngineError("context_length_exceeded", message))]
    max_new = wanted if wanted is not None else context - n_prompt
    if wanted is None and default is not None:
        max_new = min(max_new, default)
    if max_new == 0:
        return [Delta(request_id=request_id, prompt_tokens=n_prompt, finish_reason="length")]
    return max_new


def checked_prompt_ids(prompt_ids: tuple[int, ...], vocab_size: int | None) -> list[int]:
    """Token-id prompt `prompt_ids` as a list, or a ValueError when the model's vocabulary is
    unknown or an id falls outside it."""
    if vocab_size is None:
        raise ValueError("this model does not accept token-id prompts")
    if any(t >= vocab_size for t in prompt_ids):
        raise ValueError(f"token ids must be below the vocabulary size {vocab_size}")
    return list(prompt_ids)
