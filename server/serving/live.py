"""GET /v1/status/live: one poll's worth of counters for the console's live charts.

The counters are cumulative (tokens, TTFT sums, requests, errors since the server started), so a
client that polls every second or two turns two snapshots into rates (tokens/s, mean TTFT, errors)
without the server keeping any per-client state.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
import psutil

from server.http.recent_errors import ErrorRecord
from server.serving.metrics import Metrics
from server.serving.scheduler import Scheduler
from server.serving.status import Status


class ModelCounters(msgspec.Struct, kw_only=True):
    """Cumulative counters of one model since the server started."""

    id: str
    prompt_tokens: int
    completion_tokens: int
    ttft_seconds_sum: float
    ttft_count: int
    requests: int
    errors: int


class LiveSnapshot(msgspec.Struct, kw_only=True):
    """The scheduler's status, the machine's memory and every model's counters, at `time`."""

    time: float
    status: Status
    system_memory_total_bytes: int
    system_memory_used_bytes: int
    cpu_percent: float
    counters: list[ModelCounters]
    # The newest failed requests, newest first (server.http.recent_errors; set by the route).
    recent_errors: list[ErrorRecord] = msgspec.field(default_factory=list)
    object: Literal["status.live"] = "status.live"


def _sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def _requests_by_model(metrics: Metrics) -> dict[str, tuple[int, int]]:
    """Model -> (requests, requests answered with a 4xx/5xx)."""
    counts: dict[str, tuple[int, int]] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            model = sample.labels.get("model", "")
            total, errors = counts.get(model, (0, 0))
            failed = sample.labels.get("status", "200")[:1] in ("4", "5")
            counts[model] = (total + int(sample.value), errors + (int(sample.value) if failed else 0))
    return counts


def live_snapshot(metrics: Metrics, scheduler: Scheduler) -> LiveSnapshot:
    """What the console's dashboard draws from one poll."""
    status = scheduler.status()
    requests = _requests_by_model(metrics)
    counters = []
    for model in status.models:
        labels = {"model": model.id}
        total, errors = requests.get(model.id, (0, 0))
        counters.append(
            ModelCounters(
                id=model.id,
                prompt_tokens=int(_sample(metrics, "hearth_tokens_total", {**labels, "direction": "in"})),
                completion_tokens=int(_sample(metrics, "hearth_tokens_total", {**labels, "direction": "out"})),
                ttft_seconds_sum=_sample(metrics, "hearth_time_to_first_token_seconds_sum", labels),
                ttft_count=int(_sample(metrics, "hearth_time_to_first_token_seconds_count", labels)),
                requests=total,
                errors=errors,
            )
        )
    memory = psutil.virtual_memory()
    return LiveSnapshot(
        time=time.time(),
        status=status,
        system_memory_total_bytes=memory.total,
        system_memory_used_bytes=memory.total - memory.available,
        # Since the previous call (psutil keeps the last reading); the first call reads 0.0.
        cpu_percent=psutil.cpu_percent(interval=None),
        counters=counters,
    )
