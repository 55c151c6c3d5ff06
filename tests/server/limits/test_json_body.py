"""The depth pre-scan of raw JSON bodies against the real depth of what they encode (no server)."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.limits.json_body import json_depth_exceeds

# Strings full of what the scan must not mistake for nesting: brackets, quotes and escapes.
TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\, :ab\n\u00e9'), max_size=30)
LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=40,
)


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar: 0)."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=150)
@given(JSON_VALUES, st.integers(1, 12), st.booleans())
def test_the_scan_agrees_with_the_real_depth(value: Any, limit: int, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth_exceeds(body, limit) == (depth(value) > limit)


@settings(max_examples=50)
@given(st.integers(65, 600), st.lists(st.sampled_from(["[", '{"k":', '["]]]]",', '{"}}":"]]",  "x":']), min_size=1))
def test_strings_of_closing_brackets_do_not_hide_depth(levels: int, openers: list[str]) -> None:
    """Closers inside strings once could pair with real openers in a naive count."""
    opened = [openers[i % len(openers)] for i in range(levels)]
    body = "".join(opened) + "1" + "".join("]" if o.startswith("[") else "}" for o in reversed(opened))
    json.loads(body)  # valid JSON, `levels` deep by construction
    assert json_depth_exceeds(body.encode(), 64)


@given(st.integers(65, 2000), st.integers(0, 2000))
def test_unclosed_brackets_count_as_open(levels: int, closed: int) -> None:
    """A truncated body is as deep, to a decoder, as far as it gets before the end."""
    assert json_depth_exceeds(b"[" * levels + b"1" + b"]" * min(closed, levels), 64)
    assert json_depth_exceeds(b"[" * 100_000, 64)
    assert not json_depth_exceeds(b"]" * 1000 + b"[]" * 1000, 64)


def test_the_scan_is_linear_in_escapes_and_unterminated_strings() -> None:
    """A string scanner that restarts at each quote was quadratic on `"\\"\\"...`: 80 KB took a
    minute. 2 MB of it, with and without an end, takes well under a second."""
    for tail in (b"", b"\\", b'"'):
        body = b"[" * 100 + b'"' + b'\\"' * 1_000_000 + tail
        started = time.perf_counter()
        assert json_depth_exceeds(body, 64)
        assert time.perf_counter() - started < 1.0
