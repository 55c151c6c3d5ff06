"""Batch lines are bounded as the HTTP requests they stand for: a line nested past `max_json_depth`,
one past `max_tools`, one with an unsatisfiable schema and one with an integer past the engine's
range each fail alone (in the error file, naming their limit), while the ordinary lines run."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx
import openai

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.limits.conftest import normal_chat, runner_pid


def _line(custom_id: str, **body: Any) -> bytes:
    request = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, **body}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}
    return json.dumps(line).encode()


def test_hostile_lines_fail_alone(limited: HearthServer, raw: httpx.Client) -> None:
    pid = runner_pid(raw)
    nested = b'{"custom_id": "deep", "method": "POST", "url": "/v1/chat/completions", "body": ' + b"[" * 50_000
    schema = {"type": "array", "minItems": 3, "maxItems": 1}
    lines = [
        _line("ok-1"),
        nested,
        _line("tools", tools=[{"type": "function", "function": {"name": f"f{i}"}} for i in range(200)]),
        _line("schema", response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}),
        _line("huge", max_tokens=2**64),
        _line("ok-2"),
    ]
    with limited.openai_client() as client:
        file_id = client.files.create(file=("b.jsonl", io.BytesIO(b"\n".join(lines) + b"\n")), purpose="batch").id
        batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 240
        while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed", batch
        answers = {}
        for file in (batch.output_file_id, batch.error_file_id):
            if file is not None:
                for text in client.files.content(file).text.splitlines():
                    record = json.loads(text)
                    answers[record["custom_id"]] = record
    assert {answers[k]["response"]["status_code"] for k in ("ok-1", "ok-2")} == {200}
    assert answers["tools"]["response"]["body"]["error"]["code"] == "max_tools_exceeded"
    assert "minItems" in answers["schema"]["response"]["body"]["error"]["message"]
    assert answers["huge"]["response"]["body"]["error"]["param"] == "max_tokens"
    deep = [r for k, r in answers.items() if k not in ("ok-1", "ok-2", "tools", "schema", "huge")]
    assert len(deep) == 1 and deep[0]["error"]["code"] == "max_json_depth_exceeded", deep
    assert runner_pid(raw) == pid
    normal_chat(raw)


def test_the_openai_client_sees_its_error_code(limited: HearthServer) -> None:
    """The official client reads the refusal: a BadRequestError whose code names the limit."""
    with limited.openai_client() as client:
        try:
            client.chat.completions.create(
                model=DEFAULT_MODEL,
                messages=[{"role": "user", "content": "Hi"}] * 3000,
                max_tokens=2,
            )
        except openai.BadRequestError as exc:
            assert exc.code == "max_messages_exceeded" and "max_messages" in str(exc.message)
        else:
            raise AssertionError("3000 messages were accepted")
