"""What the `hearth` command and its subcommand modules share (so that neither imports the other)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from server.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_home_flag(parser: argparse.ArgumentParser) -> None:
    """`--home`, for commands that work on Hearth's files rather than a running server."""
    parser.add_argument("--home", help="Hearth's data directory (default ~/.hearth)")


def local_url(settings: Settings) -> str:
    """The base URL of the server these settings describe, seen from this machine."""
    host = settings.server.host
    # A server bound to every address answers on loopback too.
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{settings.server.port}"
