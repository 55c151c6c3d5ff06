"""`hearth serve`: its flags, generated from `Settings` (one per field, help from the field's doc)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import sys
from typing import TYPE_CHECKING, Any

from msgspec import inspect

from server.commands.common import Commands
from server.settings import Settings

if TYPE_CHECKING:
    from server.serving.prestart import Prestart


def _unwrap(kind: inspect.Type) -> tuple[inspect.Type, str]:
    """A field's type without its `Meta`, and the description the `Meta` gives."""
    if isinstance(kind, inspect.Metadata):
        return kind.type, (kind.extra_json_schema or {}).get("description", "")
    return kind, ""


def _argument(field: inspect.Field) -> dict[str, Any]:
    """argparse keywords for one setting: its type, choices and help."""
    kind, doc = _unwrap(field.type)
    default = "none" if field.default in (None, "") else field.default
    if isinstance(default, bool):
        default = "on" if default else "off"
    # argparse formats help with %, so a literal % must be doubled.
    keywords: dict[str, Any] = {"help": f"{doc} (default: {default})".replace("%", "%%"), "default": None}
    if isinstance(kind, inspect.BoolType):
        keywords["action"] = argparse.BooleanOptionalAction
    elif isinstance(kind, inspect.IntType):
        keywords["type"] = int
    elif isinstance(kind, inspect.FloatType):
        keywords["type"] = float
    elif isinstance(kind, inspect.LiteralType):
        keywords["choices"] = list(kind.values)
    return keywords


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (`--kv-cache-gb`), grouped by section; unset flags stay None."""
    info = inspect.type_info(Settings)
    assert isinstance(info, inspect.StructType)
    for section in info.fields:
        kind = section.type
        assert isinstance(kind, inspect.StructType)
        group = parser.add_argument_group(section.name, (kind.cls.__doc__ or "").split("\n")[0])
        for field in kind.fields:
            group.add_argument("--" + field.name.replace("_", "-"), dest=field.name, **_argument(field))


def register(commands: Commands) -> None:
    """Add `hearth serve` and its generated flags."""
    parser = commands.add_parser(
        "serve",
        help="serve models over the OpenAI API",
        description="Serve models over the OpenAI API. Every flag can also be set as a "
        "HEARTH_<NAME> environment variable or in $HEARTH_HOME/config.yaml (as `name: value`, or "
        "under its section: `scheduler: {max_queue: 4}`).",
    )
    parser.add_argument("--config", help="config file (default $HEARTH_HOME/config.yaml)")
    add_setting_flags(parser)
    parser.set_defaults(run=serve)


def configure_logging(settings: Settings) -> None:
    """Log to stderr and to $HEARTH_HOME/logs/hearth.log, with control characters escaped."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    from server.http.log_escape import EscapeControlFilter
    from server.http.observability import JsonFormatter, RequestIdFilter

    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(text)
    file = logging.handlers.RotatingFileHandler(settings.log_dir / "hearth.log", maxBytes=10_000_000, backupCount=3)
    # The file is for machines (one JSON object per line, with request ids); stderr for people.
    file.setFormatter(JsonFormatter() if settings.server.log_file_format == "json" else text)
    file.addFilter(RequestIdFilter())
    # A client's newline must not start a line of its own (a forged record) on either.
    for handler in (stderr, file):
        handler.addFilter(EscapeControlFilter())
    root = logging.getLogger()
    root.setLevel(settings.server.log_level.upper())
    root.addHandler(stderr)
    root.addHandler(file)


def serve(settings: Settings, args: argparse.Namespace | None = None) -> int:
    """Run the server until interrupted."""
    from server.serving.prestart import prestart

    # Before the web framework is imported: the model loads while the app is built.
    prestarted = prestart(settings)
    try:
        return _serve(settings, prestarted)
    finally:
        prestarted.discard()


def _serve(settings: Settings, prestarted: Prestart) -> int:
    import uvicorn

    from server.app import create_app, hearth_version
    from server.commands.banner import ReadyServer, announce
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
        app = create_app(settings, prestarted=prestarted)
    except ServicesError as exc:
        # A wrong services file stops the server before it binds: serving half of it would hide the mistake.
        print(f"hearth: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        log_level=settings.server.log_level,
        access_log=False,
        # The drain has ended every request by then; this only bounds a second, impatient signal.
        timeout_graceful_shutdown=5,
        **tls,
    )
    server = ReadyServer(config, app.state.drain, announce(settings, app, hearth_version()))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stopped on
        server.run()
    # As uvicorn.run: a server that never started (its lifespan failed, the port was taken) is a failure.
    return 0 if server.started else 3
