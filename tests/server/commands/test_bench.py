"""`hearth bench` for real: two configurations of one knob, each in its own server on the default
model, a table (and JSON) of what they measured, and `--apply` changing what the next start uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from server.cli import main
from server.settings import load_settings

ARGS = ["--knob", "max_num_seqs", "--values", "max_num_seqs=64,8", "--repeats", "1", "--concurrency", "2"]
ARGS += ["--max-tokens", "8", "--budget", "600"]


def test_bench_measures_reports_and_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("HEARTH_HOME", "HEARTH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    (home).mkdir()
    (home / "config.yaml").write_text("# mine\nport: 8123\n")
    assert main(["bench", "--home", str(home), *ARGS, "--json", "--apply"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "applied to" in captured.err
    assert [t["settings"] for t in report["trials"]] == [{"max_num_seqs": 64}, {"max_num_seqs": 8}]
    for trial in report["trials"]:
        [run] = trial["runs"]
        assert run["tokens_per_s_1"] > 0 and run["tokens_per_s_n"] > 0 and run["peak_rss_mb"] > 100
        assert 0 < run["ttft_p50_ms"] <= run["ttft_p90_ms"]
    assert report["best_throughput"]["max_num_seqs"] in (64, 8)
    assert json.loads((home / "bench" / "last.json").read_text())["model"] == "smollm2-135m-instruct"

    config = (home / "config.yaml").read_text()
    assert config.startswith("# engine settings chosen by `hearth bench smollm2-135m-instruct`")
    assert yaml.safe_load(config) == {"port": 8123, "engine": report["best_throughput"]}
    settings = load_settings({"home": str(home)}, env={})
    assert settings.engine.max_num_seqs == report["best_throughput"]["max_num_seqs"]
    assert settings.server.port == 8123


def test_bench_table_and_unknown_knob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--home", str(tmp_path), "--values", "warp=9"])
    one = ["--knob", "threads", "--values", "threads=0", "--repeats", "1", "--concurrency", "1"]
    assert main(["bench", "--home", str(tmp_path), *one, "--max-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "tok/s 1" in out and "best for throughput" in out


def test_the_tuning_route_shows_settings_and_the_last_report(tmp_path: Path) -> None:
    import httpx

    from tests.conftest import run_hearth

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "last.json").write_text(json.dumps({"model": "m", "trials": []}))
    with run_hearth(tmp_path, "--max-num-seqs", "12", preload=False) as server:
        body = httpx.get(f"{server.base_url}/v1/tuning", timeout=30).json()
    assert body["engine"]["max_num_seqs"] == 12 and body["last_bench"] == {"model": "m", "trials": []}
