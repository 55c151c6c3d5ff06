"""`hearth workflow validate|run` as a user runs them: the real command against the real server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import HEARTH, REPO_ROOT, HearthServer
from tests.server.workflows.conftest import EXAMPLES
from tests.server.workflows.documents import pdf_bytes


def hearth(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    return subprocess.run(
        [str(HEARTH), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_validate_examples_offline(path: Path) -> None:
    result = hearth("workflow", "validate", "--offline", str(path))
    assert result.returncode == 0, result.stderr
    assert f"workflow `{path.stem}` is valid" in result.stdout and "not checked" in result.stdout


def test_validate_reports_every_problem_with_file_and_line(tmp_path: Path, hearth_server: HearthServer) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "name: broken\nsteps:\n  a: {model: gpt-9, prompt: hi}\n  b: {tool: chunk, with: {text: '{{ steps.zz }}'}}\n"
    )
    result = hearth("workflow", "validate", "--url", hearth_server.base_url, str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{path}:3: step `a`: unknown service or model `gpt-9`")
    assert lines[1].startswith(f"{path}:4: step `b`: missing reference: there is no step `zz`")
    # With the server asked, model names are checked: the examples' models exist there.
    ok = hearth("workflow", "validate", "--url", hearth_server.base_url, str(EXAMPLES / "summarize-translate.yaml"))
    assert ok.returncode == 0 and "not checked" not in ok.stdout


def test_run_a_file_with_live_progress(hearth_server: HearthServer) -> None:
    result = hearth(
        "workflow", "run", str(EXAMPLES / "summarize-translate.yaml"),
        "--url", hearth_server.base_url,
        "--input", "text=Bees make honey from nectar. A hive can hold fifty thousand bees.",
        "--input", "language=Italian",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert set(outputs) == {"title", "summary", "translation"} and all(outputs.values())
    progress = result.stderr
    for step in ("summarize", "title", "translate"):
        assert f"▶ {step} started" in progress and f"✓ {step} finished in" in progress
    assert progress.index("✓ summarize finished") < progress.index("▶ translate started")
    assert "succeeded" in progress.splitlines()[-1]


def test_run_a_stored_workflow_with_an_uploaded_pdf(tmp_path: Path, hearth_server: HearthServer) -> None:
    stored = httpx.put(
        f"{hearth_server.base_url}/v1/workflows/requirements-to-code",
        content=(EXAMPLES / "requirements-to-code.yaml").read_bytes(),
        headers={"Content-Type": "application/yaml"},
    )
    assert stored.status_code == 200, stored.text
    pdf = tmp_path / "spec.pdf"
    pdf.write_bytes(pdf_bytes("The tool shall print the current date in ISO format."))
    result = hearth(
        "workflow", "run", "requirements-to-code",
        "--url", hearth_server.base_url, "--file", f"document={pdf}", "--json", "--priority", "-10",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert record["inputs"]["document"] == "The tool shall print the current date in ISO format."
    assert json.loads(record["outputs"]["report"])["code"] == record["outputs"]["code"]


def test_run_errors_are_reported_not_raised(hearth_server: HearthServer) -> None:
    missing = hearth("workflow", "run", "no-such-workflow", "--url", hearth_server.base_url)
    assert missing.returncode == 1 and "No workflow named `no-such-workflow`" in missing.stderr
    bad_input = hearth(
        "workflow", "run", "requirements-to-code", "--url", hearth_server.base_url, "--input", "nonsense"
    )
    assert bad_input.returncode == 2 and "KEY=VALUE" in bad_input.stderr
    base = hearth_server.base_url
    too_urgent = hearth("workflow", "run", "requirements-to-code", "--url", base, "--priority", "2000")
    assert too_urgent.returncode == 1 and "priority" in too_urgent.stderr, too_urgent.stderr
    down = hearth("workflow", "run", "x", "--url", "http://127.0.0.1:9")
    assert down.returncode == 2 and "cannot reach the server" in down.stderr
