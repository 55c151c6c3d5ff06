"""The hub commands' progress on a terminal: rich bars with sizes, speed and time, and plain lines
when stderr is not a terminal."""

from __future__ import annotations

import re
from pathlib import Path

import pexpect

from tests.conftest import HEARTH, REPO_ROOT
from tests.hub.fake_hub import FakeRepo, serve_hub
from tests.server.commands.cli import clean_env, hearth

SIZE = 30_000_000


def test_pull_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    gguf = b"GGUF" + bytes(SIZE - 4)
    with serve_hub({"org/tiny-GGUF": FakeRepo(files={"tiny-Q8_0.gguf": gguf})}) as hub:
        env = clean_env(HEARTH_HOME=str(tmp_path), HF_ENDPOINT=hub.url, TERM="xterm", COLUMNS="160")
        child = pexpect.spawn(
            str(HEARTH), ["pull", "org/tiny-GGUF"], cwd=str(REPO_ROOT), env=env, timeout=120, encoding="utf-8"
        )
        child.expect(pexpect.EOF)
        child.close()
    text = str(child.before)
    assert child.exitstatus == 0, text
    assert "installed tiny-gguf-gguf-auto" in text
    # The bar's columns: the file, its size done of total, the speed, and the time.
    assert "Downloading" in text
    assert "30.0/30.0 MB" in text, text
    assert re.search(r"[\d.]+ [kMG]?B/s", text), text
    assert re.search(r"\d:\d\d:\d\d", text), text


def test_verify_without_a_terminal_prints_plain_lines(tmp_path: Path) -> None:
    env = clean_env(HEARTH_HOME=str(tmp_path))
    assert hearth("pull", "smollm2-135m-instruct", env=env).returncode == 0
    result = hearth("verify", env=env)
    assert result.returncode == 0 and result.stdout == "smollm2-135m-instruct: ok\n"
    # No bar characters or cursor movements end up in a log file.
    assert "\x1b[" not in result.stderr and "━" not in result.stderr
