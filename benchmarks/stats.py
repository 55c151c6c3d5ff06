"""Turn per-request timings into per-level summaries, and summaries into markdown tables."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgspec
import psutil

from benchmarks.raw_engine import RequestTiming


class LevelResult(msgspec.Struct, kw_only=True):
    """One concurrency level against one target. Latencies in milliseconds."""

    target: str
    concurrency: int
    requests: int
    completed: int
    errors: int
    wall_s: float
    output_tokens: int
    agg_tok_s: float
    req_s: float
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    itl_ms: dict[str, float]
    first_error: str | None = None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def distribution(values_s: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p90 and p99 of values given in seconds, returned in milliseconds."""
    ms = [v * 1000.0 for v in values_s]
    if not ms:
        return {}
    return {
        "mean": round(sum(ms) / len(ms), 3),
        "p50": round(percentile(ms, 50), 3),
        "p90": round(percentile(ms, 90), 3),
        "p99": round(percentile(ms, 99), 3),
    }


def summarize(
    target: str,
    concurrency: int,
    requests: int,
    timings: Sequence[RequestTiming],
    wall_s: float,
    errors: Sequence[str] = (),
) -> LevelResult:
    """Aggregate one level: TTFT, TPOT, inter-token latency and throughput over the whole run."""
    itl: list[float] = []
    for t in timings:
        itl.extend(b - a for a, b in zip(t.token_times, t.token_times[1:], strict=False))
    tpots = [t.tpot for t in timings if t.tpot is not None]
    tokens = sum(t.tokens for t in timings)
    return LevelResult(
        target=target,
        concurrency=concurrency,
        requests=requests,
        completed=len(timings),
        errors=len(errors),
        wall_s=round(wall_s, 3),
        output_tokens=tokens,
        agg_tok_s=round(tokens / wall_s, 2) if wall_s > 0 else 0.0,
        req_s=round(len(timings) / wall_s, 3) if wall_s > 0 else 0.0,
        ttft_ms=distribution([t.ttft for t in timings]),
        tpot_ms=distribution(tpots),
        itl_ms=distribution(itl),
        first_error=errors[0] if errors else None,
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def markdown_table(results: Sequence[LevelResult]) -> str:
    """One row per (target, concurrency): the numbers a RESULTS.md shows."""
    rows = [
        "| target | conc | done/req | out tok/s | TTFT p50 ms | TTFT p90 ms | TPOT p50 ms | ITL p50 ms "
        "| ITL p99 ms | per-stream tok/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        tpot = r.tpot_ms.get("p50")
        per_stream = 1000.0 / tpot if tpot else None
        rows.append(
            f"| {r.target} | {r.concurrency} | {r.completed}/{r.requests} | {_fmt(r.agg_tok_s)} "
            f"| {_fmt(r.ttft_ms.get('p50'))} | {_fmt(r.ttft_ms.get('p90'))} | {_fmt(tpot, 2)} "
            f"| {_fmt(r.itl_ms.get('p50'), 2)} | {_fmt(r.itl_ms.get('p99'), 2)} | {_fmt(per_stream)} |"
        )
    return "\n".join(rows)


def overhead_table(http: Sequence[LevelResult], raw: Sequence[LevelResult]) -> str:
    """HTTP path vs raw engine at each concurrency: throughput ratio and added TTFT/TPOT."""
    by_conc = {r.concurrency: r for r in raw}
    rows = [
        "| target | conc | tok/s HTTP / raw | TTFT p50 added ms | TPOT p50 added ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for h in http:
        r = by_conc.get(h.concurrency)
        if r is None or not r.agg_tok_s:
            continue
        ttft = h.ttft_ms.get("p50", float("nan")) - r.ttft_ms.get("p50", float("nan"))
        tpot = h.tpot_ms.get("p50", float("nan")) - r.tpot_ms.get("p50", float("nan"))
        rows.append(
            f"| {h.target} | {h.concurrency} | {h.agg_tok_s / r.agg_tok_s:.2f} | {_fmt(ttft)} | {_fmt(tpot, 2)} |"
        )
    return "\n".join(rows)


class RssSampler:
    """Samples the resident memory of a process and all its children in a background thread.

    Hearth runs its engine in a child worker process, so the whole tree is what a user pays for.
    """

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self._pid = pid
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_tree_mib = 0.0
        self.peak_by_process: dict[str, float] = {}
        # The latest sample of each process in the tree, by process id.
        self.last_by_pid: dict[int, float] = {}

    def sample(self) -> float:
        """Take one sample now; returns the tree's RSS in MiB (0 when the process is gone)."""
        try:
            root = psutil.Process(self._pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        by_pid: dict[int, float] = {}
        for proc in procs:
            try:
                mib = proc.memory_info().rss / 2**20
                name = " ".join(proc.cmdline()[:4])[-80:] or proc.name()
            except psutil.Error:
                continue
            total += mib
            by_pid[proc.pid] = mib
            self.peak_by_process[name] = max(self.peak_by_process.get(name, 0.0), mib)
        self.last_by_pid = by_pid
        self.peak_tree_mib = max(self.peak_tree_mib, total)
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.sample()

    def report(self) -> dict[str, Any]:
        """Peak RSS of the whole tree and of each process, in MiB."""
        return {
            "peak_tree_rss_mib": round(self.peak_tree_mib, 1),
            "peak_rss_mib_by_process": {k: round(v, 1) for k, v in self.peak_by_process.items()},
        }
