"""kb-qa.yaml end to end: chunk, embed and retrieve with all-MiniLM-L6-v2, answer with the chat model."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HearthServer
from tests.server.workflows.conftest import EXAMPLES, YAML, check_record

DOCUMENTS = [
    "The office opens at 9 am on weekdays and stays closed on public holidays. "
    "Visitors sign in at the front desk on the ground floor.",
    "Parking is free for visitors on the second floor of the garage behind the building. "
    "Bicycles can be left in the courtyard.",
    "Lunch is served in the cafeteria from noon to 2 pm. The cafeteria also sells coffee.",
]


@pytest.fixture(scope="module")
def kb_server(request: pytest.FixtureRequest) -> Iterator[HearthServer]:
    """The embeddings tests' server (chat model + all-MiniLM-L6-v2); it needs the `convert` extra
    to prepare the embedding model."""
    if not Path(sys.executable).with_name("optimum-cli").exists():
        pytest.skip("optimum-cli (the `convert` extra) is needed to prepare all-minilm-l6-v2")
    server: HearthServer = request.getfixturevalue("embedding_server")
    yield server


def test_kb_qa_retrieves_the_relevant_passage_and_answers(kb_server: HearthServer) -> None:
    with httpx.Client(base_url=kb_server.base_url, timeout=120) as http:
        stored = http.put("/v1/workflows/kb-qa", content=(EXAMPLES / "kb-qa.yaml").read_text(), headers=YAML)
        assert stored.status_code == 200, stored.text
        inputs = {"question": "Where can visitors park their car?", "documents": DOCUMENTS, "top_k": 2}
        response = http.post("/v1/workflows/kb-qa/runs", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    record = response.json()
    check_record(record)
    steps = record["steps"]
    chunks = steps["chunks"]["output"]
    assert len(chunks) >= len(DOCUMENTS) and all(len(c) <= 400 for c in chunks)
    vectors = steps["vectors"]["output"]
    assert len(vectors) == len(chunks) and {len(v) for v in vectors} == {384}
    passages = record["outputs"]["passages"]
    assert len(passages) == 2 and "Parking" in passages[0]
    assert isinstance(record["outputs"]["answer"], str) and record["outputs"]["answer"]
    assert steps["answer"]["usage"]["completion_tokens"] > 0


def test_kb_qa_through_the_cli(kb_server: HearthServer) -> None:
    from tests.server.commands.test_workflow import hearth

    result = hearth(
        "workflow", "run", str(EXAMPLES / "kb-qa.yaml"), "--url", kb_server.base_url,
        "--input", "question=When is lunch served?", "--input", f"documents={json.dumps(DOCUMENTS)}",
        "--input", "top_k=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert len(outputs["passages"]) == 1 and "Lunch" in outputs["passages"][0]
    for step in ("chunks", "vectors", "passages", "answer"):
        assert f"✓ {step} finished" in result.stderr
