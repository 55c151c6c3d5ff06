"""Hostile workflows against a real server: deep and huge YAML, too many steps, runaway templates,
document bombs and oversized tool arguments. Each is refused (4xx at once) or fails its run with
the limit named, while `/health` keeps answering and the server's memory comes back.

One server for the module, with limits small enough that generated attacks reach them quickly.
"""

from __future__ import annotations

import io
import statistics
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import HearthServer, run_hearth
from tests.server.workflows.conftest import YAML, unique
from tests.server.workflows.documents import docx_bytes

MAX_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_STEPS = 256
TIMEOUT_S = 3.0
RECORD_BYTES = 8192
EXTRACT_CHARS = 20_000
FLAGS = [
    *("--workflow-max-bytes", str(MAX_BYTES)),
    *("--workflow-max-depth", str(MAX_DEPTH)),
    *("--workflow-max-steps", str(MAX_STEPS)),
    *("--workflow-job-timeout-s", str(TIMEOUT_S)),
    *("--workflow-record-output-bytes", str(RECORD_BYTES)),
    *("--workflow-extract-max-chars", str(EXTRACT_CHARS)),
    *("--workflow-extract-max-bytes", str(1024 * 1024)),
]
# A refusal comes "within about a second"; runs that hit the time budget end soon after it.
REFUSAL_S = 1.0
HEALTH_S = 0.1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server of its own, so its memory is this module's alone."""
    with run_hearth(tmp_path_factory.mktemp("hearth-wf-limits"), *FLAGS) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: HearthServer) -> Iterator[httpx.Client]:
    """A raw client on the module's server."""
    with httpx.Client(base_url=server.base_url, timeout=60.0) as raw:
        yield raw


@pytest.fixture(scope="module")
def baseline_rss(server: HearthServer, client: httpx.Client) -> int:
    """The server's memory once it has stored and run a workflow (its job processes are warm)."""
    stored = put(client, "name: warm\nsteps:\n  out: {tool: format_json, with: {value: {a: 1}}}\n")
    assert stored.status_code == 200, stored.text
    name = stored.json()["name"]
    assert client.post(f"/v1/workflows/{name}/runs", json={}).json()["status"] == "succeeded"
    return rss(server)


def rss(server: HearthServer) -> int:
    """Resident memory of the server process (not its engine or job processes)."""
    return int(psutil.Process(server.process.pid).memory_info().rss)


class HealthProbe(threading.Thread):
    """GET /health in a loop from its own thread, keeping every answer's latency."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30.0) as probe:
            while not self.stopping.is_set():
                start = time.perf_counter()
                response = probe.get("/health")
                self.latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.02)


@contextmanager
def attacked(server: HearthServer) -> Iterator[HealthProbe]:
    """Probe /health while the body runs; then check it answered quickly and the server lives on."""
    pid = server.process.pid
    probe = HealthProbe(server.base_url)
    probe.start()
    try:
        yield probe
    finally:
        probe.stopping.set()
        probe.join(timeout=60)
    assert server.alive() and server.process.pid == pid, server.output()
    assert not probe.failures, probe.failures[:3]
    assert len(probe.latencies) >= 3
    # Two cores are shared with other work here: the typical answer must be quick, and none slow.
    assert statistics.median(probe.latencies) < HEALTH_S, probe.latencies
    assert max(probe.latencies) < 10 * HEALTH_S, sorted(probe.latencies)[-5:]


def put(client: httpx.Client, text: str) -> httpx.Response:
    """PUT `text` under the name its `name:` line gives, made unique."""
    base = text.split("name:", 1)[1].split()[0]
    name = unique(base)
    return client.put(f"/v1/workflows/{name}", content=text.replace(f"name: {base}", f"name: {name}", 1), headers=YAML)


def assert_refused(response: httpx.Response, status: int, setting: str) -> None:
    """A 4xx in OpenAI's error shape whose code and message name `setting`."""
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == f"{setting}_exceeded", error
    assert f"`{setting}`" in error["message"]


def nested(depth: int, style: str) -> str:
    """A value nested `depth` levels in YAML `style`."""
    if style == "flow-mappings":
        return "{k: " * depth + "1" + "}" * depth
    if style == "flow-lists":
        return "[" * depth + "1" + "]" * depth
    if style == "unclosed":
        return "{a: [" * (depth // 2 + 1)
    if style == "block":
        # Each level is a longer line: kept under the server's 8 MiB body limit.
        depth = min(depth, 1500)
        return "\n" + "".join(" " * (2 * level + 8) + "k:\n" for level in range(depth)) + " " * (2 * depth + 8) + "1"
    # Mixed: block lists holding flow mappings (as many block levels as fit under 8 MiB).
    half = min(depth // 2 + 1, 1500)
    return (
        "\n"
        + "".join(" " * (2 * level + 8) + "-\n" for level in range(half))
        + " " * (2 * half + 8)
        + ("{k: " * half + "1" + "}" * half)
    )


def deep_definition(depth: int, style: str) -> str:
    return f"name: deep\nsteps:\n  out:\n    tool: format_json\n    with:\n      value: {nested(depth, style)}\n"


def test_deep_and_huge_definitions_are_refused_at_once(
    server: HearthServer, client: httpx.Client, baseline_rss: int
) -> None:
    with attacked(server):

        @given(
            depth=st.integers(min_value=MAX_DEPTH + 1, max_value=60_000),
            style=st.sampled_from(["flow-mappings", "flow-lists", "unclosed", "block", "mixed"]),
        )
        @settings(max_examples=25, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
        def examples(depth: int, style: str) -> None:
            text = deep_definition(depth, style)
            start = time.perf_counter()
            response = put(client, text)
            assert time.perf_counter() - start < REFUSAL_S
            if len(text.encode()) > MAX_BYTES:
                assert_refused(response, 413, "workflow_max_bytes")
            else:
                assert_refused(response, 400, "workflow_max_depth")

        examples()
    # What the issue sent: 50,000 levels of flow mappings in 100 KB, and ~600 levels.
    assert_refused(put(client, deep_definition(600, "flow-mappings")), 400, "workflow_max_depth")
    assert_refused(put(client, deep_definition(50_000, "flow-mappings")), 413, "workflow_max_bytes")


def test_shallow_nesting_is_still_accepted(client: httpx.Client) -> None:
    for style in ("flow-mappings", "flow-lists", "block", "mixed"):
        assert put(client, deep_definition(8, style)).status_code == 200, style


def test_too_many_steps_are_refused(server: HearthServer, client: httpx.Client) -> None:
    with attacked(server):

        @given(steps=st.integers(min_value=MAX_STEPS + 1, max_value=20_000))
        @settings(max_examples=10, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
        def examples(steps: int) -> None:
            text = "name: many\nsteps:\n  s0: {tool: format_json, with: {value: 1}}\n" + "".join(
                f"  s{i}: {{tool: format_json, with: {{value: '{{{{ steps.s{i - 1} }}}}'}}}}\n" for i in range(1, steps)
            )
            start = time.perf_counter()
            response = put(client, text)
            assert time.perf_counter() - start < REFUSAL_S
            if len(text.encode()) > MAX_BYTES:
                assert_refused(response, 413, "workflow_max_bytes")
            else:
                assert_refused(response, 400, "workflow_max_steps")

        examples()


def _run(client: httpx.Client, name: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(f"/v1/workflows/{name}/runs", json={"inputs": inputs or {}})
    assert response.status_code == 200, response.text[:500]
    record: dict[str, Any] = response.json()
    return record


HOSTILE_TEMPLATES = st.one_of(
    # Nested loops: the issue's `range(100000)` inside `range(100000)`, and variations.
    st.builds(
        lambda sizes: (
            "".join(f"{{% for i{n} in range({size}) %}}" for n, size in enumerate(sizes))
            + "x"
            + "{% endfor %}" * len(sizes)
        ),
        st.lists(st.integers(min_value=2_000, max_value=100_000), min_size=2, max_size=4),
    ),
    # A string multiplied past the limit by replace (method or filter), padding or joining.
    st.builds(
        lambda m, k, form: form.format(m=m, k=k),
        st.integers(min_value=1_000, max_value=1_000_000),
        st.integers(min_value=1_001, max_value=100_000),
        st.sampled_from(
            [
                "{{{{ ('x' * {m}).replace('x', 'y' * {k}) }}}}",
                "{{{{ ('x' * {m})|replace('x', 'y' * {k}) }}}}",
                "{{{{ 'x'|center({m} * {k}) }}}}",
                "{{{{ ('x' * {m}).ljust({m} * {k}) }}}}",
            ]
        ),
    ),
    # Doubling through a namespace: no single call is large, the total is.
    st.builds(
        lambda times: (
            "{% set ns = namespace(s='xxxxxxxx') %}"
            f"{{% for i in range({times}) %}}{{% set ns.s = ns.s ~ ns.s %}}{{% endfor %}}{{{{ ns.s|length }}}}"
        ),
        st.integers(min_value=40, max_value=200),
    ),
)


def test_hostile_templates_fail_their_run_and_nothing_else(
    server: HearthServer, client: httpx.Client, baseline_rss: int
) -> None:
    with attacked(server):

        @given(template=HOSTILE_TEMPLATES)
        @settings(max_examples=12, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
        def examples(template: str) -> None:
            text = "name: tpl\nsteps:\n  out:\n    tool: format_json\n    with:\n      value: " + repr(template) + "\n"
            stored = put(client, text)
            assert stored.status_code == 200, stored.text[:500]
            start = time.perf_counter()
            record = _run(client, stored.json()["name"])
            assert time.perf_counter() - start < TIMEOUT_S + 5
            assert record["status"] == "failed", str(record)[:500]
            message = record["steps"]["out"]["error"]
            assert "template error" in message and "setting `workflow_" in message, message

        examples()
    # The same server still renders honest templates.
    name = put(
        client, "name: ok\ninputs: {w: {}}\nsteps:\n  out: {tool: format_json, with: {value: '{{ inputs.w }}!'}}\n"
    )
    record = _run(client, name.json()["name"], {"w": "fine"})
    assert record["status"] == "succeeded" and record["outputs"]["out"] == '"fine!"'


def test_format_json_indent_is_bounded(client: httpx.Client) -> None:
    response = put(client, "name: indent\nsteps:\n  out: {tool: format_json, with: {value: [1], indent: 2000000}}\n")
    assert response.status_code == 400 and "workflow_max_indent" in response.json()["error"]["message"]
    stored = put(
        client,
        "name: indent\ninputs: {n: {type: integer}}\n"
        "steps:\n  out: {tool: format_json, with: {value: [1], indent: '{{ inputs.n }}'}}\n",
    )
    assert stored.status_code == 200, stored.text
    record = _run(client, stored.json()["name"], {"n": 2_000_000})
    assert record["status"] == "failed" and "workflow_max_indent" in record["steps"]["out"]["error"]
    assert _run(client, stored.json()["name"], {"n": 2})["status"] == "succeeded"


DOCUMENT_FLOW = (
    "name: doc\ninputs: {doc: {type: file}}\nsteps:\n  text: {tool: extract_text, with: {file: '{{ inputs.doc }}'}}\n"
)


def _upload(client: httpx.Client, name: str, filename: str, data: bytes) -> dict[str, Any]:
    response = client.post(f"/v1/workflows/{name}/runs", files={"doc": (filename, data)})
    assert response.status_code == 200, response.text[:500]
    record: dict[str, Any] = response.json()
    return record


def docx_bomb(unpacked: int) -> bytes:
    """A real .docx with one more part of `unpacked` zero bytes (it deflates to a few KB)."""
    buffer = io.BytesIO(docx_bytes(["A bomb."]))
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/padding.bin", bytes(unpacked))
    return buffer.getvalue()


def test_document_bombs_and_long_texts_are_bounded(
    server: HearthServer, client: httpx.Client, baseline_rss: int, tmp_path: Path
) -> None:
    name = put(client, DOCUMENT_FLOW).json()["name"]
    with attacked(server):
        bomb = docx_bomb(50 * 1024 * 1024)
        assert len(bomb) < 200_000
        record = _upload(client, name, "bomb.docx", bomb)
        assert record["status"] == "failed" and "workflow_extract_max_bytes" in record["steps"]["text"]["error"]
        # A long text is cut at the extraction limit, and the record keeps less still, both marked.
        record = _upload(client, name, "long.txt", ("word " * 60_000).encode())
    assert record["status"] == "succeeded", str(record)[:500]
    kept = record["steps"]["text"]["output"]
    assert isinstance(kept, str) and "workflow_record_output_bytes" in kept
    assert len(kept.encode()) <= RECORD_BYTES
    stored = httpx.get(f"{server.base_url}/v1/workflows/{name}/runs/{record['id']}").json()
    assert stored["steps"]["text"]["output"] == kept
    runs = server.home / "workflows" / "runs"
    assert all(path.stat().st_size < 4 * RECORD_BYTES for path in runs.glob("run_*.json"))


def test_memory_is_back_after_the_attacks(server: HearthServer, baseline_rss: int) -> None:
    # Runs in the module's order: after every attack above.
    time.sleep(0.5)
    assert rss(server) <= baseline_rss * 1.10, (rss(server), baseline_rss)
