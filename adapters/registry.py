"""Which backend serves a model format, and on which device.

`device: auto` walks a preference list of accelerators and settles on the first one present,
falling back to the CPU (with a warning) when none is, or when the model fails to compile on the
preferred one. An explicit device that is missing, or that fails, refuses to load with a message
naming what is available. Device lists are passed in, so every path is testable on a machine
that has none of the accelerators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import msgspec

from adapters.base import Backend, EngineOptions
from hub.models import ModelFormat, ModelSpec

log = logging.getLogger(__name__)

BackendName = Literal["openvino", "onnx"]

# Accelerators first, CPU last. For OpenVINO a GPU (integrated or discrete) outruns the NPU on
# token generation; the NPU is chosen only when no GPU is present.
_ACCELERATORS: dict[BackendName, tuple[str, ...]] = {
    "openvino": ("GPU", "NPU"),
    "onnx": ("cuda", "dml"),
}
_CPU: dict[BackendName, str] = {"openvino": "CPU", "onnx": "cpu"}
# OpenVINO's virtual devices take a list of real ones after the colon ("HETERO:GPU,CPU").
_OV_VIRTUAL = ("AUTO:", "HETERO:", "MULTI:")


class DeviceUnavailable(RuntimeError):
    """The device asked for is not on this machine, or the model cannot be compiled for it."""


class DevicePlan(msgspec.Struct, frozen=True, kw_only=True):
    """Devices to try in order, and why the first is what it is (for the log)."""

    backend: BackendName
    candidates: tuple[str, ...]
    auto: bool
    note: str | None = None


def backend_for(model_format: ModelFormat) -> BackendName:
    """The backend that serves `model_format`: OpenVINO for GGUF and IR, ONNX Runtime for ONNX."""
    return "onnx" if model_format == "onnx" else "openvino"


def _present(wanted: str, available: Sequence[str]) -> str | None:
    """The available device matching `wanted` ("GPU" matches "GPU.0"; "GPU.1" only itself)."""
    wanted_up = wanted.upper()
    for device in available:
        if device.upper() == wanted_up:
            return device
    if "." not in wanted_up:
        for device in available:
            if device.upper().split(".", 1)[0] == wanted_up:
                # OpenVINO's plain "GPU" means GPU.0; keep the plain name so the runtime decides.
                return wanted_up
    return None


def plan_devices(backend: BackendName, requested: str, available: Sequence[str]) -> DevicePlan:
    """The devices to try for `requested` given the `available` ones.

    `auto` (any case) gives the best present accelerator, then the CPU as a fallback. Anything else
    is explicit: it must be present (each part of an OpenVINO `HETERO:`/`AUTO:` list too), or this
    raises `DeviceUnavailable`.
    """
    shown = ", ".join(available) or "none"
    if requested.strip().lower() == "auto":
        cpu = _CPU[backend]
        for preferred in _ACCELERATORS[backend]:
            found = _present(preferred, available)
            if found is not None:
                return DevicePlan(backend=backend, candidates=(found, cpu), auto=True)
        note = f"device auto: no accelerator found for {backend} (available: {shown}); using {cpu}"
        return DevicePlan(backend=backend, candidates=(cpu,), auto=True, note=note)
    device = requested.strip()
    if backend == "onnx":
        device = device.lower()
        if device == "gpu":  # one name for whichever GPU provider this build has
            device = next((d for d in ("cuda", "dml") if _present(d, available)), "cuda")
    upper = device.upper()
    if backend == "openvino" and upper.startswith(_OV_VIRTUAL):
        parts = [p for p in upper.split(":", 1)[1].split(",") if p]
        missing = [p for p in parts if _present(p, available) is None]
        if not parts or missing:
            raise DeviceUnavailable(
                f"device {requested!r}: {', '.join(missing) or 'no device listed'} not available "
                f"to {backend} on this machine (available: {shown})"
            )
        return DevicePlan(backend=backend, candidates=(upper,), auto=False)
    found = _present(device, available)
    if found is None:
        raise DeviceUnavailable(
            f"device {requested!r} is not available to {backend} on this machine (available: {shown}); "
            "use --device auto to pick the best device present"
        )
    return DevicePlan(backend=backend, candidates=(found,), auto=False)


def available_devices(backend: BackendName) -> list[str]:
    """The device ids `backend` can use on this machine."""
    from adapters.hardware import onnxruntime_devices, openvino_devices

    probe = openvino_devices if backend == "openvino" else onnxruntime_devices
    return [device.id for device in probe()[1]]


BackendFactory = Callable[[ModelSpec, EngineOptions], Backend]


def _openvino(spec: ModelSpec, options: EngineOptions) -> Backend:
    from adapters.openvino import OpenVINOBackend

    return OpenVINOBackend(spec, options)


def _onnx(spec: ModelSpec, options: EngineOptions) -> Backend:
    from adapters.onnx import ONNXBackend

    return ONNXBackend(spec, options)


FACTORIES: dict[BackendName, BackendFactory] = {"openvino": _openvino, "onnx": _onnx}


class Loaded(NamedTuple):
    """A loaded backend and the warning to log when it is not on the device that was preferred."""

    backend: Backend
    fallback: str | None


def load_backend(
    spec: ModelSpec,
    options: EngineOptions,
    available: Sequence[str] | None = None,
    factories: dict[BackendName, BackendFactory] | None = None,
) -> Loaded:
    """Load `spec` on the device `options.device` resolves to, falling back to the CPU under `auto`."""
    name = backend_for(spec.format)
    factory = (factories or FACTORIES)[name]
    devices = list(available) if available is not None else available_devices(name)
    plan = plan_devices(name, options.device, devices)
    notes = [plan.note] if plan.note else []
    if plan.note:
        log.warning("%s", plan.note)
    for i, device in enumerate(plan.candidates):
        try:
            backend = factory(spec, msgspec.structs.replace(options, device=device))
        except Exception as exc:
            if i + 1 == len(plan.candidates):
                raise DeviceUnavailable(f"cannot load {spec.id} on {device}: {type(exc).__name__}: {exc}") from exc
            notes.append(
                f"device auto: {spec.id} failed to load on {device} ({type(exc).__name__}: {exc}); "
                f"falling back to {plan.candidates[i + 1]}"
            )
            log.warning("%s", notes[-1])
            continue
        return Loaded(backend, "; ".join(notes) or None)
    raise DeviceUnavailable(f"no device to load {spec.id} on")  # unreachable: candidates is never empty
