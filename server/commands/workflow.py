"""`hearth workflow validate FILE` and `hearth workflow run NAME|FILE`.

Both talk to a running server (`--url`, else `HEARTH_URL`, else the host and port of the settings):
`validate` checks a file here and asks the server which models exist (offline, it checks
everything but the model names); `run FILE` stores the file on the server under its own name
(PUT, replacing an earlier version) and runs it, printing each step's progress as it happens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from server.commands.client import auth_headers
from server.commands.common import local_url
from server.settings import Settings
from server.workflows.limits import LimitError, check_depth, check_size
from server.workflows.loader import WorkflowError, parse

if TYPE_CHECKING:
    from server.commands.common import Commands

TIMEOUT = httpx.Timeout(10.0, read=None)


def register(commands: Commands) -> None:
    """Add `hearth workflow validate|run`."""
    parser = commands.add_parser("workflow", help="validate and run YAML workflows", description=__doc__)
    sub = parser.add_subparsers(dest="workflow_command", required=True)
    validate = sub.add_parser("validate", help="check a workflow file and report every problem")
    validate.add_argument("file", help="the workflow's YAML file")
    validate.add_argument("--url", help="server base URL (default $HEARTH_URL or the configured host:port)")
    validate.add_argument("--offline", action="store_true", help="do not ask a server which models exist")
    validate.set_defaults(run=run_validate)
    run = sub.add_parser("run", help="run a stored workflow (NAME) or a YAML file on the server")
    run.add_argument("workflow", help="a stored workflow's name, or a YAML file to store and run")
    run.add_argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE", help="an input value")
    run.add_argument("--file", "-f", action="append", default=[], metavar="KEY=PATH", help="a file input to upload")
    run.add_argument("--url", help="server base URL (default $HEARTH_URL or the configured host:port)")
    run.add_argument("--tokens", action="store_true", help="also print the text of model steps as it is generated")
    run.add_argument("--json", action="store_true", help="print the whole run record instead of the outputs")
    run.add_argument("--priority", type=int, help="admission priority of its model steps (default: the workflow's)")
    run.set_defaults(run=run_workflow)


def base_url(settings: Settings, url: str | None) -> str:
    """Where the server is: the flag, then HEARTH_URL, then the settings' host and port."""
    if url or os.environ.get("HEARTH_URL"):
        return (url or os.environ["HEARTH_URL"]).rstrip("/")
    return local_url(settings)


def _server_models(url: str) -> set[str] | None:
    try:
        response = httpx.get(f"{url}/v1/models", timeout=5.0, headers=auth_headers())
        response.raise_for_status()
        return {m["id"] for m in response.json()["data"]}
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def run_validate(settings: Settings, args: argparse.Namespace) -> int:
    """Print every problem of a workflow file (exit 1), or that it is valid (exit 0)."""
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"hearth workflow: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    models = None if args.offline else _server_models(base_url(settings, args.url))
    limits = settings.workflows
    try:
        # The server's limits, so that a file it would refuse is reported here too.
        check_size(text, limits.workflow_max_bytes)
        check_depth(text, limits.workflow_max_depth)
    except LimitError as exc:
        print(f"{path}: {exc.message}", file=sys.stderr)
        return 1
    # The checker imports the server's request path: only for this command, not every `hearth` call.
    from server.workflows.validate import check

    try:
        workflow, positions = parse(text, str(path))
        plan = check(workflow, positions, models, limits)
    except WorkflowError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    note = "" if models is not None else " (model names not checked: no server)"
    print(f"{path}: workflow `{plan.workflow.name}` is valid, {len(plan.workflow.steps)} steps{note}")
    return 0


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must be KEY=VALUE, got `{item}`")
        pairs.append((key, value))
    return pairs


def _typed(value: str, kind: str) -> Any:
    """A command-line value as the input's declared type: strings as they are, others as JSON."""
    if kind in ("string", "file"):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _print_event(event: dict[str, Any], tokens: bool, out: TextIO) -> None:
    kind, step = event["type"], event.get("step")
    if kind == "step.started":
        print(f"▶ {step} started", file=out, flush=True)
    elif kind == "step.delta" and tokens:
        out.write(event.get("text") or "")
        out.flush()
    elif kind == "step.finished":
        took = f" in {event['duration_s']:.2f} s" if event.get("duration_s") is not None else ""
        print(f"{chr(10) if tokens else ''}✓ {step} finished{took}", file=out, flush=True)
    elif kind == "step.failed":
        print(f"✗ {step} failed: {event.get('error')}", file=out, flush=True)


def run_workflow(settings: Settings, args: argparse.Namespace) -> int:
    """Run a workflow on the server with live progress; print its outputs (exit 1 if it failed)."""
    url = base_url(settings, args.url)
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT, headers=auth_headers()) as client:
            return _run(client, args)
    except ValueError as exc:
        print(f"hearth workflow: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"hearth workflow: cannot reach the server at {url}: {exc}", file=sys.stderr)
        return 2


def _run(client: httpx.Client, args: argparse.Namespace) -> int:
    name = args.workflow
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        text = path.read_text(encoding="utf-8")
        name = parse(text, str(path))[0].name if _parses(text) else path.stem
        response = client.put(f"/v1/workflows/{name}", content=text, headers={"Content-Type": "application/yaml"})
    else:
        response = client.get(f"/v1/workflows/{name}")
    if response.status_code >= 400:
        print(f"hearth workflow: {_error(response)}", file=sys.stderr)
        return 1
    declared = response.json().get("inputs", {})
    inputs = {k: _typed(v, declared.get(k, {}).get("type", "string")) for k, v in _pairs(args.input, "--input")}
    files = [(k, (Path(p).name, Path(p).read_bytes())) for k, p in _pairs(args.file, "--file")]
    priority: dict[str, int] = {} if args.priority is None else {"priority": args.priority}
    body: dict[str, Any] = (
        {"data": {"inputs": json.dumps(inputs), "stream": "true", **priority}, "files": files}
        if files
        else {"json": {"inputs": inputs, "stream": True, **priority}}
    )
    record: dict[str, Any] = {}
    with client.stream("POST", f"/v1/workflows/{name}/runs", **body) as stream:
        if stream.status_code >= 400:
            stream.read()
            print(f"hearth workflow: {_error(stream)}", file=sys.stderr)
            return 1
        for line in stream.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            if event.get("run"):
                record = event["run"]
            _print_event(event, args.tokens, sys.stderr)
    if not record:
        print("hearth workflow: the stream ended without the run's result", file=sys.stderr)
        return 1
    print(json.dumps(record if args.json else record.get("outputs"), indent=2, ensure_ascii=False))
    if record.get("status") != "succeeded":
        error = record.get("error") or {}
        where = f" at step `{error.get('step')}`" if error.get("step") else ""
        print(
            f"hearth workflow: run {record.get('id')} {record.get('status')}{where}: {error.get('message')}",
            file=sys.stderr,
        )
        return 1
    print(f"hearth workflow: run {record['id']} succeeded in {record['duration_s']:.2f} s", file=sys.stderr)
    return 0


def _parses(text: str) -> bool:
    try:
        parse(text)
    except WorkflowError:
        return False
    return True
