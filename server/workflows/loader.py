"""YAML text -> `Workflow`, keeping where each key was written so errors can name file and line.

PyYAML's `compose` gives the node tree with marks; the same tree is then constructed into plain
data with the safe constructor, so the positions and the values come from one parse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from server.workflows.definition import Input, Step, Workflow

Path_ = tuple[str | int, ...]
# libyaml's parser where PyYAML has it (linear where the pure-Python one is not); same marks.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, with where it is."""

    message: str
    line: int | None = None
    step: str | None = None
    file: str = "<workflow>"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f" step `{self.step}`:" if self.step else ""
        return f"{where}:{what} {self.message}"


class WorkflowError(Exception):
    """A definition that cannot run, with every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass
class Positions:
    """Line numbers (1-based) of the keys and values of a composed YAML document."""

    root: yaml.Node | None
    file: str = "<workflow>"

    def line(self, *path: str | int) -> int | None:
        """The line of the value at `path` (the key's line for mapping entries), or of the
        deepest part of `path` that exists."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = next((kv for kv in node.value if kv[0].value == part), None)
                if match is None:
                    return line
                line = match[0].start_mark.line + 1
                node = match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def value_line(self, *path: str | int) -> int | None:
        """The line where the value at `path` starts (for block scalars, the line after `|`)."""
        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return self.line(*path)
        if node is None:
            return self.line(*path)
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            return node.start_mark.line + 2
        return node.start_mark.line + 1


_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"?([^\]\"]*)\"?\]")


def _error_path(message: str) -> Path_:
    """The `$.steps.x.prompt` path msgspec puts at the end of its validation messages."""
    at = message.rfind("`$")
    if at < 0:
        return ()
    text = message[at + 2 :].rstrip("`")
    parts: list[str | int] = []
    for name, index, key in _PATH_PART.findall(text):
        parts.append(name or (int(index) if index else key))
    return tuple(parts)


def parse(text: str, file: str = "<workflow>") -> tuple[Workflow, Positions]:
    """Parse and type-check a definition; raise `WorkflowError` with the line of the problem."""
    try:
        # Aliases are refused: `*a` repeated through nested lists (a "billion laughs") would
        # make every later walk over the definition exponential.
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                raise WorkflowError([Problem("YAML aliases (*name) are not supported", line, file=file)])
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorkflowError([Problem(f"not valid YAML: {problem}", line, file=file)]) from exc
    positions = Positions(node, file)
    if node is None:
        raise WorkflowError([Problem("the definition is empty", 1, file=file)])
    loader = yaml.SafeLoader("")
    try:
        data: Any = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise WorkflowError([Problem(f"not valid YAML: {exc}", positions.line(), file=file)]) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise WorkflowError([Problem("a workflow must be a mapping with `name` and `steps`", 1, file=file)])
    # msgspec hides mapping keys in its error paths (`$.steps[...]`): check each step and input
    # on its own first, so that every bad one is reported with its name and line.
    problems: list[Problem] = []
    for section, kind in (("inputs", Input), ("steps", Step)):
        entries = data.get(section)
        for key, value in entries.items() if isinstance(entries, dict) else ():
            try:
                msgspec.convert(value, kind)
            except msgspec.ValidationError as exc:
                path = (section, str(key), *_error_path(str(exc)))
                unknown = re.search(r"unknown field `([^`]+)`", str(exc))
                if unknown:
                    path = (*path, unknown.group(1))
                message = str(exc).replace("`$", f"`$.{section}.{key}")
                problems.append(Problem(message, positions.line(*path), str(key) if section == "steps" else None, file))
    if problems:
        raise WorkflowError(problems)
    try:
        workflow = msgspec.convert(data, Workflow)
    except msgspec.ValidationError as exc:
        path = _error_path(str(exc))
        raise WorkflowError([Problem(str(exc), positions.line(*path), None, file)]) from exc
    return workflow, positions
