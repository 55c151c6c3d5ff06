"""GET /v1/system: the hardware this server runs on."""

from __future__ import annotations

from litestar import get

from adapters.hardware import SystemInfo, system_info


@get("/v1/system", summary="Hardware and runtimes of this machine", tags=["system"], sync_to_thread=True)
def system() -> SystemInfo:
    """CPU, memory, installed runtimes and every device they can run a model on."""
    # Probed per request (in a thread: OpenVINO's device query blocks) so free memory is current.
    return system_info()
