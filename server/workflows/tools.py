"""The built-in tools a step can run: extract text, chunk, embed, retrieve, format JSON.

Each tool declares its arguments' types (checked before a run starts) and its output type.
Document parsing uses well-kept libraries (pypdf, python-docx, BeautifulSoup) in a thread, so a
large file does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import msgspec
import numpy as np

from server.workflows.gateway import ModelGateway, StepFailed

# Value types as the validator sees them; "any" matches everything.
Type = str


class FileInput(msgspec.Struct, frozen=True):
    """An uploaded file given as a workflow input."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Arg:
    """One tool argument: the types it accepts and its default (required when there is none)."""

    types: frozenset[Type]
    default: Any = None
    model: bool = False

    @property
    def required(self) -> bool:
        """Whether a step must give it."""
        return self.default is None


ToolFn = Callable[[ModelGateway, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    """A built-in tool: its arguments, its output type and what it does."""

    args: dict[str, Arg]
    output: Type
    run: ToolFn


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _html(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return re.sub(r"\n{3,}", "\n\n", soup.get_text("\n")).strip()


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


def _docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    return "\n".join(paragraph.text for paragraph in document.paragraphs).strip()


_EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    ".txt": _text,
    ".md": _text,
    ".markdown": _text,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}


def extract(file: FileInput) -> str:
    """The text of a document, chosen by its file name's extension."""
    suffix = PurePosixPath(file.filename).suffix.lower()
    extractor = _EXTRACTORS.get(suffix)
    if extractor is None:
        if file.content_type.startswith("text/"):
            extractor = _html if "html" in file.content_type else _text
        else:
            known = ", ".join(sorted(_EXTRACTORS))
            raise StepFailed(f"cannot extract text from `{file.filename}`: supported types are {known}")
    try:
        return extractor(file.data)
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed(f"cannot read `{file.filename}`: {exc}") from exc


async def _extract_text(_: ModelGateway, args: dict[str, Any]) -> str:
    value = args["file"]
    if isinstance(value, str):
        return value
    if not isinstance(value, FileInput):
        raise StepFailed("`file` must be an uploaded file or a text")
    return await asyncio.to_thread(extract, value)


def split(text: str, size: int, overlap: int) -> list[str]:
    """Split `text` into pieces of at most `size` characters, on paragraph, sentence or word
    boundaries where it can, each starting `overlap` characters before the previous one ended."""
    if size < 1 or not 0 <= overlap < size:
        raise StepFailed("chunk needs size >= 1 and 0 <= overlap < size")
    words = re.findall(r"\S+\s*", text)
    chunks: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + len(word.rstrip()) > size:
            chunks.append(current.strip())
            # The overlap is whole words from the end of the chunk just closed.
            tail = current[len(current) - overlap :] if overlap else ""
            current = tail[tail.find(" ") + 1 :] if " " in tail else ""
        while len(word) > size:
            chunks.append(word[:size])
            word = word[size:]
        current += word
    if current.strip():
        chunks.append(current.strip())
    return chunks


async def _chunk(_: ModelGateway, args: dict[str, Any]) -> list[str]:
    texts = args["text"] if isinstance(args["text"], list) else [args["text"]]
    return [piece for text in texts for piece in split(str(text), int(args["size"]), int(args["overlap"]))]


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise StepFailed(f"`{name}` must be a text or a list of texts")


async def _embed(gateway: ModelGateway, args: dict[str, Any]) -> list[list[float]]:
    return await gateway.embed(str(args["model"]), _strings(args["texts"], "texts"))


async def _retrieve(gateway: ModelGateway, args: dict[str, Any]) -> list[str]:
    documents = _strings(args["documents"], "documents")
    if not documents:
        return []
    model = str(args["model"])
    vectors = args.get("embeddings") or await gateway.embed(model, documents)
    if len(vectors) != len(documents):
        raise StepFailed(f"{len(vectors)} embeddings for {len(documents)} documents")
    query = np.asarray((await gateway.embed(model, [str(args["query"])]))[0], dtype=np.float32)
    matrix = np.asarray(vectors, dtype=np.float32)
    # Cosine similarity; the norms guard against models that do not normalize.
    scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query) + 1e-12)
    order = np.argsort(-scores, kind="stable")[: int(args["top_k"])]
    return [documents[i] for i in order]


def _parse_json(value: Any) -> Any:
    """A JSON text becomes data; text around a fenced or bare JSON value (model output) is dropped."""
    if not isinstance(value, str):
        return value
    fenced = re.search(r"```(?:json)?\s*(.*?)```", value, re.DOTALL)
    candidate = fenced.group(1) if fenced else value
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        return value


async def _format_json(_: ModelGateway, args: dict[str, Any]) -> str:
    return json.dumps(_parse_json(args["value"]), indent=int(args["indent"]) or None, ensure_ascii=False, default=str)


_ANY = frozenset({"any"})
_TEXT = frozenset({"string"})
_LIST = frozenset({"list"})
_INT = frozenset({"integer"})

TOOLS: dict[str, Tool] = {
    "extract_text": Tool({"file": Arg(frozenset({"file", "string"}))}, "string", _extract_text),
    "chunk": Tool(
        {"text": Arg(frozenset({"string", "list"})), "size": Arg(_INT, 800), "overlap": Arg(_INT, 100)},
        "list",
        _chunk,
    ),
    "embed": Tool({"texts": Arg(frozenset({"string", "list"})), "model": Arg(_TEXT, model=True)}, "list", _embed),
    "retrieve": Tool(
        {
            "query": Arg(_TEXT),
            "documents": Arg(_LIST),
            "embeddings": Arg(_LIST, default=[]),
            "model": Arg(_TEXT, model=True),
            "top_k": Arg(_INT, 3),
        },
        "list",
        _retrieve,
    ),
    "format_json": Tool({"value": Arg(_ANY), "indent": Arg(_INT, 2)}, "string", _format_json),
}


async def run_tool(name: str, gateway: ModelGateway, args: dict[str, Any]) -> Any:
    """Run tool `name` with `args` (rendered), its defaults filled in."""
    tool = TOOLS[name]
    full = {key: args.get(key, arg.default) for key, arg in tool.args.items()}
    return await tool.run(gateway, full)
