"""POST /tokenize and /detokenize (also under /v1), as llama.cpp and vLLM offer them."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request, Router, post

from server.http.errors import invalid_request
from server.http.openapi import ERRORS
from server.inference.call import EngineDoor
from server.inference.limits import check_tokenize_request
from server.inference.tokenize.protocol import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from server.inference.translate import chat_messages
from server.limits.json_body import decode_json
from server.settings import LimitSettings

T = TypeVar("T")


async def _strict(request: Request[Any, Any, Any], kind: type[T], limits: LimitSettings) -> T:
    """The body decoded strictly: Litestar's own conversion is lax (it takes "1" for a boolean),
    which would accept requests this route's published schema refuses."""
    try:
        return decode_json(await request.body(), kind, limits)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.partition("at `$.")[2].rstrip("`") or None
        raise invalid_request(f"Invalid request: {message}", param=field) from exc


@post(["/tokenize", "/v1/tokenize"], summary="Tokenize a text or a conversation", status_code=200, responses=ERRORS)
async def tokenize(
    data: TokenizeRequest, request: Request[Any, Any, Any], door: EngineDoor, limits: LimitSettings
) -> TokenizeResponse:
    """Token ids of `content`/`prompt`, or of `messages` rendered by the model's chat template."""
    data = await _strict(request, TokenizeRequest, limits)
    check_tokenize_request(data, limits)
    texts = [t for t in (data.content, data.prompt) if t is not None]
    if len(texts) + (data.messages is not None) != 1:
        raise invalid_request("Send exactly one of content, prompt or messages.", param="content")
    messages = chat_messages(data.messages) if data.messages is not None else None
    result = await door.tokenize(
        data.model,
        request=request,
        text=texts[0] if texts else None,
        messages=messages,
        add_special=next((v for v in (data.add_special, data.add_special_tokens) if v is not None), True),
        param="messages" if messages is not None else "content",
    )
    response = TokenizeResponse(tokens=result.ids, count=len(result.ids), max_model_len=result.context_length)
    if data.return_token_strs:
        response.token_strs = result.pieces
    return response


@post(["/detokenize", "/v1/detokenize"], summary="Turn token ids back into text", status_code=200, responses=ERRORS)
async def detokenize(
    data: DetokenizeRequest, request: Request[Any, Any, Any], door: EngineDoor, limits: LimitSettings
) -> DetokenizeResponse:
    """The text of `tokens` (ids outside the model's vocabulary are a 400)."""
    data = await _strict(request, DetokenizeRequest, limits)
    result = await door.tokenize(data.model, request=request, ids=data.tokens, param="tokens")
    return DetokenizeResponse(prompt=result.text, content=result.text)


router = Router(path="/", route_handlers=[tokenize, detokenize], tags=["tokenize"])
