"""The Files and Batch APIs with the official `openai` client against a real server on the default
model: upload, create, poll, results in OpenAI's per-line format (bodies validated against OpenAI's
schema), a malformed line reported with its number while the rest run, cancel, the 400s, and a
server killed (SIGKILL) in the middle of a batch that resumes after a restart with every line
answered exactly once."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import openai
import pytest

from tests.conftest import HearthServer, run_hearth
from tests.openai_schema import validate

MODEL = "smollm2-135m-instruct"


def _chat_line(i: int, max_tokens: int = 6) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"Count to {i}"}], "max_tokens": max_tokens}
    return {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}


def _jsonl(lines: list[Any]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def _upload(client: openai.OpenAI, lines: list[Any]) -> str:
    return client.files.create(file=("batch.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch").id


def _wait(client: openai.OpenAI, batch_id: str, until: tuple[str, ...], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in until:
            return batch
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} is still {batch.status}")


def _lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    with run_hearth(tmp_path_factory.mktemp("batches"), "--batch-max-file-bytes", "200000") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: HearthServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.api_url, api_key="unused", max_retries=0) as c:
        yield c


def test_a_batch_runs_every_line_and_reports_a_malformed_one(client: openai.OpenAI) -> None:
    lines: list[Any] = [_chat_line(i) for i in range(1, 6)]
    lines.insert(2, b'{"custom_id": "broken", "method": "POST", "url": "/v1/chat/completions", "body": ')
    lines.append({**_chat_line(9), "body": {"model": MODEL, "messages": "not a list"}})
    file_id = _upload(client, lines)
    file = client.files.retrieve(file_id)
    assert file.purpose == "batch" and file.bytes > 0 and file_id in [f.id for f in client.files.list()]

    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.object == "batch"
    done = _wait(client, batch.id, ("completed", "failed"))
    assert done.status == "completed", done
    validate("Batch", done.model_dump(mode="json", exclude_unset=True))
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (7, 5, 2)
    assert done.in_progress_at and done.finalizing_at and done.completed_at

    outputs = _lines(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == [f"req-{i}" for i in range(1, 6)]
    for out in outputs:
        assert out["error"] is None and out["response"]["status_code"] == 200
        validate("CreateChatCompletionResponse", out["response"]["body"])
    errors = {e["custom_id"]: e for e in _lines(client, done.error_file_id)}
    assert set(errors) == {None, "req-9"}  # the cut line's custom_id cannot be read
    assert errors[None]["error"]["code"] == "invalid_request" and "line 3" in errors[None]["error"]["message"]
    assert errors["req-9"]["response"]["status_code"] == 400
    assert errors["req-9"]["response"]["body"]["error"]["param"] == "messages"


def test_other_endpoints_run_through_their_own_routes(client: openai.OpenAI) -> None:
    completion = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 5}
    response = {"model": MODEL, "input": "Say hi", "max_output_tokens": 16}
    endpoints: tuple[tuple[Literal["/v1/completions", "/v1/responses"], dict[str, Any], str | None], ...] = (
        ("/v1/completions", completion, "CreateCompletionResponse"),
        ("/v1/responses", response, None),
    )
    for endpoint, body, schema in endpoints:
        file_id = _upload(client, [{"custom_id": "a", "method": "POST", "url": endpoint, "body": body}])
        batch = client.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")
        done = _wait(client, batch.id, ("completed", "failed"))
        [out] = _lines(client, done.output_file_id)
        assert out["response"]["status_code"] == 200, out
        if schema:
            validate(schema, out["response"]["body"])
        else:
            assert out["response"]["body"]["object"] == "response"


def test_bad_requests_are_400s_in_openai_shape(client: openai.OpenAI) -> None:
    data = _jsonl([_chat_line(1)])
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="assistants")
    with pytest.raises(openai.APIStatusError) as too_big:
        client.files.create(file=("b.jsonl", io.BytesIO(data * 3000)), purpose="batch")
    assert too_big.value.status_code == 413
    file_id = _upload(client, [_chat_line(1)])
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/moderations", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    wrong = client.batches.create(input_file_id=file_id, endpoint="/v1/completions", completion_window="24h")
    failed = _wait(client, wrong.id, ("failed", "completed"))
    assert failed.request_counts is not None and failed.request_counts.failed == 1  # the url differs: reported
    assert client.files.delete(file_id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)


def test_cancel_reports_every_line_once(client: openai.OpenAI) -> None:
    file_id = _upload(client, [_chat_line(i, max_tokens=24) for i in range(30)])
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    _wait(client, batch.id, ("in_progress",))
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = _wait(client, batch.id, ("cancelled",))
    assert done.cancelling_at and done.cancelled_at
    seen = [line["custom_id"] for line in _lines(client, done.output_file_id) + _lines(client, done.error_file_id)]
    assert sorted(seen) == sorted(f"req-{i}" for i in range(30))
    cancelled = [e for e in _lines(client, done.error_file_id) if e["error"]]
    assert cancelled and all(e["error"]["code"] == "batch_cancelled" for e in cancelled)
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    assert batch.id in [b.id for b in client.batches.list()]


def test_a_batch_survives_a_kill_and_answers_every_line_exactly_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    total = 24
    with run_hearth(home) as first:
        with openai.OpenAI(base_url=first.api_url, api_key="unused", max_retries=0) as client:
            file_id = _upload(client, [_chat_line(i, max_tokens=24) for i in range(total)])
            batch = client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            deadline = time.monotonic() + 240
            while (client.batches.retrieve(batch.id).request_counts or _Zero()).completed < 4:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    with run_hearth(home) as second, openai.OpenAI(base_url=second.api_url, api_key="unused", max_retries=0) as client:
        done = _wait(client, batch.id, ("completed",))
        assert done.request_counts is not None and done.request_counts.completed == total
        outputs = _lines(client, done.output_file_id)
        assert sorted(o["custom_id"] for o in outputs) == sorted(f"req-{i}" for i in range(total))
        assert all(o["response"]["status_code"] == 200 for o in outputs)
        assert done.error_file_id is None


class _Zero:
    completed = 0


def test_the_cli_submits_follows_and_prints_results(
    server: HearthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    path = tmp_path / "requests.jsonl"
    path.write_bytes(_jsonl([_chat_line(i) for i in range(3)]))
    assert main(["batch", "--url", server.base_url, "submit", str(path), "--wait"]) == 0
    out = capsys.readouterr().out
    batch_id = out.splitlines()[0]
    assert batch_id.startswith("batch_") and "completed (3 completed, 0 failed)" in out
    assert main(["batch", "--url", server.base_url, "ls", "--json"]) == 0
    assert batch_id in [b["id"] for b in json.loads(capsys.readouterr().out)]
    assert main(["batch", "--url", server.base_url, "results", batch_id]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["req-0", "req-1", "req-2"]
    assert main(["batch", "--url", server.base_url, "cancel", batch_id]) == 1
    assert "cannot be cancelled" in capsys.readouterr().err
