"""The `hearth` command line: help, and clear refusals of bad settings."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import COMMANDS, build_parser, main
from server.commands.serve import add_setting_flags
from server.settings import flat_names, load_settings


def test_serve_help_lists_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--home", "--config", "--model-path", "--context-length"):
        assert flag in out


def test_bad_setting_exits_2_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path))
    monkeypatch.setenv("HEARTH_PORT", "not-a-port")
    with pytest.raises(SystemExit) as info:
        main(["serve"])
    assert info.value.code == 2
    assert "port" in capsys.readouterr().err


def test_missing_model_file_fails_fast(tmp_path: Path) -> None:
    """A model path that does not exist stops start-up with a message, not a hang."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            "0",
            "--home",
            str(tmp_path),
            "--model-path",
            str(tmp_path / "absent.gguf"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "absent.gguf" in result.stderr


def test_serve_help_lists_every_setting_with_its_doc(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in flat_names():
        assert f"--{name.replace('_', '-')}" in out
    assert "requests waiting per model before 429 (default: 256)" in out
    assert "--no-sandbox" in out


def test_serve_flags_reach_the_nested_settings(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    args = parser.parse_args(
        ["--max-queue", "4", "--kv-cache-gb", "2.5", "--no-audit", "--tls", "--home", str(tmp_path)]
    )
    settings = load_settings(vars(args), env={})
    assert settings.scheduler.max_queue == 4
    assert settings.engine.kv_cache_gb == 2.5
    assert (settings.security.audit, settings.security.tls) == (False, True)
    assert settings.engine.threads == 0  # a flag not given leaves the lower layers alone


def test_serve_flags_refuse_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--log-level", "loud"])
    assert info.value.code == 2
    assert "--log-level" in capsys.readouterr().err


def test_commands_names_every_command_of_its_module() -> None:
    # `hearth NAME` builds only NAME's module: the table must say which module registers what.
    for module in dict.fromkeys(COMMANDS.values()):
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"server.commands.{module}").register(sub)
        assert {name for name, owner in COMMANDS.items() if owner == module} == set(sub.choices), module
    full = build_parser()._subparsers
    assert full is not None
    listed = [name for action in full._group_actions for name in getattr(action, "choices", {})]
    assert listed == [*COMMANDS, "completion"]


def test_serve_imports_no_other_command() -> None:
    # What `hearth serve` imports before it launches the model worker (benchmarks/RESULTS.md,
    # session 25): neither the other commands' modules nor their HTTP client, TLS or numpy.
    code = (
        "import sys; from server.cli import build_parser; "
        "build_parser('serve').parse_args(['serve', '--port', '1']); "
        "print(' '.join(sorted(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(run.stdout.split())
    assert "server.commands.serve" in loaded
    assert not loaded & {"server.commands.batch", "server.commands.hub", "server.commands.tls"}
    assert not loaded & {"httpx", "cryptography", "numpy", "rich"}


def test_version_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("hearth ")
