"""A client cannot write a line of its own into Hearth's logs: control characters it sends (a
URL-encoded newline or terminal escape in a path, a model name with a newline) reach stderr and
$HEARTH_HOME/logs/hearth.log escaped, on the request's own line."""

from __future__ import annotations

import json
import logging
import time

import httpx

from server.http.log_escape import EscapeControlFilter, escape_control
from tests.conftest import HearthServer

FORGED = "2026-12-02 16:00:00,000 ERROR server.scheduler: FORGED"


def _output_after(server: HearthServer, marker: str, timeout: float = 10.0) -> str:
    """The server's stderr once the access line of the request carrying `marker` is in it."""
    deadline = time.monotonic() + timeout
    while True:
        output = server.output(tail=200_000)
        if marker in output or time.monotonic() > deadline:
            return output
        time.sleep(0.1)


def test_newlines_and_escapes_in_a_path_stay_on_one_line(hearth_server: HearthServer) -> None:
    with httpx.Client(base_url=hearth_server.base_url, timeout=60) as http:
        # Raw paths: the client sends these bytes as they are (no re-encoding by httpx).
        unmatched = http.get("/x-unmatched%0a" + FORGED.replace(" ", "%20") + "%1b[31mRED%0d%e2%80%a8end")
        assert unmatched.status_code == 404
        matched = http.get("/v1/models/m-matched%0a" + FORGED.replace(" ", "%20") + "-2")
        assert matched.status_code == 404
        model = http.post(
            "/v1/chat/completions",
            json={"model": "m-body\n" + FORGED + "-3\x1b[0m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert model.status_code == 404
    output = _output_after(hearth_server, "m-matched")
    lines = output.splitlines()
    assert not [line for line in lines if "FORGED" in line and line.startswith("2026-12-02 16:00:00")], output[-3000:]
    assert "\x1b" not in output and "\u2028" not in output and "\r" not in output
    unmatched_line = next(line for line in lines if "/x-unmatched" in line)
    assert unmatched_line.endswith(" 404")
    assert "/x-unmatched\\n" + FORGED + "\\x1b[31mRED\\r\\u2028end" in unmatched_line
    assert any("/v1/models/m-matched\\n" + FORGED + "-2 404" in line for line in lines)
    # The machine log is one JSON object per line, its fields escaped the same way.
    records = [json.loads(line) for line in (hearth_server.home / "logs" / "hearth.log").read_text().splitlines()]
    assert any(r.get("path", "").startswith("/x-unmatched\\n2026") for r in records)


def test_exception_messages_are_escaped_but_tracebacks_keep_their_lines() -> None:
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed on %s", ("a\nb",), None)
    try:
        try:
            raise RuntimeError("inner\n" + FORGED)
        except RuntimeError as exc:
            raise ValueError("outer\x1b[2J") from exc
    except ValueError as exc:
        record.exc_info = (ValueError, exc, exc.__traceback__)
    record.model = "m\nx"
    assert EscapeControlFilter().filter(record)
    text = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert text.startswith("ERROR failed on a\\nb\nTraceback (most recent call last):\n")
    assert "RuntimeError: inner\\n" + FORGED + "\n" in text
    assert "ValueError: outer\\x1b[2J" in text and "direct cause" in text
    assert not any(line.startswith("2026-12-02") for line in text.splitlines())
    assert record.__dict__["model"] == "m\\nx"
    assert escape_control(escape_control("a\n\x00\x9b")) == "a\\n\\x00\\x9b"
