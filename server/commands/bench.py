"""`hearth bench MODEL`: measure this machine and pick the engine settings that serve it best.

A coordinate descent over the knobs that matter on the CPU (threads, inference precision, KV-cache
precision, max batched tokens, max sequences, performance hint): starting from the current
settings, each knob's alternatives are tried one at a time, at one stream and at `--concurrency`
streams, each configuration in a fresh server. A candidate that loses clearly on its first run
(15% below the best) is not repeated; the others are repeated `--repeats` times and reported with
their spread, because this kind of machine varies by 10-20% from run to run. The search stops at
`--budget` seconds. `--apply` writes the winner into the config file, commented with the date, the
machine and the figures, so that the next start uses it; the last results are kept in
`$HEARTH_HOME/bench/last.json` (GET /v1/tuning shows them).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import yaml
from rich.console import Console
from rich.table import Table

from server.atomic_write import write_atomic
from server.commands.bench_load import Measure, measure
from server.commands.common import Commands, add_home_flag
from server.settings import Settings

# The knobs and the values tried, in the order searched (the most decisive first).
KNOBS: dict[str, list[Any]] = {
    "threads": [0, 1],
    "inference_precision": ["", "f32", "bf16"],
    "kv_cache_precision": ["u8", "f16"],
    "max_num_batched_tokens": [256, 512, 128],
    "performance_hint": ["LATENCY", "THROUGHPUT"],
    "max_num_seqs": [64, 16],
}
CLEAR_LOSS = 0.85


class Trial(msgspec.Struct, kw_only=True):
    """One configuration and what its runs measured."""

    settings: dict[str, Any]
    runs: list[Measure]

    def mean(self, field: str) -> float:
        """The mean of a figure over the runs."""
        return statistics.fmean(getattr(run, field) for run in self.runs)

    def spread(self, field: str) -> float:
        """Max minus min of a figure over the runs, relative to its mean (0 for one run)."""
        values = [getattr(run, field) for run in self.runs]
        mean = statistics.fmean(values)
        return (max(values) - min(values)) / mean if mean else 0.0


class Report(msgspec.Struct, kw_only=True):
    """What `hearth bench` found, as printed, kept in last.json and applied."""

    model: str
    machine: str
    date: str
    concurrency: int
    trials: list[Trial]
    best_latency: dict[str, Any]
    best_throughput: dict[str, Any]
    gain_latency: float
    gain_throughput: float


def register(commands: Commands) -> None:
    """Add `hearth bench`."""
    p = commands.add_parser("bench", help="measure this machine and pick the engine settings that serve a model best")
    p.add_argument("bench_model", metavar="MODEL", nargs="?", help="the model (default: the served one)")
    p.add_argument("--concurrency", type=int, default=8, help="streams for the throughput figure (default 8)")
    p.add_argument("--budget", type=float, default=120.0, help="seconds to search for (default 120)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each configuration that does not lose clearly")
    p.add_argument("--max-tokens", dest="bench_max_tokens", type=int, default=64, help="tokens per answer")
    p.add_argument("--knob", action="append", dest="knobs", help="search only these knobs (repeatable)")
    p.add_argument("--values", action="append", default=[], help="KNOB=v1,v2 to override the values tried")
    p.add_argument("--apply", action="store_true", help="write the throughput winner into the config file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--config", help="the config file --apply writes (default $HEARTH_HOME/config.yaml)")
    add_home_flag(p)
    p.set_defaults(run=run)


def _flags(settings: dict[str, Any]) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]


def _knobs(args: argparse.Namespace) -> dict[str, list[Any]]:
    knobs = {k: v for k, v in KNOBS.items() if not args.knobs or k in args.knobs}
    for override in args.values:
        name, _, values = override.partition("=")
        if name not in KNOBS:
            raise SystemExit(f"hearth bench: unknown knob {name!r} (one of {', '.join(KNOBS)})")
        knobs[name] = [type(KNOBS[name][0])(v) if KNOBS[name][0] != "" else v for v in values.split(",")]
    return knobs


def search(settings: Settings, args: argparse.Namespace, say: Console) -> Report:
    """Coordinate descent within the budget; the report of every configuration tried."""
    model = args.bench_model or settings.engine.model
    deadline = time.monotonic() + args.budget
    engine = msgspec.structs.asdict(settings.engine)
    knobs = _knobs(args)
    current = {k: engine[k] for k in knobs}
    trials: list[Trial] = []

    def run_one(candidate: dict[str, Any], repeats: int, best: float | None) -> Trial:
        trial = Trial(settings=dict(candidate), runs=[])
        for i in range(repeats):
            say.print(f"  {candidate} run {i + 1}", style="dim")
            trial.runs.append(
                measure(settings.home_path, model, _flags(candidate), args.concurrency, args.bench_max_tokens)
            )
            if best is not None and trial.runs[0].tokens_per_s_n < CLEAR_LOSS * best:
                break  # a clear loss: not worth a repeat
            if time.monotonic() > deadline:
                break
        trials.append(trial)
        return trial

    baseline = run_one(current, args.repeats, None)
    best = baseline
    for knob, values in knobs.items():
        for value in values:
            if value == current[knob] or time.monotonic() > deadline:
                continue
            trial = run_one({**current, knob: value}, args.repeats, best.mean("tokens_per_s_n"))
            if trial.mean("tokens_per_s_n") > best.mean("tokens_per_s_n"):
                best = trial
        current = dict(best.settings)
    latency = max(trials, key=lambda t: t.mean("tokens_per_s_1"))
    return Report(
        model=model,
        machine=f"{platform.processor() or platform.machine()}, {_cpu_name()}",
        date=time.strftime("%Y-%m-%d %H:%M"),
        concurrency=args.concurrency,
        trials=trials,
        best_latency=latency.settings,
        best_throughput=best.settings,
        gain_latency=latency.mean("tokens_per_s_1") / baseline.mean("tokens_per_s_1") - 1,
        gain_throughput=best.mean("tokens_per_s_n") / baseline.mean("tokens_per_s_n") - 1,
    )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def table(report: Report) -> Table:
    """The report as a rich table, one row per configuration."""
    t = Table(title=f"hearth bench {report.model} ({report.machine})", box=None)
    for column in ("settings", "tok/s 1", f"tok/s {report.concurrency}", "TTFT p50", "TTFT p90", "peak RSS", "runs"):
        t.add_column(column, justify="left" if column == "settings" else "right")
    for trial in report.trials:
        spread = f"±{trial.spread('tokens_per_s_n') * 50:.0f}%" if len(trial.runs) > 1 else "1"
        t.add_row(
            ", ".join(f"{k}={v!r}" for k, v in trial.settings.items()),
            f"{trial.mean('tokens_per_s_1'):.1f}",
            f"{trial.mean('tokens_per_s_n'):.1f}",
            f"{trial.mean('ttft_p50_ms'):.0f} ms",
            f"{trial.mean('ttft_p90_ms'):.0f} ms",
            f"{trial.mean('peak_rss_mb'):.0f} MB",
            spread,
        )
    return t


def apply(settings: Settings, report: Report, config: Path) -> None:
    """Write the throughput winner into the `engine:` section of `config`, with a comment header."""
    existing = yaml.safe_load(config.read_text()) if config.is_file() else None
    data: dict[str, Any] = existing if isinstance(existing, dict) else {}
    engine = data.setdefault("engine", {})
    engine.update(report.best_throughput)
    header = (
        f"# engine settings chosen by `hearth bench {report.model}` on {report.date}, {report.machine}:\n"
        f"# {report.gain_throughput:+.0%} tokens/s at {report.concurrency} streams, "
        f"{report.gain_latency:+.0%} at one stream, against the settings before.\n"
    )
    write_atomic(config, (header + yaml.safe_dump(data, sort_keys=False)).encode())


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Search, print, keep and (with --apply) apply."""
    say = Console(stderr=True)
    say.print(f"hearth bench: searching for up to {args.budget:.0f} s (one server per configuration)")
    try:
        report = search(settings, args, say)
    except RuntimeError as exc:
        print(f"hearth bench: {exc}", file=sys.stderr)
        return 1
    write_atomic(settings.home_path / "bench" / "last.json", msgspec.json.encode(report))
    if args.json:
        print(json.dumps(msgspec.to_builtins(report), indent=2))
    else:
        Console().print(table(report))
        print(f"best for latency:    {report.best_latency} ({report.gain_latency:+.0%} tok/s at 1 stream)")
        gain = f"{report.gain_throughput:+.0%} tok/s at {report.concurrency}"
        print(f"best for throughput: {report.best_throughput} ({gain})")
    if args.apply:
        config = Path(args.config).expanduser() if getattr(args, "config", None) else settings.home_path / "config.yaml"
        apply(settings, report, config)
        say.print(f"applied to {config}: the next `hearth serve` uses {report.best_throughput}")
    return 0
