"""The `hearth` command: each subcommand lives in `server/commands/` (docs/cli.md).

A command module has `register(commands)`, which adds its subcommand(s) and sets `run`
(Settings, Namespace) -> exit code; adding a command family (`hearth batch`, `hearth bench`) is
one module and one entry in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from server.commands import audit, batch, bench, completion, devices, keys, ps, run, serve, tls, workflow
from server.commands import hub as hub_commands
from server.settings import SettingsError, flat_names, load_settings

# In the order `hearth --help` lists them: serving and using models first, then the hub, then admin.
COMMANDS = (serve, run, ps, hub_commands, devices, workflow, keys, tls, audit, batch, bench)


def version() -> str:
    """`hearth --version`: Hearth's installed version (without importing the server)."""
    try:
        return f"hearth {metadata.version('hearth')}"
    except metadata.PackageNotFoundError:
        return "hearth 0.0.0 (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (also what `hearth completion` reads)."""
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local OpenAI-compatible inference server")
    parser.add_argument("--version", action="version", version=version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    completion.register(commands, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hearth` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives a `nargs="*"` positional only the words before the first option; a command
    # whose last positional is free text (`hearth run m --verbose say hi`) names it in
    # `extra_words` and gets the words after the options too.
    words = getattr(args, "extra_words", None)
    if extra and (words is None or any(word.startswith("-") for word in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra and words is not None:
        setattr(args, words, [*(getattr(args, words) or []), *extra])
    run_command: Callable[..., int] = args.run
    # Flags named like settings override the environment and config file for every command; any
    # other flag belongs to its command alone.
    setting_flags = {*flat_names(), "config"}
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k in setting_flags}
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        parser.error(str(exc))
    return run_command(settings, args)


if __name__ == "__main__":
    sys.exit(main())
