"""What this machine has to run models on: CPU, memory, and the devices each runtime can use.

Every probe is defensive: a runtime that is not installed, or a driver that errors, leaves its
part of the report empty with a note instead of failing `hearth devices` or `GET /v1/system`.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import msgspec
import psutil

log = logging.getLogger(__name__)

# onnxruntime-genai is published under one name per execution provider build.
_ORT_GENAI_PACKAGES = ("onnxruntime-genai", "onnxruntime-genai-cuda", "onnxruntime-genai-directml")
# What each onnxruntime execution provider is called in onnxruntime-genai's config.
_ORT_PROVIDERS = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "DmlExecutionProvider": "dml",
}


class CPUInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The host processor."""

    model: str
    architecture: str
    physical_cores: int | None
    logical_cores: int | None


class MemoryInfo(msgspec.Struct, frozen=True, kw_only=True):
    """System memory in bytes."""

    total_bytes: int
    available_bytes: int


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One device a runtime can run a model on."""

    runtime: str  # "openvino" or "onnxruntime"
    id: str  # what to pass as `device`: "CPU", "GPU.0", "NPU", or an ONNX provider "cpu" / "cuda" / "dml"
    kind: str  # "cpu", "gpu", "npu", or "other"
    name: str
    memory_bytes: int | None = None


class RuntimeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An inference runtime: whether it is installed, its version, and notes on probe failures."""

    name: str
    version: str | None
    error: str | None = None


class SystemInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `hearth devices` prints and `GET /v1/system` returns."""

    os: str
    python: str
    cpu: CPUInfo
    memory: MemoryInfo
    runtimes: list[RuntimeInfo]
    devices: list[DeviceInfo]


def _cpu_model() -> str:
    # platform.processor() is empty or just the architecture on Linux; /proc/cpuinfo has the name.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_info() -> CPUInfo:
    """Name and core counts of the host CPU."""
    return CPUInfo(
        model=_cpu_model(),
        architecture=platform.machine(),
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True) or os.cpu_count(),
    )


def _kind_of(device_id: str) -> str:
    base = device_id.split(".", 1)[0].upper()
    return {"CPU": "cpu", "GPU": "gpu", "NPU": "npu"}.get(base, "other")


def openvino_gpu_possible() -> bool:
    """Whether OpenVINO's GPU plugin could find a device here, judged without loading OpenVINO
    (~0.2 s and ~28 MB): on Linux it needs a DRM render node (/dev/dri/renderD*); elsewhere,
    assume it could."""
    if sys.platform != "linux":
        return True
    try:
        return any(name.startswith("renderD") for name in os.listdir("/dev/dri"))
    except OSError:
        return False


def openvino_devices() -> tuple[RuntimeInfo, list[DeviceInfo]]:
    """The devices OpenVINO's plugins see (`Core().available_devices`) with names and memory."""
    try:
        import openvino
    except ImportError as exc:
        return RuntimeInfo(name="openvino", version=None, error=str(exc)), []
    devices: list[DeviceInfo] = []
    error: str | None = None
    try:
        core = openvino.Core()
        for device_id in core.available_devices:
            name = str(core.get_property(device_id, "FULL_DEVICE_NAME"))
            memory: int | None = None
            if _kind_of(device_id) == "gpu":
                # Only the GPU plugin reports its memory; other plugins raise for this key.
                try:
                    memory = int(core.get_property(device_id, "GPU_DEVICE_TOTAL_MEM_SIZE"))
                except Exception:
                    memory = None
            devices.append(
                DeviceInfo(runtime="openvino", id=device_id, kind=_kind_of(device_id), name=name, memory_bytes=memory)
            )
    except Exception as exc:  # a broken driver must not hide the rest of the report
        log.warning("OpenVINO device probe failed: %s", exc)
        error = f"{type(exc).__name__}: {exc}"
    return RuntimeInfo(name="openvino", version=openvino.__version__, error=error), devices


def _ort_genai_version() -> str | None:
    for package in _ORT_GENAI_PACKAGES:
        try:
            return f"{version(package)} ({package})"
        except PackageNotFoundError:
            continue
    return None


def onnxruntime_devices() -> tuple[RuntimeInfo, list[DeviceInfo]]:
    """The execution providers onnxruntime-genai can use here, as devices for the ONNX backend."""
    genai_version = _ort_genai_version()
    if genai_version is None:
        return RuntimeInfo(name="onnxruntime-genai", version=None, error="not installed"), []
    try:
        import onnxruntime
    except ImportError as exc:
        return RuntimeInfo(name="onnxruntime-genai", version=genai_version, error=str(exc)), []
    devices = [
        DeviceInfo(
            runtime="onnxruntime",
            id=short,
            kind="cpu" if short == "cpu" else "gpu",
            name=provider if short != "cpu" else f"{provider} ({_cpu_model()})",
        )
        for provider in onnxruntime.get_available_providers()
        if (short := _ORT_PROVIDERS.get(provider)) is not None
    ]
    return RuntimeInfo(name="onnxruntime-genai", version=genai_version), devices


def system_info() -> SystemInfo:
    """Probe this machine: CPU, memory, and the devices of every installed runtime."""
    memory = psutil.virtual_memory()
    ov_runtime, ov_devices = openvino_devices()
    ort_runtime, ort_devices = onnxruntime_devices()
    return SystemInfo(
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        cpu=cpu_info(),
        memory=MemoryInfo(total_bytes=memory.total, available_bytes=memory.available),
        runtimes=[ov_runtime, ort_runtime],
        devices=ov_devices + ort_devices,
    )


def format_report(info: SystemInfo) -> str:
    """`info` as the plain-text table `hearth devices` prints."""
    gib = 1024**3
    lines = [
        f"OS:      {info.os} (Python {info.python})",
        f"CPU:     {info.cpu.model} ({info.cpu.architecture}, {info.cpu.physical_cores} cores / "
        f"{info.cpu.logical_cores} threads)",
        f"Memory:  {info.memory.total_bytes / gib:.1f} GiB total, "
        f"{info.memory.available_bytes / gib:.1f} GiB available",
        "",
        "Runtimes:",
    ]
    for runtime in info.runtimes:
        state = runtime.version or "not installed"
        lines.append(f"  {runtime.name:<18} {state}" + (f"  ({runtime.error})" if runtime.error else ""))
    lines += ["", "Devices:", f"  {'runtime':<12} {'device':<8} {'kind':<6} {'memory':>9}  name"]
    for device in info.devices:
        memory = f"{device.memory_bytes / gib:.1f} GiB" if device.memory_bytes else "-"
        lines.append(f"  {device.runtime:<12} {device.id:<8} {device.kind:<6} {memory:>9}  {device.name}")
    return "\n".join(lines)
