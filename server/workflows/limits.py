"""Bounds on what one workflow definition may cost, checked before YAML parsing starts.

PyYAML's scanner is quadratic in the nesting of flow collections (50,000 `{` took minutes) and its
composer recurses once per level, so a definition's size and depth are bounded first, by a linear
scan that over-estimates rather than under-estimates: brackets in plain text count as nesting,
block scalars (`|`, `>`) and quoted scalars do not. What the scan lets through is parsed in a job
process with a time and memory budget (server/workflows/jobs.py), which catches anything it misses.
"""

from __future__ import annotations

import re

_BLOCK_SCALAR = re.compile(r"(?:^|[\s:-])[|>][-+0-9]*$")
# Characters that open a quoted scalar when they start a token, and what may come before one.
_QUOTES = "\"'"
_TOKEN_START = "-?:,[{"
_SIGNIFICANT = re.compile(r"[\"'#\[\]{},]")


class LimitError(Exception):
    """A definition or run past one of the workflow limits: `setting` names the limit (its flag is
    `--setting-with-dashes`), `limit` is its value, `status` the HTTP status (400, or 413 for sizes)."""

    def __init__(self, message: str, *, setting: str, limit: int | float, status: int = 400) -> None:
        super().__init__(f"{message} (the limit is {limit}, setting `{setting}`).")
        self.what = message
        self.message = str(self)
        self.setting = setting
        self.limit = limit
        self.status = status

    @property
    def code(self) -> str:
        """A stable error code naming the limit, e.g. `workflow_max_depth_exceeded`."""
        return f"{self.setting}_exceeded"


def check_size(text: str, max_bytes: int) -> None:
    """413 for a definition larger than `max_bytes` (UTF-8)."""
    size = len(text.encode("utf-8")) if len(text) * 4 > max_bytes else len(text)
    if size > max_bytes:
        raise LimitError(
            f"The workflow definition is {size} bytes", setting="workflow_max_bytes", limit=max_bytes, status=413
        )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content_column(line: str) -> tuple[int, int]:
    """The column where a line's content starts after its indentation and its `- ` / `? `
    indicators, and how many indicators there were (each is one more level of nesting)."""
    column = _indent(line)
    count = 0
    while line[column : column + 1] in ("-", "?") and line[column + 1 : column + 2] in (" ", "\t", ""):
        count += 1
        column += 1
        while line[column : column + 1] in (" ", "\t"):
            column += 1
        if column >= len(line):
            break
    return column, count


def _last_significant(line: str, end: int) -> str:
    """The last non-blank character before `end`, or a newline at the start of the line."""
    i = end - 1
    while i >= 0 and line[i] in " \t":
        i -= 1
    return line[i] if i >= 0 else "\n"


def nesting_depth(text: str, limit: int) -> int:
    """An upper estimate of the nesting depth of YAML `text`. It returns as soon as the estimate
    exceeds `limit`, and costs no more than one pass over the text."""
    deepest = 0
    flow = 0
    # Indentation of the enclosing block collections.
    blocks: list[int] = []
    block_scalar: int | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if block_scalar is not None:
            if not stripped or _indent(line) > block_scalar:
                continue
            block_scalar = None
        column = 0
        if flow == 0:
            if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
                continue
            indent = _indent(line)
            while blocks and blocks[-1] >= indent:
                blocks.pop()
            blocks.append(indent)
            column, indicators = _content_column(line)
            deepest = max(deepest, len(blocks) + indicators)
        code_end = len(line)
        i = column
        while i < len(line):
            match = _SIGNIFICANT.search(line, i)
            if match is None:
                break
            j = match.start()
            char = line[j]
            i = j + 1
            if char in _QUOTES:
                # A quote opens a scalar only where a token starts, and is skipped only when it
                # closes on the same line: anything less certain is counted as nesting.
                if _last_significant(line, j) not in _TOKEN_START + "\n":
                    continue
                close = _closing_quote(line, j)
                if close is not None:
                    i = close + 1
            elif char == "#":
                if j == 0 or line[j - 1] in " \t":
                    code_end = j
                    break
            elif char in "[{":
                flow += 1
                deepest = max(deepest, len(blocks) + flow)
                if deepest > limit:
                    return deepest
            elif char in "]}":
                flow = max(0, flow - 1)
        if deepest > limit:
            return deepest
        if flow == 0 and _BLOCK_SCALAR.search(line[:code_end].rstrip()):
            # Its text is what is indented more than the node that holds it: the line for `key: |`
            # and `- |`, the key's column for `- key: |`.
            content = _content_column(line)[0]
            block_scalar = _indent(line) if line[content : content + 1] in ("|", ">") else content
    return deepest


def _closing_quote(line: str, start: int) -> int | None:
    """Where the quoted scalar opened at `start` closes on this line, or None."""
    quote = line[start]
    i = start + 1
    while i < len(line):
        char = line[i]
        if quote == '"' and char == "\\":
            i += 2
            continue
        if char == quote:
            if quote == "'" and line[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i
        i += 1
    return None


def check_depth(text: str, max_depth: int) -> None:
    """400 for a definition nested deeper than `max_depth` (by the scan's upper estimate)."""
    depth = nesting_depth(text, max_depth)
    if depth > max_depth:
        raise LimitError(
            f"The workflow definition nests at least {depth} levels deep",
            setting="workflow_max_depth",
            limit=max_depth,
        )
