"""The `hearth` command: each subcommand lives in `server/commands/`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from server.commands import audit, batch, bench, devices, keys, ps, serve, tls, workflow
from server.commands import hub as hub_commands
from server.settings import SettingsError, flat_names, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hearth` console script."""
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local OpenAI-compatible inference server")
    commands = parser.add_subparsers(dest="command", required=True)
    # Each command module adds its subcommands and sets `run` (Settings, Namespace) -> exit code.
    for command in (serve, hub_commands, devices, ps, workflow, keys, tls, audit, batch, bench):
        command.register(commands)
    args = parser.parse_args(argv)
    run: Callable[..., int] = args.run
    # Flags named like settings override the environment and config file for every command; any
    # other flag belongs to its command alone.
    setting_flags = {*flat_names(), "config"}
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k in setting_flags}
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        parser.error(str(exc))
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
