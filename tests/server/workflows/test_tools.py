"""Built-in tools: document text extraction with the real libraries, chunking, retrieval, JSON."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

import pytest

from adapters.base import GenerationRequest
from server.settings import SamplingDefaults, WorkflowSettings
from server.workflows.gateway import StepFailed, TextChunk
from server.workflows.tools import FileInput, ToolContext, extract, run_tool, split
from tests.server.workflows.documents import docx_bytes, pdf_bytes


class BagOfWordsGateway:
    """Embeds by counting a fixed vocabulary: the real embedding model comes from another branch,
    and retrieval's ranking must be checked against vectors whose similarities are known."""

    VOCAB = ("cat", "dog", "rain", "sun", "code")

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def known_models(self) -> set[str]:
        return {"bow"}

    def sampling_defaults(self, model: str) -> SamplingDefaults | None:
        return None

    def generate(self, model: str, request: GenerationRequest, priority: int | None = None) -> AsyncIterator[TextChunk]:
        raise NotImplementedError

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [[float(t.lower().count(w)) for w in self.VOCAB] for t in texts]


def test_extract_txt_md_html_pdf_docx() -> None:
    assert extract(FileInput("a.txt", b"plain words")) == "plain words"
    assert extract(FileInput("a.md", b"# Title\n\nbody")) == "# Title\n\nbody"
    html = (
        b"<html><head><style>p{}</style><script>x()</script></head><body><h1>Spec</h1><p>Must log in.</p></body></html>"
    )
    text = extract(FileInput("a.html", html))
    assert "Spec" in text and "Must log in." in text and "x()" not in text and "p{}" not in text
    assert extract(FileInput("spec.pdf", pdf_bytes("The system shall export CSV."))) == "The system shall export CSV."
    docx = extract(FileInput("spec.docx", docx_bytes(["Requirement one.", "Requirement two."])))
    assert docx == "Requirement one.\nRequirement two."


def test_extract_refuses_unknown_and_broken_files() -> None:
    with pytest.raises(StepFailed, match="supported types are"):
        extract(FileInput("image.png", b"\x89PNG"))
    with pytest.raises(StepFailed, match=r"cannot read `bad\.pdf`"):
        extract(FileInput("bad.pdf", b"not a pdf at all"))


def test_split_respects_size_and_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    chunks = split(text, 100, 20)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split()[0] == "word0" and chunks[-1].endswith("word199")
    # Each chunk starts with words the previous one ended with.
    for before, after in itertools.pairwise(chunks):
        assert after.split()[0] in before.split()
    assert split("", 10, 0) == []
    assert split("x" * 25, 10, 0) == ["x" * 10, "x" * 10, "x" * 5]
    with pytest.raises(StepFailed):
        split("abc", 10, 10)


def _tools(gateway: BagOfWordsGateway, settings: WorkflowSettings | None = None) -> ToolContext:
    """Tools on `gateway`; these tests give no files, so extraction is never asked for."""

    async def no_extraction(file: FileInput) -> str:
        raise AssertionError(f"unexpected extraction of {file.filename}")

    return ToolContext(gateway, settings or WorkflowSettings(), no_extraction)


def test_retrieve_ranks_by_cosine_and_embeds_only_what_it_lacks() -> None:
    gateway = BagOfWordsGateway()
    tools = _tools(gateway)
    docs = ["the cat sat", "rain and more rain", "sun sun sun", "a dog and a cat"]
    args = {"query": "rain today", "documents": docs, "model": "bow", "top_k": 2}
    top = asyncio.run(run_tool("retrieve", tools, args))
    assert top[0] == "rain and more rain" and len(top) == 2
    vectors = asyncio.run(run_tool("embed", tools, {"texts": docs, "model": "bow"}))
    gateway.calls.clear()
    top = asyncio.run(run_tool("retrieve", tools, {**args, "query": "cat", "embeddings": vectors, "top_k": 1}))
    assert top == ["the cat sat"]
    assert gateway.calls == [["cat"]]


def test_format_json_parses_model_output_and_keeps_data() -> None:
    gateway = _tools(BagOfWordsGateway())
    fenced = 'Here it is:\n```json\n{"a": [1, 2]}\n```'
    assert json.loads(asyncio.run(run_tool("format_json", gateway, {"value": fenced}))) == {"a": [1, 2]}
    assert json.loads(asyncio.run(run_tool("format_json", gateway, {"value": {"k": "v"}}))) == {"k": "v"}
    assert json.loads(asyncio.run(run_tool("format_json", gateway, {"value": "not json"}))) == "not json"


def test_tool_integers_are_range_checked_and_chunks_counted() -> None:
    tools = _tools(BagOfWordsGateway(), WorkflowSettings(workflow_max_indent=4, workflow_max_chunks=10))
    with pytest.raises(StepFailed, match="workflow_max_indent"):
        asyncio.run(run_tool("format_json", tools, {"value": {"a": 1}, "indent": 2_000_000}))
    with pytest.raises(StepFailed, match="at least 0"):
        asyncio.run(run_tool("format_json", tools, {"value": {"a": 1}, "indent": -1}))
    with pytest.raises(StepFailed, match="workflow_max_chunks"):
        asyncio.run(run_tool("chunk", tools, {"text": "word " * 100, "size": 5, "overlap": 0}))
    assert len(asyncio.run(run_tool("chunk", tools, {"text": "word " * 10, "size": 5, "overlap": 0}))) == 10
