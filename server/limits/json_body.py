"""JSON bodies bounded before they are decoded.

msgspec (like every recursive decoder) recurses once per nesting level, so a body of 100,000
`[` raised RecursionError from inside the decoder: a 500 on every JSON route. The depth is
therefore measured on the raw bytes first, by a scan that costs almost nothing for ordinary
bodies: a body with fewer brackets than the limit cannot be too deep, and is not scanned at all.
Otherwise the bytes inside strings are found (a bracket there does not nest), the brackets outside
become +1 and -1, and their running sum is the depth: a few numpy passes over the body, linear in
its size whatever it holds.
The body size itself is bounded by Litestar (`max_body_bytes`, 413) before any of this runs.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar

import msgspec
import numpy as np
from litestar import Request

from server.limits.refusal import LimitExceeded
from server.settings import LimitSettings

T = TypeVar("T")

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# Each byte's step in depth: +1 for "[" and "{", -1 for "]" and "}", 0 for anything else.
_STEPS = np.zeros(256, dtype=np.int8)
_STEPS[[ord("["), ord("{")]] = 1
_STEPS[[ord("]"), ord("}")]] = -1
# Larger bodies are scanned in a thread, off the event loop.
_SCAN_IN_THREAD_BYTES = 256 * 1024
_JSON_MEDIA = re.compile(r"^application/([\w.+-]+\+)?json$")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text `body` nest deeper than `limit`. Exact for
    valid JSON; invalid JSON is refused by a decoder at its first error, and up to there (all the
    nesting a decoder could reach) the scan is exact too."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    text = np.frombuffer(body, dtype=np.uint8)
    steps = _STEPS[text]
    if b'"' in body:
        steps[_in_strings(text)] = 0
    brackets = steps[steps != 0]
    if int(np.count_nonzero(brackets > 0)) <= limit:
        return False
    # The running sum of +1 (opener) and -1 (closer) is the depth at each bracket.
    return bool(brackets.cumsum(dtype=np.int32).max() > limit)


def _in_strings(text: np.ndarray[Any, np.dtype[np.uint8]]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which bytes of `text` are inside a string. Outside strings a backslash is a syntax error, so
    before the first error every backslash is inside one, where a quote is escaped by an odd run
    of backslashes before it."""
    is_quote = text == _QUOTE
    is_backslash = text == _BACKSLASH
    if is_backslash.any():
        # Each run of backslashes [start, end]: the quote right after it is escaped if it is odd.
        before = np.concatenate(([False], is_backslash[:-1]))
        after = np.concatenate((is_backslash[1:], [False]))
        starts, ends = np.flatnonzero(is_backslash & ~before), np.flatnonzero(is_backslash & ~after)
        quoted = ends + 1 < text.size
        starts, ends = starts[quoted], ends[quoted]
        escaped = (text[ends + 1] == _QUOTE) & ((ends - starts) % 2 == 0)
        is_quote[ends[escaped] + 1] = False
    # Parity of the quotes so far: 1 from an opening quote up to (not including) its closing one.
    inside: np.ndarray[Any, np.dtype[np.bool_]] = np.bitwise_xor.accumulate(is_quote.view(np.uint8)).view(np.bool_)
    return inside


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
