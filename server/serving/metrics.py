"""Prometheus metrics (prometheus-client): requests, latency, tokens, and the scheduler's state.

Beside Hearth's own names, the scheduler's gauges are also exported under the names vLLM uses
(`vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc` and its older
name `vllm:gpu_cache_usage_perc`, labelled `model_name`): the Gateway API Inference Extension's
endpoint picker and vLLM dashboards read these names (its model server protocol: queued requests,
running requests, KV-cache utilisation as a 0..1 fraction). OpenVINO's block usage is not reported
across the worker boundary, so the KV figure is the share of the model's sequence slots in use,
which is what fills the cache under continuous batching (docs/deploy.md).

One `CollectorRegistry` per app (no process-global registry), rendered by GET /metrics. Counters
and histograms are updated as requests run; the scheduler's gauges (queue depth, memory, loaded
models) and its load / eviction / crash counts are read from its status when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.base import Delta
from server.serving.scheduler import Lease, Scheduler
from server.serving.status import ModelStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5)


class _SchedulerCollector(Collector):
    """Reads the scheduler's status at scrape time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        status = self._scheduler.status()
        gauges = {
            "queue_depth": GaugeMetricFamily("hearth_queue_depth", "Requests waiting for a slot", labels=["model"]),
            "active": GaugeMetricFamily("hearth_active_requests", "Requests running now", labels=["model"]),
            "slots": GaugeMetricFamily(
                "hearth_model_slots", "Requests the model runs at once (the rest wait in the queue)", labels=["model"]
            ),
            "loaded": GaugeMetricFamily("hearth_model_loaded", "1 while the model is resident", labels=["model"]),
            "memory": GaugeMetricFamily(
                "hearth_model_memory_bytes", "Resident memory of the model's runner process", labels=["model"]
            ),
            "reserved": GaugeMetricFamily(
                "hearth_model_reserved_bytes",
                "Memory the budget counts for the model (at least its estimate, KV cache included)",
                labels=["model"],
            ),
        }
        counters = {
            "loads": CounterMetricFamily("hearth_model_loads", "Times the model was loaded", labels=["model"]),
            "evictions": CounterMetricFamily(
                "hearth_model_evictions", "Times the model was evicted to make room", labels=["model"]
            ),
            "crashes": CounterMetricFamily("hearth_runner_crashes", "Times the model's runner died", labels=["model"]),
        }
        for m in status.models:
            gauges["queue_depth"].add_metric([m.id], m.queued)
            gauges["active"].add_metric([m.id], m.active)
            gauges["slots"].add_metric([m.id], m.slots)
            gauges["loaded"].add_metric([m.id], 1 if m.state == "loaded" else 0)
            gauges["memory"].add_metric([m.id], m.rss_bytes or 0)
            gauges["reserved"].add_metric([m.id], m.memory_bytes)
            counters["loads"].add_metric([m.id], m.loads)
            counters["evictions"].add_metric([m.id], m.evictions)
            counters["crashes"].add_metric([m.id], m.crashes)
        yield from _vllm_gauges(status.models)
        budget = GaugeMetricFamily("hearth_memory_budget_bytes", "Memory all resident models may use")
        budget.add_metric([], status.memory_budget_bytes)
        yield from gauges.values()
        yield from counters.values()
        yield budget


def _vllm_gauges(models: list[ModelStatus]) -> Iterator[Metric]:
    """The scheduler's state under vLLM's metric names (the inference gateway's endpoint picker)."""
    waiting = GaugeMetricFamily("vllm:num_requests_waiting", "Requests waiting for a slot", labels=["model_name"])
    running = GaugeMetricFamily("vllm:num_requests_running", "Requests running now", labels=["model_name"])
    kv_usage = GaugeMetricFamily(
        "vllm:kv_cache_usage_perc", "KV-cache usage, 1 = full (share of sequence slots in use)", labels=["model_name"]
    )
    gpu_usage = GaugeMetricFamily(
        "vllm:gpu_cache_usage_perc",
        "Old name of vllm:kv_cache_usage_perc (older endpoint pickers)",
        labels=["model_name"],
    )
    for m in models:
        usage = min(1.0, m.active / m.slots) if m.slots > 0 else 0.0
        waiting.add_metric([m.id], m.queued)
        running.add_metric([m.id], m.active)
        kv_usage.add_metric([m.id], usage)
        gpu_usage.add_metric([m.id], usage)
    yield from (waiting, running, kv_usage, gpu_usage)


class Metrics:
    """Every metric of one server."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hearth_requests",
            "HTTP requests by endpoint, model and status",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.ttft = self._by_model("hearth_time_to_first_token_seconds", "From admission request to the first token")
        self.tpot = self._by_model(
            "hearth_time_per_output_token_seconds", "Mean time between output tokens of a call", _TOKEN_BUCKETS
        )
        self.queue_wait = self._by_model("hearth_queue_wait_seconds", "Time waiting for a slot (including a load)")
        self.tokens = Counter(
            "hearth_tokens", "Tokens in (prompt) and out (completion)", ["model", "direction"], registry=self.registry
        )
        self.scheduler_events = Counter(
            "hearth_scheduler_events",
            "Requests refused (queue full) or timed out in the queue",
            ["model", "event"],
            registry=self.registry,
        )
        self.registry.register(_SchedulerCollector(scheduler))
        scheduler.on_event = self._on_scheduler_event

    def _by_model(self, name: str, documentation: str, buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> Histogram:
        return Histogram(name, documentation, ["model"], buckets=buckets, registry=self.registry)

    def _on_scheduler_event(self, event: str, model: str) -> None:
        if event in ("rejected", "timeout"):
            self.scheduler_events.labels(model, event).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def observe(self, model: str, lease: Lease, asked_at: float) -> CallObserver:
        """An observer for one call on `lease`, asked for at `asked_at` (time.perf_counter())."""
        self.queue_wait.labels(model).observe(time.perf_counter() - asked_at)
        return CallObserver(self, model, lease, asked_at)


class CallObserver:
    """Times one call's tokens and releases its lease when the call is over."""

    def __init__(self, metrics: Metrics, model: str, lease: Lease, asked_at: float) -> None:
        self._metrics = metrics
        self._model = model
        self._lease = lease
        self._asked_at = asked_at
        self._first: float | None = None
        self._last = 0.0
        self._tokens = 0
        self._done = False

    def delta(self, delta: Delta) -> None:
        """Count a delta's tokens; the first token sets the call's TTFT."""
        if delta.prompt_tokens:
            self._metrics.tokens.labels(self._model, "in").inc(delta.prompt_tokens)
        if delta.tokens:
            now = time.perf_counter()
            if self._first is None:
                self._first = now
                self._metrics.ttft.labels(self._model).observe(now - self._asked_at)
            self._last = now
            self._tokens += delta.tokens

    def done(self) -> None:
        """Record the call's time per output token and release its slot (idempotent)."""
        if self._done:
            return
        self._done = True
        self._lease.release()
        if self._tokens:
            self._metrics.tokens.labels(self._model, "out").inc(self._tokens)
        if self._first is not None and self._tokens > 1:
            self._metrics.tpot.labels(self._model).observe((self._last - self._first) / (self._tokens - 1))
