"""Wire Structs of /tokenize and /detokenize, accepting both llama.cpp's and vLLM's field names."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from server.inference.protocol import Message
from server.limits import ranges

TokenId = ranges.TokenId


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """POST /tokenize: a text (`content` as llama.cpp names it, `prompt` as vLLM does) or chat
    `messages` rendered by the model's template. `model` defaults to the first served model."""

    model: str | None = None
    content: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    add_special: bool | None = None
    add_special_tokens: bool | None = None
    return_token_strs: bool = False


class TokenizeResponse(msgspec.Struct):
    """Token ids, their count and the model's context length (vLLM's shape; llama.cpp reads
    `tokens`); `token_strs` with `return_token_strs`."""

    tokens: list[int]
    count: int
    max_model_len: int
    token_strs: list[str] | UnsetType = UNSET


class DetokenizeRequest(msgspec.Struct, kw_only=True):
    """POST /detokenize."""

    tokens: list[TokenId]
    model: str | None = None


class DetokenizeResponse(msgspec.Struct):
    """The text, as vLLM (`prompt`) and llama.cpp (`content`) name it."""

    prompt: str
    content: str
