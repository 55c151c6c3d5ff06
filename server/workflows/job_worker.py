"""A job process of server/workflows/jobs.py: caps its memory, then answers jobs one at a time.

`python -m server.workflows.job_worker MEMORY_MB`. Each request on stdin is a length-prefixed
pickle of `(job, args)`; each answer on stdout a tagged outcome: `("ok", value)`, or the job's
refusal (`"problems"`, `"limit"`, `"step"`), or `"memory"` / `"error"`. The parent trusts nothing
it did not ask for: it kills this process when a job outlives its time budget.
"""

from __future__ import annotations

import contextlib
import pickle
import resource
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from jinja2 import TemplateError

from server.settings import WorkflowSettings
from server.workflows.gateway import StepFailed
from server.workflows.jobs import READY
from server.workflows.limits import LimitError, check_depth
from server.workflows.loader import WorkflowError, parse
from server.workflows.templates import bounded_environment, render, render_text
from server.workflows.tools import FileInput, extract
from server.workflows.validate import Plan, check

_HEADER = struct.Struct("!Q")


def plan(text: str, file: str, models: set[str] | None, settings: WorkflowSettings) -> Plan:
    """Scan, parse and check a definition (the bounded version of `validate.load`)."""
    check_depth(text, settings.workflow_max_depth)
    try:
        workflow, positions = parse(text, file)
    except RecursionError:
        raise LimitError(
            "The workflow definition nests too deeply to parse",
            setting="workflow_max_depth",
            limit=settings.workflow_max_depth,
        ) from None
    if len(workflow.steps) > settings.workflow_max_steps:
        raise LimitError(
            f"The workflow has {len(workflow.steps)} steps",
            setting="workflow_max_steps",
            limit=settings.workflow_max_steps,
        )
    return check(workflow, positions, models, settings)


def render_value(value: Any, context: dict[str, Any], settings: WorkflowSettings, text: bool) -> Any:
    """Render a templated value (or, with `text`, a prompt to a string) within the template limits."""
    env = bounded_environment(settings.workflow_template_max_loop, settings.workflow_template_max_chars)
    try:
        return render_text(env, value, context) if text else render(env, value, context)
    except TemplateError as exc:
        raise StepFailed(f"template error: {exc}") from exc
    except (OverflowError, RecursionError) as exc:
        raise StepFailed(f"template error: {type(exc).__name__}: {exc}") from exc


def render_step(
    templates: dict[str, tuple[Any, bool]], context: dict[str, Any], items: list[Any] | None, settings: WorkflowSettings
) -> list[dict[str, Any]]:
    """A step's templates (name -> (template, whether it renders to text)) rendered once, or once
    per item of a `map` (with `item` and `index` bound), each render with the whole loop budget."""
    bindings: list[dict[str, Any]] = [{}] if items is None else [{"item": x, "index": i} for i, x in enumerate(items)]
    return [
        {key: render_value(value, {**context, **extra}, settings, text) for key, (value, text) in templates.items()}
        for extra in bindings
    ]


def extract_text(file: FileInput, settings: WorkflowSettings) -> str:
    """A document's text, at most `workflow_extract_max_chars` of it (the rest cut with a marker)."""
    return extract(file, settings.workflow_extract_max_bytes, settings.workflow_extract_max_chars)


JOBS: dict[str, Callable[..., Any]] = {
    "plan": plan,
    "render": render_value,
    "render_step": render_step,
    "extract": extract_text,
}


def _outcome(job: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        return ("ok", JOBS[job](*args))
    except WorkflowError as exc:
        return ("problems", [(p.message, p.line, p.step, p.file) for p in exc.problems])
    except LimitError as exc:
        return ("limit", exc.what, exc.setting, exc.limit, exc.status)
    except StepFailed as exc:
        return ("step", str(exc))
    except MemoryError:
        return ("memory", "it needed more memory than its budget (setting `workflow_job_memory_mb`)")
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {exc}")


def _limit_memory(megabytes: int) -> None:
    """Cap the address space at what start-up mapped plus `megabytes`."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _read(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def main() -> None:
    """Answer jobs until stdin closes."""
    with contextlib.suppress(OSError, ValueError):
        _limit_memory(int(sys.argv[1]))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    # Whatever a library prints goes to stderr, never into the answers.
    sys.stdout = sys.stderr
    answers.write(READY)
    answers.flush()
    while True:
        try:
            (size,) = _HEADER.unpack(_read(requests, _HEADER.size))
            job, args = pickle.loads(_read(requests, size))
        except (EOFError, KeyboardInterrupt):
            return
        try:
            data = pickle.dumps(_outcome(job, args), protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory", "its result needed more memory than its budget"))
        except Exception as exc:
            data = pickle.dumps(("error", f"its result cannot be sent back: {exc}"))
        answers.write(_HEADER.pack(len(data)) + data)
        answers.flush()


if __name__ == "__main__":
    main()
