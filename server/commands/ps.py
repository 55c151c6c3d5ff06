"""`hearth ps`: the models a running server holds (its GET /v1/status), as a table."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from server.commands.client import auth_headers
from server.commands.common import local_url
from server.settings import Settings

if TYPE_CHECKING:
    from server.commands.common import Commands


def register(commands: Commands) -> None:
    """Add `hearth ps`."""
    parser = commands.add_parser("ps", help="list the models a running server has loaded")
    parser.add_argument("--host", help="the server's address (default: the serve setting)")
    parser.add_argument("--port", type=int, help="the server's port (default: the serve setting)")
    parser.add_argument("--json", action="store_true", help="print the raw status as JSON")
    parser.set_defaults(run=run)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def format_status(status: dict[str, Any]) -> str:
    """The status as an aligned table, one row per service."""
    header = ("NAME", "MODEL", "STATE", "DEVICE", "PID", "MEMORY", "RESERVED", "ACTIVE", "QUEUED", "IDLE", "EXPIRES")
    rows = [header]
    for m in status["models"]:
        memory = f"{m['rss_bytes'] / 2**20:.0f} MB" if m.get("rss_bytes") else "-"
        reserved = f"{m['memory_bytes'] / 2**20:.0f} MB" if m["memory_bytes"] else "-"
        expires = "never" if m["keep_alive_seconds"] is None and m["state"] == "loaded" else m["expires_in_seconds"]
        rows.append(
            (
                m["id"],
                m["model"],
                m["state"],
                m["device"],
                str(m["pid"] or "-"),
                memory,
                reserved,
                str(m["active"]),
                str(m["queued"]),
                _duration(m["idle_seconds"]),
                expires if isinstance(expires, str) else _duration(expires),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    used, budget = status["memory_used_bytes"] / 2**20, status["memory_budget_bytes"] / 2**20
    return "\n".join([*lines, f"memory: {used:.0f} MB of {budget:.0f} MB budget"])


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Ask the server for its status and print it."""
    url = f"{local_url(settings)}/v1/status"
    try:
        request = urllib.request.Request(url, headers=auth_headers())
        with urllib.request.urlopen(request, timeout=10) as response:
            status = json.load(response)
    except (urllib.error.URLError, OSError) as exc:
        print(f"hearth ps: no server answers at {url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0
