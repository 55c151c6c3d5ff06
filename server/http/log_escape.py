"""Log lines a client cannot forge: control characters in what a record says are escaped.

Whatever a client controls (a request's path, a model name, a header, a message that quotes one)
can carry a newline or a terminal escape. Written as is, `GET /x%0a2026-12-02 16:00:00,000 ERROR
...` puts a second, forged line on stderr and so in journald. `EscapeControlFilter`, installed on
every handler `hearth serve` logs to, escapes each control character (C0, DEL, C1, and the Unicode
line and paragraph separators) as `\\n`, `\\x1b`, `\\u2028` in a record's message and arguments, in
its string `extra` fields and in the message of its exception; the newlines of a traceback stay
newlines (its frames are Hearth's own code, not a client's words). It changes the record itself,
so every handler after the first sees it escaped already (escaping is idempotent).
"""

from __future__ import annotations

import logging
import re
import traceback

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_control(text: str) -> str:
    """`text` with every control character written as an escape, so it stays on one line."""
    return _CONTROL.sub(_escape_one, text)


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` and its causes, as Python prints it, with each exception's message
    (the part that may quote a client) escaped onto one line."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    connector = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, connector))
        if current.__cause__ is not None:
            current, connector = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, connector = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for error, link in reversed(chain):
        if error.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(error.__traceback__))
        parts.append(escape_control("".join(traceback.format_exception_only(type(error), error)).rstrip("\n")) + "\n")
        parts.append(link)
    return "".join(parts).rstrip("\n")


class EscapeControlFilter(logging.Filter):
    """Escapes control characters in everything a record will print (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape `record` in place."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, as without this filter
            return True
        escaped = escape_control(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, escape_control(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = format_exception(record.exc_info[1])
        return True
