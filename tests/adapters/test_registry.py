"""Device choice with injected device lists: the NPU, iGPU, CUDA and DirectML paths this machine lacks."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.base import Backend, EngineOptions
from adapters.openvino import OpenVINOBackend
from adapters.registry import (
    BackendName,
    DeviceUnavailable,
    available_devices,
    backend_for,
    load_backend,
    plan_devices,
)
from hub.models import ModelSpec, resolve_model

INTEL_LAPTOP = ["CPU", "GPU", "NPU"]  # what OpenVINO lists on a Core Ultra laptop
TWO_GPUS = ["CPU", "GPU.0", "GPU.1"]


@pytest.mark.parametrize(
    ("backend", "available", "expected"),
    [
        ("openvino", INTEL_LAPTOP, ("GPU", "CPU")),
        ("openvino", TWO_GPUS, ("GPU", "CPU")),
        ("openvino", ["CPU", "NPU"], ("NPU", "CPU")),
        ("openvino", ["CPU"], ("CPU",)),
        ("onnx", ["cpu", "dml"], ("dml", "cpu")),
        ("onnx", ["cpu", "cuda"], ("cuda", "cpu")),
        ("onnx", ["cpu"], ("cpu",)),
    ],
)
def test_auto_prefers_an_accelerator_then_the_cpu(
    backend: BackendName, available: list[str], expected: tuple[str, ...]
) -> None:
    plan = plan_devices(backend, "auto", available)
    assert plan.auto and plan.candidates == expected
    assert (plan.note is not None) == (len(expected) == 1)


def test_auto_without_accelerator_says_so() -> None:
    note = plan_devices("openvino", "AUTO", ["CPU"]).note
    assert note is not None and "no accelerator" in note and "CPU" in note


@pytest.mark.parametrize(
    ("backend", "requested", "available", "chosen"),
    [
        ("openvino", "npu", INTEL_LAPTOP, "NPU"),
        ("openvino", "GPU", TWO_GPUS, "GPU"),
        ("openvino", "GPU.1", TWO_GPUS, "GPU.1"),
        ("openvino", "HETERO:GPU,CPU", INTEL_LAPTOP, "HETERO:GPU,CPU"),
        ("openvino", "AUTO:NPU,CPU", INTEL_LAPTOP, "AUTO:NPU,CPU"),
        ("onnx", "DML", ["cpu", "dml"], "dml"),
        ("onnx", "gpu", ["cpu", "dml"], "dml"),
        ("onnx", "gpu", ["cpu", "cuda"], "cuda"),
        ("onnx", "CPU", ["cpu"], "cpu"),
    ],
)
def test_explicit_device_that_is_present(
    backend: BackendName, requested: str, available: list[str], chosen: str
) -> None:
    plan = plan_devices(backend, requested, available)
    assert plan.candidates == (chosen,) and not plan.auto


@pytest.mark.parametrize(
    ("backend", "requested", "available", "missing"),
    [
        ("openvino", "NPU", ["CPU", "GPU"], "'NPU'"),
        ("openvino", "GPU.1", ["CPU", "GPU.0"], "'GPU.1'"),
        ("openvino", "HETERO:NPU,CPU", ["CPU", "GPU"], "NPU"),
        ("openvino", "HETERO:", ["CPU"], "no device listed"),
        ("onnx", "cuda", ["cpu"], "'cuda'"),
        ("onnx", "dml", ["cpu", "cuda"], "'dml'"),
    ],
)
def test_explicit_device_that_is_missing_is_refused(
    backend: BackendName, requested: str, available: list[str], missing: str
) -> None:
    with pytest.raises(DeviceUnavailable) as info:
        plan_devices(backend, requested, available)
    message = str(info.value)
    assert missing in message and f"available: {', '.join(available)}" in message


def test_formats_map_to_backends() -> None:
    assert backend_for("gguf") == "openvino"
    assert backend_for("openvino") == "openvino"
    assert backend_for("onnx") == "onnx"


def test_this_machine_has_a_cpu_for_both_runtimes() -> None:
    assert "CPU" in available_devices("openvino")
    assert "cpu" in available_devices("onnx")


@pytest.fixture(scope="module")
def tiny_spec(tiny_ir_dir: Path) -> ModelSpec:
    """The tiny Llama as IR: compiling it takes a fraction of a second, so a failure shows fast."""
    return resolve_model("tiny-ir", str(tiny_ir_dir))


def test_auto_falls_back_to_cpu_when_the_gpu_fails_to_compile(
    tiny_spec: ModelSpec, caplog: pytest.LogCaptureFixture
) -> None:
    """This machine has no GPU: told that one exists, OpenVINO really fails to compile for it."""
    with caplog.at_level(logging.WARNING, logger="adapters.registry"):
        loaded = load_backend(tiny_spec, EngineOptions(device="auto", context_length=256), available=["CPU", "GPU"])
    try:
        assert isinstance(loaded.backend, OpenVINOBackend)
        assert loaded.backend.info().device == "CPU"
        assert loaded.fallback is not None and "failed to load on GPU" in loaded.fallback
        assert "falling back to CPU" in caplog.text
    finally:
        loaded.backend.close()


def test_explicit_device_that_fails_to_compile_is_refused(tiny_spec: ModelSpec) -> None:
    with pytest.raises(DeviceUnavailable, match="cannot load tiny-ir on NPU"):
        load_backend(tiny_spec, EngineOptions(device="NPU"), available=["CPU", "NPU"])


def test_fallback_tries_devices_in_order() -> None:
    tried: list[str] = []

    def flaky(spec: ModelSpec, options: EngineOptions) -> Backend:
        tried.append(options.device)
        raise RuntimeError(f"no {options.device}")

    spec = ModelSpec(id="m", path="/nowhere", format="onnx")
    with pytest.raises(DeviceUnavailable, match="cannot load m on cpu: RuntimeError: no cpu"):
        load_backend(spec, EngineOptions(device="auto"), available=["cpu", "cuda"], factories={"onnx": flaky})
    assert tried == ["cuda", "cpu"]


def test_serve_refuses_a_missing_device(tmp_path: Path) -> None:
    """An explicit device this machine lacks stops `hearth serve` with a message naming it."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--home", str(tmp_path), "--device", "NPU"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "device 'NPU' is not available to openvino" in result.stderr
