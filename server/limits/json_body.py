"""JSON bodies bounded before they are decoded.

msgspec (like every recursive decoder) recurses once per nesting level, so a body of 100,000
`[` raised RecursionError from inside the decoder: a 500 on every JSON route. The depth is
therefore measured on the raw bytes first, by a scan that costs almost nothing for ordinary
bodies: a body with fewer brackets than the limit cannot be too deep, and is not scanned at all.
Otherwise strings are cut out (a bracket inside a string does not nest) and the brackets left are
peeled off pairwise, innermost first, at most `limit` times: C-speed passes over a few bytes.
The body size itself is bounded by Litestar (`max_body_bytes`, 413) before any of this runs.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from server.limits.refusal import LimitExceeded
from server.settings import LimitSettings

T = TypeVar("T")

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Every byte but the four brackets is deleted; openers become "(" and closers ")".
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Larger bodies are scanned in a thread: the scan's passes take turns with the event loop.
_SCAN_IN_THREAD_BYTES = 256 * 1024
_JSON_MEDIA = re.compile(r"^application/([\w.+-]+\+)?json$")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text `body` nest deeper than `limit`. Exact for
    valid JSON; for invalid JSON a decoder stops at the first error, and up to there it is exact too."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b'"' in body:
        # A bracket inside a string does not nest; cut strings out (escapes included) first.
        body = _STRING.sub(b"", body)
    brackets = body.translate(_BRACKETS, _NOT_BRACKETS)
    for passes in range(limit):
        # Each pass removes the innermost level everywhere.
        peeled = brackets.replace(b"()", b"")
        if len(peeled) == len(brackets):
            # Nothing nests any more: what is left is stray closers, then openers never closed,
            # which enclose everything after them, the levels peeled so far included.
            return passes + peeled.count(b"(") > limit
        brackets = peeled
    return b"(" in brackets


def check_json_depth(body: bytes, limits: LimitSettings) -> None:
    """Raise `LimitExceeded` (400) when `body` nests deeper than `limits.max_json_depth`."""
    if json_depth_exceeds(body, limits.max_json_depth):
        raise LimitExceeded(
            "The JSON body nests arrays and objects too deeply",
            setting="max_json_depth",
            limit=limits.max_json_depth,
        )


def decode_json(body: bytes, kind: type[T], limits: LimitSettings, *, strict: bool = True) -> T:
    """`body` decoded as `kind` once its depth is known to be within bounds; decoding errors stay
    msgspec's (each dialect words them), a recursion the scan missed is still a `LimitExceeded`."""
    check_json_depth(body, limits)
    try:
        return msgspec.json.decode(body, type=kind, strict=strict)
    except RecursionError:
        raise LimitExceeded(
            "The JSON body nests arrays and objects too deeply", setting="max_json_depth", limit=limits.max_json_depth
        ) from None


def is_json(request: Request[Any, Any, Any]) -> bool:
    """Whether `request` declares a JSON body (`application/json`, `application/*+json`)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return bool(_JSON_MEDIA.match(media))


def _decodes_json(request: Request[Any, Any, Any]) -> bool:
    """Whether the route decodes this request's body as JSON: it declares a `data` body that is
    not a form, or the client says the body is JSON. Routes that stream their body (hub uploads:
    `request_max_body_size=None`) are never buffered here."""
    handler = request.route_handler
    if handler.resolve_request_max_body_size() is None:
        return False
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is not None:
        media = getattr(data.kwarg_definition, "media_type", None)
        if media is None or str(getattr(media, "value", media)) == "application/json":
            return True
    return is_json(request)


def json_body_guard(limits: LimitSettings) -> Any:
    """A Litestar `before_request` hook: the body of every JSON request is read (Litestar keeps it
    for the route's own decoding) and its depth checked before anything decodes it."""

    async def guard(request: Request[Any, Any, Any]) -> None:
        if request.method in ("POST", "PUT", "PATCH") and _decodes_json(request):
            body = await request.body()
            if len(body) > _SCAN_IN_THREAD_BYTES:
                await asyncio.to_thread(check_json_depth, body, limits)
            else:
                check_json_depth(body, limits)

    return guard
