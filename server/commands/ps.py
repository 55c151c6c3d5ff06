"""`hearth ps` (the models a running server holds, from GET /v1/status) and `hearth stop MODEL`
(POST /v1/status/unload: unloaded now, or when its running requests end; it loads again on use)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from server.commands.client import ServerError, add_url_flag, call, server_url
from server.commands.output import add_json_flag, duration, print_json, print_table, size

if TYPE_CHECKING:
    from server.commands.common import Commands
    from server.settings import Settings

COLUMNS = ("name", "model", "state", "device", "pid", "memory", "reserved", "active", "queued", "idle", "expires")


def status_rows(status: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per model of a /v1/status body, in `COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for m in status["models"]:
        if m["state"] != "loaded":
            expires = "-"
        elif m["keep_alive_seconds"] is None:
            expires = "never"
        else:
            expires = duration(m["expires_in_seconds"])
        rows.append(
            (
                m["id"],
                m["model"],
                m["state"],
                m["device"],
                str(m["pid"] or "-"),
                size(m["rss_bytes"]) if m.get("rss_bytes") else "-",
                size(m["memory_bytes"]) if m["memory_bytes"] else "-",
                str(m["active"]),
                str(m["queued"]),
                duration(m["idle_seconds"]),
                expires,
            )
        )
    return rows


def _ps(settings: Settings, args: argparse.Namespace) -> int:
    try:
        status = call("GET", server_url(settings, args.url), "/v1/status")
    except ServerError as exc:
        print(f"hearth ps: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json(status)
        return 0
    used, budget = status["memory_used_bytes"], status["memory_budget_bytes"]
    print_table(COLUMNS, status_rows(status))
    print(f"memory: {size(used)} of {size(budget)} budget")
    return 0


def _stop(settings: Settings, args: argparse.Namespace) -> int:
    try:
        line = call("POST", server_url(settings, args.url), "/v1/status/unload", {"model": args.model_name})
    except ServerError as exc:
        print(f"hearth stop: {exc}", file=sys.stderr)
        return 2 if exc.status in (400, 404) else 1
    if args.json:
        print_json(line)
    elif line["state"] == "loaded":
        print(f"{args.model_name} unloads when its {line['active'] + line['queued']} running requests end")
    else:
        print(f"stopped {args.model_name}")
    return 0


def register(commands: Commands) -> None:
    """Add `hearth ps` and `hearth stop`."""
    parser = commands.add_parser("ps", help="list the models a running server serves and has loaded")
    # --host/--port name the server like the serve settings of the same names.
    parser.add_argument("--host", help="the server's address (default: the serve setting)")
    parser.add_argument("--port", type=int, help="the server's port (default: the serve setting)")
    add_url_flag(parser)
    add_json_flag(parser)
    parser.set_defaults(run=_ps)

    parser = commands.add_parser("stop", help="unload a model from a running server (it loads again on use)")
    parser.add_argument("model_name", metavar="MODEL", help="the model to unload (see `hearth ps`)")
    add_url_flag(parser)
    add_json_flag(parser)
    parser.set_defaults(run=_stop)
