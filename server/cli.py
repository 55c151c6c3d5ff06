"""The `hearth` command: each subcommand lives in `server/commands/` (docs/cli.md).

A command module has `register(commands)`, which adds its subcommand(s) and sets `run`
(Settings, Namespace) -> exit code; adding a command family (`hearth batch`, `hearth bench`) is
one module and its names in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from server.settings import SettingsError, flat_names, load_settings

# Each top-level command and the module of `server.commands` that registers it, in the order
# `hearth --help` lists them: serving and using models first, then the hub, then admin.
# (tests/server/test_cli.py checks that this matches what the modules register.)
COMMANDS: dict[str, str] = {
    "serve": "serve",
    "run": "run",
    "ps": "ps",
    "stop": "ps",
    **dict.fromkeys(("pull", "import", "convert", "ls", "show", "rm", "gc", "verify", "catalog"), "hub"),
    "devices": "devices",
    "workflow": "workflow",
    "keys": "keys",
    "tls": "tls",
    "audit": "audit",
    "batch": "batch",
    "bench": "bench",
}


def version() -> str:
    """`hearth --version`: Hearth's installed version (without importing the server)."""
    try:
        return f"hearth {metadata.version('hearth')}"
    except metadata.PackageNotFoundError:
        return "hearth 0.0.0 (not installed)"


class _Version(argparse.Action):
    """`--version`, its text read only when asked (the package metadata costs ~0.05 s)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(version())
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command tree (also what `hearth completion` reads); with `command` (a key of
    `COMMANDS`), only what that command's module registers: the rest is not even imported."""
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local OpenAI-compatible inference server")
    parser.add_argument("--version", action=_Version, nargs=0, help="print Hearth's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = dict.fromkeys(COMMANDS.values()) if command is None else [COMMANDS[command]]
    for module in modules:
        importlib.import_module(f"server.commands.{module}").register(commands)
    if command is None:
        from server.commands import completion

        completion.register(commands, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hearth` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the named command's module is imported: `hearth serve` launches the model worker as
    # soon as its settings are read, and importing every other command first (HTTP clients, TLS,
    # YAML, rich) put ~0.45 s before that launch (benchmarks/RESULTS.md, session 25).
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
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
