"""The `hearth` command."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import msgspec

from server.commands import audit, devices, keys, ps, tls, workflow
from server.commands import hub as hub_commands
from server.settings import Settings, SettingsError, load_settings

# Flags that are settings (or name the config file); any other flag belongs to its command alone.
SETTING_FLAGS = frozenset(f.name for f in msgspec.structs.fields(Settings)) | {"config"}


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_serve(commands: Commands) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve models over the OpenAI API",
        description="Serve models over the OpenAI API. Every flag can also be set as a "
        "HEARTH_<NAME> environment variable or in $HEARTH_HOME/config.yaml.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--home", help="directory for models, config and logs (default ~/.hearth)")
    parser.add_argument("--config", help="config file (default $HEARTH_HOME/config.yaml)")
    parser.add_argument("--model", help="id to serve the model under (default smollm2-135m-instruct)")
    parser.add_argument("--model-path", help="a .gguf file or OpenVINO model folder (default: the bundled model)")
    parser.add_argument(
        "--device",
        help="auto (default: best device present, CPU fallback), or CPU, GPU, NPU, HETERO:GPU,CPU "
        "(OpenVINO) / cpu, cuda, dml (ONNX); see `hearth devices`",
    )
    parser.add_argument("--embedding-model", help="id to serve the embedding model under (default all-minilm-l6-v2)")
    parser.add_argument("--embedding-model-path", help="OpenVINO IR folder of an embedding model (default: none)")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--context-length", type=int, help="cap on the context window (default: the model's)")
    parser.add_argument("--kv-cache-gb", type=float, help="memory for the KV cache in GB (default 1)")
    parser.add_argument(
        "--inference-precision",
        choices=["f32", "bf16", "f16"],
        help="activation precision (default: the device's; bf16 on CPUs that have it)",
    )
    parser.add_argument("--max-num-seqs", type=int, help="most sequences batched at once (default 64)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    # Scheduler and services (docs/scheduler.md, docs/services.md).
    parser.add_argument("--services", help="services file: named deployments of models (docs/services.md)")
    parser.add_argument("--preload", help="services to load at start-up, separated by commas")
    parser.add_argument("--keep-alive-s", type=float, help="seconds a model stays loaded when idle (default 300)")
    parser.add_argument("--memory-budget-gb", type=float, help="memory for all loaded models (default 60%% of RAM)")
    parser.add_argument(
        "--device-memory-fraction", type=float, help="share of each GPU's memory its models may use (default 0.9)"
    )
    parser.add_argument("--max-queue", type=int, help="requests waiting per model before 429 (default 256)")
    parser.add_argument("--queue-timeout-s", type=float, help="longest wait for a slot before 503 (default 300)")
    parser.add_argument(
        "--starvation-s",
        type=float,
        help="a request waiting this long goes ahead of all newer ones, whatever their priority (default 60; 0: off)",
    )
    parser.add_argument("--max-concurrency-per-model", type=int, help="requests running per model (0: no limit)")
    parser.add_argument("--max-concurrency-per-device", type=int, help="requests running per device (0: no limit)")
    # Security (docs/security.md).
    parser.add_argument("--tls", action="store_true", default=None, help="serve HTTPS with `hearth tls init`'s files")
    parser.add_argument("--tls-cert", help="your own server certificate (PEM); implies --tls")
    parser.add_argument("--tls-key", help="the key of --tls-cert (PEM)")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by this CA (mutual TLS)")
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="allow a non-loopback address with no API keys"
    )
    parser.add_argument("--cors-origins", help="comma-separated origins browsers may call from (default: none)")
    parser.set_defaults(run=serve)


def configure_logging(settings: Settings) -> None:
    """Log to stderr and to $HEARTH_HOME/logs/hearth.log."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    level = settings.log_level.upper()
    from server.http.observability import JsonFormatter, RequestIdFilter

    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(text)
    file = logging.handlers.RotatingFileHandler(settings.log_dir / "hearth.log", maxBytes=10_000_000, backupCount=3)
    # The file is for machines (one JSON object per line, with request ids); stderr for people.
    file.setFormatter(JsonFormatter() if settings.log_file_format == "json" else text)
    file.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(stderr)
    root.addHandler(file)


def serve(settings: Settings) -> int:
    """Run the server until interrupted."""
    import uvicorn

    from server.app import create_app
    from server.security.app_security import bind_refusal
    from server.security.tls import TLSError, server_context
    from server.serving.services import ServicesError

    refusal = bind_refusal(settings)
    if refusal is not None:
        print(f"hearth serve: {refusal}", file=sys.stderr)
        return 2
    try:
        ssl_context = server_context(settings)
    except TLSError as exc:
        print(f"hearth serve: {exc}", file=sys.stderr)
        return 2
    tls: dict[str, Any] = {"ssl_context_factory": lambda _config, _default: ssl_context} if ssl_context else {}
    configure_logging(settings)
    try:
        app = create_app(settings)
    except ServicesError as exc:
        # A wrong services file stops the server before it binds: serving half of it would hide the mistake.
        print(f"hearth: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        **tls,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hearth` console script."""
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local OpenAI-compatible inference server")
    commands = parser.add_subparsers(dest="command", required=True)
    # Each command module adds its subcommands and sets `run` (Settings, Namespace) -> exit code;
    # flags named like settings override the environment and config file for every command.
    _add_serve(commands)
    hub_commands.register(commands)
    devices.register(commands)
    ps.register(commands)
    workflow.register(commands)
    keys.register(commands)
    tls.register(commands)
    audit.register(commands)
    args = parser.parse_args(argv)
    run: Callable[..., int] = args.run
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k in SETTING_FLAGS}
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        parser.error(str(exc))
    if run is serve:
        return serve(settings)
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
