"""GET /v1/status: what the scheduler holds right now (Hearth's own API, not OpenAI's)."""

from __future__ import annotations

from typing import Literal

import msgspec

RunnerState = Literal["unloaded", "loading", "loaded", "unloading"]


class ModelStatus(msgspec.Struct, kw_only=True):
    """One service: whether its model is resident, where, what it costs, and who waits for it."""

    id: str
    model: str
    state: RunnerState
    device: str
    priority: int
    # Process id of the runner (the worker process) while loaded.
    pid: int | None
    # What the memory budget counts for it: the larger of its measured resident memory and its
    # estimate (weights, runtime and its whole KV cache, which fills as it serves); 0 when unloaded.
    memory_bytes: int
    # Resident memory of the runner process measured with psutil (None until measured).
    rss_bytes: int | None
    memory_measured: bool
    estimated_bytes: int
    # Requests it runs at once (its engine's batch, or its service's lower limit), requests
    # running now, and requests waiting for a slot.
    slots: int
    active: int
    queued: int
    idle_seconds: float | None
    # None: kept loaded forever.
    keep_alive_seconds: float | None
    expires_in_seconds: float | None
    loads: int
    evictions: int
    crashes: int


class Status(msgspec.Struct, kw_only=True):
    """The body of GET /v1/status."""

    memory_budget_bytes: int
    memory_used_bytes: int
    # Accelerators with a memory budget of their own (their models count at their estimates).
    device_budgets_bytes: dict[str, int]
    models: list[ModelStatus]
    object: Literal["status"] = "status"
