"""The `hearth` command."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from collections.abc import Sequence
from typing import Any

from server.settings import Settings, SettingsError, load_settings


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve models over the OpenAI API",
        description="Serve models over the OpenAI API. Every flag can also be set as a "
        "HEARTH_<NAME> environment variable or in $HEARTH_HOME/config.yaml.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--home", help="directory for models, config and logs (default ~/.hearth)")
    serve.add_argument("--config", help="config file (default $HEARTH_HOME/config.yaml)")
    serve.add_argument("--model", help="id to serve the model under (default smollm2-135m-instruct)")
    serve.add_argument("--model-path", help="a .gguf file or OpenVINO model folder (default: the bundled model)")
    serve.add_argument("--device", help="OpenVINO device: CPU, GPU, NPU, AUTO (default CPU)")
    serve.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    serve.add_argument("--context-length", type=int, help="cap on the context window (default: the model's)")
    serve.add_argument("--kv-cache-gb", type=float, help="memory for the KV cache in GB (default 1)")
    serve.add_argument("--max-num-seqs", type=int, help="most sequences batched at once (default 64)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")


def configure_logging(settings: Settings) -> None:
    """Log to stderr and to $HEARTH_HOME/logs/hearth.log."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    level = settings.log_level.upper()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        logging.handlers.RotatingFileHandler(settings.log_dir / "hearth.log", maxBytes=10_000_000, backupCount=3),
    ]
    root = logging.getLogger()
    root.setLevel(level)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)


def serve(settings: Settings) -> int:
    """Run the server until interrupted."""
    import uvicorn

    from server.app import create_app

    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hearth` console script."""
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local OpenAI-compatible inference server")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    args = parser.parse_args(argv)
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        return serve(settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
