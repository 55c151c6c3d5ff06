"""Services: named deployments of a model, each with its own defaults, read from a YAML file.

    services:
      - name: chat
        model: smollm2-135m-instruct
        max_tokens: 512
        temperature: 0.7
        priority: 10
      - name: batch
        model: smollm2-135m-instruct
        device: cpu
        keep_alive: 30s

The file comes from `hearth serve --services FILE`, `HEARTH_SERVICES`, or the config file's
`services:` key (a path, or the list itself). A mistake is reported with the file, line and field,
and the server refuses to start. Without services, the server serves `--model` as one service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta

from hub.models import DEFAULT_MODEL_ID, ModelNotFound, ModelSpec, artifact_spec, find_artifact, resolve_model
from hub.store import ArtifactStore

Precision = Literal["auto", "fp32", "fp16", "int8", "int4"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
_DEVICE = re.compile(r"^(?i:auto|cpu|gpu(\.\d+)?|npu|hetero:.+|multi:.+)$")
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


# Hearth's admission priority (higher first): requests, services and workflows share the range.
Priority = Annotated[int, Meta(ge=-1000, le=1000)]


class ServicesError(ValueError):
    """A services file is missing, malformed or invalid; the message names file, line and field."""


def parse_duration(value: float | int | str) -> float:
    """Seconds in an Ollama-style keep-alive: a number of seconds or "300ms", "30s", "5m", "1h".

    A negative value means forever (returned as `inf`); 0 means unload as soon as idle.
    """
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 30, "30s", "5m" or "1h"')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f'`{value}` is not a duration such as 30, "30s", "5m" or "1h"')
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return float("inf") if seconds < 0 else seconds


class Service(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One named deployment: which model, where it runs, and the defaults its requests get."""

    name: Annotated[str, Meta(pattern=_NAME)]
    model: str = DEFAULT_MODEL_ID
    # A .gguf file or an OpenVINO folder; without it the model is looked up by name.
    path: str | None = None
    precision: Precision = "auto"
    device: str | None = None
    context: Annotated[int, Meta(ge=0)] | None = None
    # Memory for this model's KV cache in GB (the server's --kv-cache-gb when unset).
    kv_cache_gb: Annotated[float, Meta(gt=0)] | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    min_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    # Higher is admitted first; a request's own `priority` overrides it.
    priority: Priority = 0
    keep_alive: float | int | str | None = None
    # Requests of this service running at once (0: the server's per-model limit).
    max_concurrency: Annotated[int, Meta(ge=0)] = 0
    # Load at start-up instead of on first use.
    preload: bool = False

    def __post_init__(self) -> None:
        if self.device is not None and not _DEVICE.match(self.device):
            raise ValueError(
                f"unknown device `{self.device}`: use auto, cpu, gpu, gpu.N, npu, hetero:... or multi:..."
                " - at `$.device`"
            )
        if self.keep_alive is not None:
            try:
                parse_duration(self.keep_alive)
            except ValueError as exc:
                # msgspec reports a ValueError from __post_init__ as a ValidationError.
                raise ValueError(f"{exc} - at `$.keep_alive`") from None

    @property
    def keep_alive_s(self) -> float | None:
        """The service's keep-alive in seconds, or None for the server's default."""
        return None if self.keep_alive is None else parse_duration(self.keep_alive)

    def spec(self, store: ArtifactStore | None = None) -> ModelSpec:
        """Where this service's model files are: its `path`, else the installed artifact named
        `model` (of the service's precision, if it names one), else the bundled default model;
        ModelNotFound if they are not on this machine."""
        if self.path is None and store is not None:
            artifact = find_artifact(store, self.model, self.precision)
            if artifact is not None:
                return msgspec.structs.replace(artifact_spec(store, artifact), id=self.name)
        if self.path is None and self.model != DEFAULT_MODEL_ID:
            raise ModelNotFound(
                f"model `{self.model}`{'' if self.precision == 'auto' else f' ({self.precision})'} is not installed: "
                f"run `hearth pull {self.model}`, or give the service a `path` (a .gguf file or model folder)"
            )
        return resolve_model(self.name, self.path)


class ServicesFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The top level of a services file."""

    services: Annotated[list[Service], Meta(min_length=1)]


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _node_at(root: yaml.Node | None, path: str) -> yaml.Node | None:
    """The YAML node at a msgspec error path such as `$.services[1].device` (the deepest found)."""
    node = root
    for key, index in _PATH_PART.findall(path):
        child: yaml.Node | None = None
        if key and isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if child is None:  # an unknown field: point at the mapping that holds it
                child = next((k for k, _ in node.value if getattr(k, "value", None) == key), None)
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            child = node.value[int(index)]
        if child is None:
            break
        node = child
    return node


def _where(source: str, root: yaml.Node | None, path: str) -> str:
    node = _node_at(root, path)
    line = f", line {node.start_mark.line + 1}" if node is not None else ""
    field = path.removeprefix("$").removeprefix(".") or "(top level)"
    return f"{source}{line}, field `{field}`"


def _validate(data: Any, source: str, root: yaml.Node | None) -> list[Service]:
    if isinstance(data, list):
        data = {"services": data}
    try:
        parsed = msgspec.convert(data, ServicesFile, strict=True)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at `")
        if not path:
            raise ServicesError(f"{source}: {exc}") from None
        # A ValueError raised in __post_init__ carries its own path inside the service.
        inner = re.search(r" - at `\$(\.[^`]*)`$", message)
        if inner is not None:
            message = message[: inner.start()]
            path = path.rstrip("`") + inner.group(1) + "`"
        unknown = re.match(r"Object contains unknown field `([^`]+)`$", message)
        if unknown is not None:
            path = path.rstrip("`") + "." + unknown.group(1) + "`"
        raise ServicesError(f"{_where(source, root, path.rstrip('`'))}: {message}") from None
    seen: dict[str, int] = {}
    for i, service in enumerate(parsed.services):
        if service.name in seen:
            where = _where(source, root, f"$.services[{i}].name")
            raise ServicesError(
                f"{where}: service `{service.name}` is defined twice (first as services[{seen[service.name]}])"
            )
        seen[service.name] = i
        try:
            service.spec()
        except ModelNotFound as exc:
            field = "path" if service.path is not None else "model"
            raise ServicesError(f"{_where(source, root, f'$.services[{i}].{field}')}: {exc}") from None
    return parsed.services


def load_services(value: str | list[Any]) -> list[Service]:
    """The services in the file at `value`, or in the inline list `value` (from the config file)."""
    if isinstance(value, list):
        return _validate(value, "the config file's `services`", None)
    path = Path(value).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ServicesError(f"cannot read services file {path}: {exc.strerror or exc}") from None
    source = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ServicesError(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict | list):
        raise ServicesError(f"{source}: expected a mapping with a `services:` list")
    return _validate(data, source, root)


def default_service(model: str, model_path: str | None) -> Service:
    """The one service of a server started without a services file: `--model` under its own id."""
    # `--model NAME` alone names an installed artifact (or the bundled default model).
    return Service(name=model, model=model, path=model_path)
