"""Helpers of the workflow API tests: storing definitions and reading streamed runs."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import parse_sse

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workflows"
YAML = {"Content-Type": "application/yaml"}


def unique(prefix: str) -> str:
    """A workflow name no other test uses on the shared server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store_workflow(http: httpx.Client) -> Callable[[str], str]:
    """PUT a definition (its `name:` line is made unique) and return the name it was stored under."""

    def put(text: str) -> str:
        text = textwrap.dedent(text)
        base = next(line for line in text.splitlines() if line.startswith("name:")).split(":", 1)[1].strip()
        name = unique(base)
        response = http.put(
            f"/v1/workflows/{name}", content=text.replace(f"name: {base}", f"name: {name}", 1), headers=YAML
        )
        assert response.status_code == 200, response.text
        return name

    return put


def stream_run(http: httpx.Client, name: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed run, with the SSE framing checked."""
    with http.stream("POST", f"/v1/workflows/{name}/runs", json={"inputs": inputs, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    return parse_sse(raw)


def check_record(record: dict[str, Any], status: str = "succeeded") -> None:
    """Invariants every run record keeps, whatever happened."""
    assert record["object"] == "workflow.run" and record["id"].startswith("run_")
    assert record["status"] == status, json.dumps(record, indent=1)[:3000]
    assert record["finished_at"] >= record["created_at"]
    total = {"prompt_tokens": 0, "completion_tokens": 0}
    for name, step in record["steps"].items():
        assert step["status"] in ("succeeded", "failed", "cancelled", "skipped"), name
        if step["status"] != "skipped":
            assert record["created_at"] <= step["started_at"] <= step["finished_at"] <= record["finished_at"], name
            assert step["duration_s"] == pytest.approx(step["finished_at"] - step["started_at"], abs=1e-3)
        if step["status"] == "succeeded":
            assert step["output"] is not None and step["error"] is None
        if step["status"] == "failed":
            assert step["error"]
        for key in total:
            total[key] += step["usage"][key]
    assert record["usage"] == total
    if status == "succeeded":
        assert record["error"] is None and isinstance(record["outputs"], dict)
    else:
        assert record["error"]["message"]
