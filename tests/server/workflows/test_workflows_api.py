"""/v1/workflows on a real server with the default model: definitions, runs, events, failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.server.workflows.conftest import EXAMPLES, YAML, check_record, stream_run, unique
from tests.server.workflows.documents import docx_bytes

ARTICLE = (
    "The city council voted on Tuesday to build a new public library downtown. Construction starts "
    "next spring and will cost 12 million dollars, paid for by a bond that voters approved last year."
)
REQUIREMENTS = (
    "Requirements for the unit converter.\n1. The program converts Celsius to Fahrenheit.\n"
    "2. It rejects input that is not a number with a clear message."
)


def test_schema_is_published_and_every_example_satisfies_it(http: httpx.Client) -> None:
    response = http.get("/v1/workflows/schema")
    assert response.status_code == 200
    schema = response.json()
    for path in EXAMPLES.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "steps": {"a": {"tool": "teleport"}}}, schema)


def test_create_get_list_replace_delete(http: httpx.Client) -> None:
    name = unique("crud")
    text = f"name: {name}\nsteps:\n  out: {{tool: format_json, with: {{value: [1, 2]}}}}\n"
    created = http.post("/v1/workflows", content=text, headers=YAML)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name and created.json()["steps"] == ["out"]
    again = http.post("/v1/workflows", content=text, headers=YAML)
    assert again.status_code == 409 and again.json()["error"]["code"] == "workflow_exists"
    got = http.get(f"/v1/workflows/{name}").json()
    assert got["definition"] == text and got["outputs"] == ["out"]
    assert name in [w["name"] for w in http.get("/v1/workflows").json()["data"]]
    replaced = http.put(f"/v1/workflows/{name}", content=text + "description: v2\n", headers=YAML)
    assert replaced.status_code == 200 and replaced.json()["description"] == "v2"
    deleted = http.delete(f"/v1/workflows/{name}")
    assert deleted.json() == {"object": "workflow.deleted", "name": name, "deleted": True}
    assert http.get(f"/v1/workflows/{name}").json()["error"]["code"] == "workflow_not_found"
    assert http.delete(f"/v1/workflows/{name}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("PUT", "/v1/workflows/x", "name: x\nsteps: {}\n", {"Content-Type": "application/json"}, 415, None),
        ("PUT", "/v1/workflows/Bad.Name", "name: x\n", YAML, 400, None),
        ("PUT", "/v1/workflows/other", "name: x\nsteps: {a: {tool: chunk, with: {text: a}}}\n", YAML, 400, None),
        ("PUT", "/v1/workflows/x", "name: x\nsteps: [1, 2\n", YAML, 400, "invalid_workflow"),
        ("POST", "/v1/workflows/absent/runs", "{}", {"Content-Type": "application/json"}, 404, "workflow_not_found"),
        ("GET", "/v1/workflows/absent/runs/run_0123456789abcdef01234567", "", {}, 404, "run_not_found"),
        ("GET", "/v1/workflows/absent/runs/..%2F..%2Fconfig", "", {}, 404, None),
    ],
)
def test_bad_requests_get_clear_errors(
    http: httpx.Client, method: str, path: str, body: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    response = http.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    if code:
        assert error["code"] == code


def test_invalid_definition_reports_every_problem_and_stores_nothing(http: httpx.Client) -> None:
    name = unique("broken")
    text = (
        f"name: {name}\ninputs: {{text: {{type: string}}}}\nsteps:\n"
        "  a: {model: gpt-9, prompt: '{{ steps.b }}'}\n"
        "  b: {model: smollm2-135m-instruct, prompt: '{{ steps.a }} {{ inputs.nope }}'}\n"
        "  c: {tool: chunk, with: {text: '{{ inputs.text'}}\n"
    )
    response = http.put(f"/v1/workflows/{name}", content=text, headers=YAML)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "4 problems" in message
    for fragment in (
        "4: step `a`: unknown service or model `gpt-9`",
        "cycle:",
        "`inputs.nope`",
        "6: step `c`: template error",
    ):
        assert fragment in message
    assert http.get(f"/v1/workflows/{name}").status_code == 404


def test_bad_inputs_are_refused_before_the_run(http: httpx.Client, store_workflow: Callable[[str], str]) -> None:
    name = store_workflow((EXAMPLES / "summarize-translate.yaml").read_text())
    for inputs, param in [
        ({}, "inputs.text"),
        ({"text": 3}, "inputs.text"),
        ({"text": "a", "tone": "x"}, "inputs.tone"),
    ]:
        response = http.post(f"/v1/workflows/{name}/runs", json={"inputs": inputs})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
    assert http.post(f"/v1/workflows/{name}/runs", content=b"{not json").status_code == 400


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float(min(a["finished_at"], b["finished_at"]) - max(a["started_at"], b["started_at"]))


def test_summarize_translate_runs_independent_steps_concurrently(
    http: httpx.Client, store_workflow: Callable[[str], str]
) -> None:
    name = store_workflow((EXAMPLES / "summarize-translate.yaml").read_text())
    response = http.post(f"/v1/workflows/{name}/runs", json={"inputs": {"text": ARTICLE, "language": "Spanish"}})
    assert response.status_code == 200, response.text
    record = response.json()
    check_record(record)
    steps = record["steps"]
    assert record["inputs"] == {"text": ARTICLE, "language": "Spanish"}
    assert set(record["outputs"]) == {"title", "summary", "translation"}
    assert record["outputs"]["summary"] == steps["summarize"]["output"].strip()
    for step in steps.values():
        assert step["usage"]["prompt_tokens"] > 0 and 0 < step["usage"]["completion_tokens"] <= 64
    # `summarize` and `title` depend on nothing but the input: their generations overlap in time.
    overlap = _overlap(steps["summarize"], steps["title"])
    assert overlap > 0.5 * min(steps["summarize"]["duration_s"], steps["title"]["duration_s"]), overlap
    # `translate` needs the summary: it starts only once `summarize` has finished.
    assert steps["translate"]["started_at"] >= steps["summarize"]["finished_at"]
    assert http.get(f"/v1/workflows/{name}/runs/{record['id']}").json() == record


def test_requirements_to_code_streams_step_events(http: httpx.Client, store_workflow: Callable[[str], str]) -> None:
    name = store_workflow((EXAMPLES / "requirements-to-code.yaml").read_text())
    events = stream_run(http, name, {"document": REQUIREMENTS})
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    run_id = events[0]["run_id"]
    assert all(e["run_id"] == run_id for e in events)
    record = events[-1]["run"]
    check_record(record)
    order = [e["step"] for e in events if e["type"] == "step.finished"]
    assert order == ["understand", "write_code", "report"]
    for step in ("understand", "write_code"):
        kinds = [e["type"] for e in events if e.get("step") == step]
        assert kinds[0] == "step.started" and kinds[-1] == "step.finished" and "step.delta" in kinds
        text = "".join(e["text"] for e in events if e.get("step") == step and e["type"] == "step.delta")
        assert text == record["steps"][step]["output"] and text.strip()
    report = json.loads(record["outputs"]["report"])
    assert report == {"requirements": record["outputs"]["requirements"], "code": record["outputs"]["code"]}
    assert http.get(f"/v1/workflows/{name}/runs/{run_id}").json() == record


UPLOAD = """
name: upload
inputs:
  spec: {type: file}
  other: {type: file, required: false}
steps:
  text: {tool: extract_text, with: {file: "{{ inputs.spec }}"}}
  lines:
    tool: chunk
    with: {text: "{{ steps.text }}", size: 40, overlap: 0}
  first:
    model: smollm2-135m-instruct
    prompt: "Repeat: {{ item }}"
    map: steps.lines
    params: {max_tokens: 4, temperature: 0}
"""


def test_file_input_by_multipart_upload_and_map(http: httpx.Client, store_workflow: Callable[[str], str]) -> None:
    name = store_workflow(UPLOAD)
    document = docx_bytes(["The converter shall round to two decimals.", "It shall run offline."])
    response = http.post(
        f"/v1/workflows/{name}/runs",
        files={
            "spec": ("spec.docx", document, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        },
        data={"inputs": "{}"},
    )
    assert response.status_code == 200, response.text
    record = response.json()
    check_record(record)
    assert record["inputs"]["spec"]["filename"] == "spec.docx" and record["inputs"]["spec"]["size"] == len(document)
    assert record["steps"]["text"]["output"] == "The converter shall round to two decimals.\nIt shall run offline."
    lines = record["steps"]["lines"]["output"]
    assert record["steps"]["first"]["items"] == len(lines) >= 2
    assert len(record["outputs"]["first"]) == len(lines) and all(isinstance(o, str) for o in record["outputs"]["first"])


FAILING = """
name: failing
inputs:
  doc: {type: file}
steps:
  quick: {tool: format_json, with: {value: {ok: true}}}
  read: {tool: extract_text, with: {file: "{{ inputs.doc }}"}, after: [quick]}
  answer: {model: smollm2-135m-instruct, prompt: "{{ steps.read }}", params: {max_tokens: 4}}
"""


def test_a_failing_step_fails_the_run_and_the_record_keeps_what_finished(
    http: httpx.Client, store_workflow: Callable[[str], str]
) -> None:
    name = store_workflow(FAILING)
    response = http.post(f"/v1/workflows/{name}/runs", files={"doc": ("photo.png", b"\x89PNG\r\n", "image/png")})
    assert response.status_code == 200, response.text
    record = response.json()
    check_record(record, "failed")
    assert record["error"]["step"] == "read" and "photo.png" in record["error"]["message"]
    assert record["steps"]["quick"]["status"] == "succeeded" and json.loads(record["steps"]["quick"]["output"]) == {
        "ok": True
    }
    assert record["steps"]["read"]["status"] == "failed"
    assert record["steps"]["answer"]["status"] == "skipped" and record["outputs"] is None
    assert http.get(f"/v1/workflows/{name}/runs/{record['id']}").json() == record


SLOW = """
name: slow
steps:
  quick: {tool: format_json, with: {value: done}}
  long:
    model: smollm2-135m-instruct
    prompt: "Write a very long story about a lighthouse keeper."
    params: {max_tokens: 2000, temperature: 0.8, seed: 1}
  after_long: {tool: format_json, with: {value: "{{ steps.long }}"}}
"""


def test_cancel_a_run_mid_generation(http: httpx.Client, store_workflow: Callable[[str], str]) -> None:
    name = store_workflow(SLOW)
    events: list[dict[str, Any]] = []
    cancelled: list[dict[str, Any]] = []

    def cancel_after_first_tokens(run_id: str) -> None:
        cancelled.append(http.post(f"/v1/workflows/{name}/runs/{run_id}/cancel").json())

    with http.stream("POST", f"/v1/workflows/{name}/runs", json={"stream": True}) as response:
        canceller: threading.Thread | None = None
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            events.append(json.loads(line.removeprefix("data: ")))
            deltas = sum(e["type"] == "step.delta" for e in events)
            if deltas == 3 and canceller is None:
                canceller = threading.Thread(target=cancel_after_first_tokens, args=(events[0]["run_id"],))
                canceller.start()
        assert canceller is not None
        canceller.join()
    assert events[-1]["type"] == "run.cancelled"
    record = events[-1]["run"]
    check_record(record, "cancelled")
    assert cancelled[0]["status"] == "cancelled"
    assert record["steps"]["quick"]["status"] == "succeeded"
    assert record["steps"]["long"]["status"] == "cancelled"
    # Well short of the 2000 tokens it was allowed: the generation stopped when the run did.
    assert 3 <= record["steps"]["long"]["usage"]["completion_tokens"] < 500
    assert record["steps"]["after_long"]["status"] == "skipped"
    assert http.get(f"/v1/workflows/{name}/runs/{record['id']}").json()["status"] == "cancelled"
    # Cancelling a run that has ended changes nothing.
    assert http.post(f"/v1/workflows/{name}/runs/{record['id']}/cancel").json()["status"] == "cancelled"


def test_a_client_that_goes_away_cancels_its_run(http: httpx.Client, store_workflow: Callable[[str], str]) -> None:
    name = store_workflow(SLOW)
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"/v1/workflows/{name}/runs", json={}, timeout=httpx.Timeout(10, read=1.5))
    deadline = time.monotonic() + 30
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = http.get(f"/v1/workflows/{name}/runs").json()["data"]
        if runs and runs[0]["status"] != "running":
            break
        time.sleep(0.2)
    assert len(runs) == 1
    check_record(runs[0], "cancelled")
    assert runs[0]["steps"]["long"]["status"] == "cancelled"
    assert http.get(f"/v1/workflows/{name}/runs", params={"limit": 0}).status_code == 400
