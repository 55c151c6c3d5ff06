"""Integer ranges every dialect's protocol uses, so that no Python int reaches an engine unbounded.

A Python int has no upper bound, and JSON allows any; a worker's message format (msgpack) and the
engine (C++ ints) do not. An integer of 2^64 in `max_tokens` once failed to encode after the
request had been admitted, and the call waited forever in its scheduler slot. Each wire field is
therefore range-checked where it is decoded (msgspec `Meta`), and the 400 names the field.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# The engines' counts and ids are C ints.
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# A number of tokens (max_tokens, ...): at least 1.
TokenCount = Annotated[int, Meta(ge=1, le=INT32_MAX)]
# A count where 0 means none or off (top_k, legacy max_tokens).
Count = Annotated[int, Meta(ge=0, le=INT32_MAX)]
# A token id; the model's vocabulary bounds it further, once the model is known.
TokenId = Annotated[int, Meta(ge=0, le=INT32_MAX)]
Seed = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
# Any other integer knob a C engine reads (accepted runtime options included).
Int32 = Annotated[int, Meta(ge=-INT32_MAX - 1, le=INT32_MAX)]


def is_token_id(value: object) -> bool:
    """Whether `value` (from a loosely typed field such as a prompt) is a token id in range."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX
