"""The `hearth` command line: help, and clear refusals of bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main


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
