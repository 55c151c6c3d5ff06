"""The built-in tools a step can run: extract text, chunk, embed, retrieve, format JSON.

Each tool declares its arguments' types and integer ranges (checked before a run starts, and again
on the rendered values) and its output type. Document parsing uses well-kept libraries (pypdf,
python-docx, BeautifulSoup) in a job process with a time and memory budget (server/workflows/jobs.py),
and its text is cut at `workflow_extract_max_chars`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import msgspec

from server.settings import WorkflowSettings
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
    # The setting whose value is the largest integer it takes (None: no upper bound), and the least.
    most: str | None = None
    least: int | None = None

    @property
    def required(self) -> bool:
        """Whether a step must give it."""
        return self.default is None


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use: the models, the limits, and text extraction in a job process."""

    gateway: ModelGateway
    settings: WorkflowSettings
    extract: Callable[[FileInput], Awaitable[str]]


ToolFn = Callable[[ToolContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    """A built-in tool: its arguments, its output type and what it does."""

    args: dict[str, Arg]
    output: Type
    run: ToolFn


def _text(data: bytes, _: int = 0) -> str:
    return data.decode("utf-8", errors="replace")


def _html(data: bytes, _: int = 0) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return re.sub(r"\n{3,}", "\n\n", soup.get_text("\n")).strip()


def _pdf(data: bytes, _: int = 0) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


def _docx(data: bytes, max_bytes: int) -> str:
    import docx

    # A docx is a zip: what it unpacks to is bounded before any part is parsed (a 1 MB bomb
    # unpacks to gigabytes of XML).
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > max_bytes:
        raise StepFailed(
            f"the document unpacks to {unpacked} bytes; at most {max_bytes} are read"
            " (setting `workflow_extract_max_bytes`)"
        )
    document = docx.Document(io.BytesIO(data))
    return "\n".join(paragraph.text for paragraph in document.paragraphs).strip()


_EXTRACTORS: dict[str, Callable[[bytes, int], str]] = {
    ".txt": _text,
    ".md": _text,
    ".markdown": _text,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}


def truncated(text: str, max_chars: int, setting: str) -> str:
    """`text`, or its first `max_chars` characters and a marker saying how much was cut."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[… {len(text) - max_chars} more characters cut (setting `{setting}`)]"


def extract(file: FileInput, max_bytes: int = 64 * 1024 * 1024, max_chars: int | None = None) -> str:
    """The text of a document, chosen by its file name's extension (run it in a job process: a
    document's cost follows its content), at most `max_chars` of it."""
    text = _extract(file, max_bytes)
    return text if max_chars is None else truncated(text, max_chars, "workflow_extract_max_chars")


def _extract(file: FileInput, max_bytes: int) -> str:
    suffix = PurePosixPath(file.filename).suffix.lower()
    extractor = _EXTRACTORS.get(suffix)
    if extractor is None:
        if file.content_type.startswith("text/"):
            extractor = _html if "html" in file.content_type else _text
        else:
            known = ", ".join(sorted(_EXTRACTORS))
            raise StepFailed(f"cannot extract text from `{file.filename}`: supported types are {known}")
    try:
        return extractor(file.data, max_bytes)
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed(f"cannot read `{file.filename}`: {exc}") from exc


async def _extract_text(context: ToolContext, args: dict[str, Any]) -> str:
    value = args["file"]
    if isinstance(value, str):
        return truncated(value, context.settings.workflow_extract_max_chars, "workflow_extract_max_chars")
    if not isinstance(value, FileInput):
        raise StepFailed("`file` must be an uploaded file or a text")
    return await context.extract(value)


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


async def _chunk(context: ToolContext, args: dict[str, Any]) -> list[str]:
    texts = args["text"] if isinstance(args["text"], list) else [args["text"]]
    most = context.settings.workflow_max_chunks
    pieces: list[str] = []
    for text in texts:
        pieces.extend(split(str(text), int(args["size"]), int(args["overlap"])))
        if len(pieces) > most:
            raise StepFailed(f"chunk would make more than {most} pieces (setting `workflow_max_chunks`)")
    return pieces


def _strings(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise StepFailed(f"`{name}` must be a text or a list of texts")


def _bounded_strings(context: ToolContext, value: Any, name: str) -> list[str]:
    texts = _strings(value, name)
    most = context.settings.workflow_max_chunks
    if len(texts) > most:
        raise StepFailed(f"`{name}` has {len(texts)} texts; at most {most} (setting `workflow_max_chunks`)")
    return texts


async def _embed(context: ToolContext, args: dict[str, Any]) -> list[list[float]]:
    return await context.gateway.embed(str(args["model"]), _bounded_strings(context, args["texts"], "texts"))


async def _retrieve(context: ToolContext, args: dict[str, Any]) -> list[str]:
    import numpy as np

    gateway = context.gateway
    documents = _bounded_strings(context, args["documents"], "documents")
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


async def _format_json(_: ToolContext, args: dict[str, Any]) -> str:
    return json.dumps(_parse_json(args["value"]), indent=int(args["indent"]) or None, ensure_ascii=False, default=str)


_ANY = frozenset({"any"})
_TEXT = frozenset({"string"})
_LIST = frozenset({"list"})
_INT = frozenset({"integer"})

TOOLS: dict[str, Tool] = {
    "extract_text": Tool({"file": Arg(frozenset({"file", "string"}))}, "string", _extract_text),
    "chunk": Tool(
        {
            "text": Arg(frozenset({"string", "list"})),
            "size": Arg(_INT, 800, most="workflow_template_max_chars", least=1),
            "overlap": Arg(_INT, 100, most="workflow_template_max_chars", least=0),
        },
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
            "top_k": Arg(_INT, 3, most="workflow_max_chunks", least=1),
        },
        "list",
        _retrieve,
    ),
    "format_json": Tool(
        {"value": Arg(_ANY), "indent": Arg(_INT, 2, most="workflow_max_indent", least=0)}, "string", _format_json
    ),
}


def out_of_range(arg: Arg, value: Any, settings: WorkflowSettings | None) -> str | None:
    """Why an integer argument is outside its range, or None (also for a value that is not an int)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if arg.least is not None and value < arg.least:
        return f"is {value}; it must be at least {arg.least}"
    if arg.most is not None and settings is not None:
        most: int = getattr(settings, arg.most)
        if value > most:
            return f"is {value}; it may be at most {most} (setting `{arg.most}`)"
    return None


async def run_tool(name: str, context: ToolContext, args: dict[str, Any]) -> Any:
    """Run tool `name` with `args` (rendered), its defaults filled in and its integers in range."""
    tool = TOOLS[name]
    full = {key: args.get(key, arg.default) for key, arg in tool.args.items()}
    for key, arg in tool.args.items():
        if arg.least is not None:
            try:
                full[key] = int(full[key])
            except (TypeError, ValueError, OverflowError):
                raise StepFailed(f"`{key}` of `{name}` must be an integer, got {full[key]!r:.80}") from None
        problem = out_of_range(arg, full[key], context.settings)
        if problem is not None:
            raise StepFailed(f"`{key}` of `{name}` {problem}")
    return await tool.run(context, full)
