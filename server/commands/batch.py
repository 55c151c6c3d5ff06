"""`hearth batch submit / ls / show / cancel / results`: the Batch API from the command line.

Talks to a running server (the serve settings' address, or `--url`; the key from `HEARTH_API_KEY`).
`submit --wait` shows a progress bar of the lines answered until the batch ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from server.commands.client import auth_headers
from server.commands.common import Commands, local_url
from server.settings import Settings

OK, FAILED, USAGE = 0, 1, 2
_FINAL = ("completed", "failed", "expired", "cancelled")


def register(commands: Commands) -> None:
    """Add `hearth batch` and its subcommands."""
    parser = commands.add_parser("batch", help="submit and follow batches of requests (the Batch API)")
    parser.add_argument("--url", help="the server's base URL (default: the serve settings' address)")
    sub = parser.add_subparsers(dest="batch_command", required=True)
    submit = sub.add_parser("submit", help="upload a JSONL file of requests and start a batch")
    submit.add_argument("file", type=Path)
    submit.add_argument("--endpoint", help="default: the url of the file's first line")
    submit.add_argument("--wait", action="store_true", help="follow it with a progress bar until it ends")
    submit.set_defaults(run=_submit)
    ls = sub.add_parser("ls", help="list batches")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=_ls)
    for name, run, what in (("show", _show, "a batch's state"), ("cancel", _cancel, "cancel a batch")):
        p = sub.add_parser(name, help=what)
        p.add_argument("id")
        p.set_defaults(run=run)
    results = sub.add_parser("results", help="print a batch's output (and with --errors its error) lines")
    results.add_argument("id")
    results.add_argument("--errors", action="store_true")
    results.set_defaults(run=_results)


def _client(settings: Settings, args: argparse.Namespace) -> httpx.Client:
    base = (args.url or local_url(settings)).rstrip("/")
    return httpx.Client(base_url=f"{base}/v1", headers=auth_headers(), timeout=60)


def _call(settings: Settings, args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with _client(settings, args) as client:
        response = client.request(method, path, **kwargs)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise _Failure(f"{response.status_code}: {message}")
    media = response.headers.get("content-type", "").split(";")[0].strip()
    return response.json() if media == "application/json" else response.text


class _Failure(Exception):
    pass


def _guarded(run: Any) -> Any:
    def wrapper(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return int(run(settings, args))
        except _Failure as exc:
            print(f"hearth batch: {exc}", file=sys.stderr)
            return FAILED
        except httpx.HTTPError as exc:
            print(f"hearth batch: no server answers: {exc}", file=sys.stderr)
            return FAILED

    return wrapper


@_guarded
def _submit(settings: Settings, args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    endpoint = args.endpoint
    if endpoint is None:
        first = next((line for line in data.splitlines() if line.strip()), b"{}")
        try:
            endpoint = json.loads(first).get("url", "/v1/chat/completions")
        except (ValueError, AttributeError):
            endpoint = "/v1/chat/completions"
    file = _call(settings, args, "POST", "/files", files={"file": (args.file.name, data)}, data={"purpose": "batch"})
    body = {"input_file_id": file["id"], "endpoint": endpoint, "completion_window": "24h"}
    batch = _call(settings, args, "POST", "/batches", json=body)
    print(batch["id"])
    return _follow(settings, args, batch["id"]) if args.wait else OK


def _follow(settings: Settings, args: argparse.Namespace, batch_id: str) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("validating", total=None)
        while True:
            batch = _call(settings, args, "GET", f"/batches/{batch_id}")
            counts = batch["request_counts"]
            done = counts["completed"] + counts["failed"]
            progress.update(task, description=batch["status"], completed=done, total=counts["total"] or None)
            if batch["status"] in _FINAL:
                break
            time.sleep(0.5)
    print(f"{batch_id}: {batch['status']} ({counts['completed']} completed, {counts['failed']} failed)")
    return OK if batch["status"] == "completed" else FAILED


@_guarded
def _ls(settings: Settings, args: argparse.Namespace) -> int:
    batches = _call(settings, args, "GET", "/batches", params={"limit": 100})["data"]
    if args.json:
        print(json.dumps(batches, indent=2))
        return OK
    from rich.console import Console
    from rich.table import Table

    table = Table("ID", "ENDPOINT", "STATUS", "DONE", "FAILED", "TOTAL", "CREATED", box=None)
    for b in batches:
        c = b["request_counts"]
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["created_at"]))
        table.add_row(
            b["id"], b["endpoint"], b["status"], str(c["completed"]), str(c["failed"]), str(c["total"]), created
        )
    Console().print(table)
    return OK


@_guarded
def _show(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(_call(settings, args, "GET", f"/batches/{args.id}"), indent=2))
    return OK


@_guarded
def _cancel(settings: Settings, args: argparse.Namespace) -> int:
    batch = _call(settings, args, "POST", f"/batches/{args.id}/cancel")
    print(f"{batch['id']}: {batch['status']}")
    return OK


@_guarded
def _results(settings: Settings, args: argparse.Namespace) -> int:
    batch = _call(settings, args, "GET", f"/batches/{args.id}")
    file_id = batch.get("error_file_id" if args.errors else "output_file_id")
    if not file_id:
        return OK if batch["status"] in _FINAL else FAILED
    sys.stdout.write(_call(settings, args, "GET", f"/files/{file_id}/content"))
    return OK
