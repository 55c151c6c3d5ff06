"""The hardware report: `hearth devices`, GET /v1/system, and what they say about this machine."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import msgspec
import psutil

from adapters.hardware import SystemInfo, format_report, system_info


def test_report_matches_this_machine() -> None:
    info = system_info()
    assert info.cpu.logical_cores == psutil.cpu_count(logical=True)
    assert info.cpu.physical_cores == psutil.cpu_count(logical=False)
    assert info.cpu.model and info.cpu.model != "unknown"
    assert info.memory.total_bytes == psutil.virtual_memory().total
    assert 0 < info.memory.available_bytes <= info.memory.total_bytes
    runtimes = {r.name: r for r in info.runtimes}
    assert runtimes["openvino"].version and runtimes["openvino"].error is None
    assert runtimes["onnxruntime-genai"].version is not None
    ids = {(d.runtime, d.id, d.kind) for d in info.devices}
    assert ("openvino", "CPU", "cpu") in ids and ("onnxruntime", "cpu", "cpu") in ids
    report = format_report(info)
    for device in info.devices:
        assert device.id in report and device.name in report


def test_hearth_devices_prints_text_and_json() -> None:
    def hearth(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    text = hearth("devices")
    assert "CPU:" in text and "Devices:" in text and "openvino" in text
    raw = hearth("devices", "--json")
    info = json.loads(raw)
    assert {d["id"] for d in info["devices"]} >= {"CPU", "cpu"}


def test_system_endpoint(http: httpx.Client) -> None:
    response = http.get("/v1/system")
    assert response.status_code == 200
    info = msgspec.convert(response.json(), SystemInfo)  # the wire shape is exactly the report's
    assert info.cpu.logical_cores == psutil.cpu_count(logical=True)
    assert any(d.runtime == "openvino" and d.id == "CPU" for d in info.devices)
