"""`hearth run MODEL PROMPT` against the real server: a streamed answer, piped input, errors, and
a local server started for the call when none answers."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pexpect

from tests.conftest import DEFAULT_MODEL, HEARTH, REPO_ROOT, HearthServer, free_port
from tests.server.commands.cli import clean_env, hearth


def _prompt_tokens(stderr: str) -> int:
    found = re.search(r"prompt (\d+) tokens", stderr)
    assert found, stderr
    return int(found.group(1))


def test_a_prompt_prints_the_answer_and_exits(hearth_server: HearthServer) -> None:
    url = hearth_server.base_url
    result = hearth("run", DEFAULT_MODEL, "Say", "hi", "--url", url, "--max-tokens", "12", "--verbose")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and result.stdout.endswith("\n")
    # --verbose reports the figures of the answer: at most the 12 tokens asked for.
    assert re.search(r"([1-9]|1[0-2]) tokens at [\d.]+ tokens/s", result.stderr), result.stderr


def test_piped_text_joins_the_prompt(hearth_server: HearthServer) -> None:
    args = ("run", DEFAULT_MODEL, "--url", hearth_server.base_url, "--max-tokens", "4", "--verbose")
    alone = hearth(*args, "Summarize")
    notes = "Bees make honey from nectar. A hive can hold fifty thousand bees. " * 5
    piped = hearth(*args, "Summarize", input=notes)
    assert alone.returncode == 0 and piped.returncode == 0, piped.stderr
    # The notes were sent with the instruction: the prompt grew by about their length in tokens.
    assert _prompt_tokens(piped.stderr) >= _prompt_tokens(alone.stderr) + 50
    only_stdin = hearth(*args, input="What colour is the sky?")
    assert only_stdin.returncode == 0 and only_stdin.stdout.strip(), only_stdin.stderr


def test_errors_are_messages_and_exit_codes(hearth_server: HearthServer) -> None:
    unknown = hearth("run", "no-such-model", "hi", "--url", hearth_server.base_url)
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = hearth("run", DEFAULT_MODEL, "hi", "--url", hearth_server.base_url, "--temperature", "9")
    assert bad.returncode == 1 and "temperature" in bad.stderr
    # A server the user named is never replaced by a local one.
    down = hearth("run", DEFAULT_MODEL, "hi", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "no server answers at http://127.0.0.1:9" in down.stderr
    empty = hearth("run", DEFAULT_MODEL, "--url", hearth_server.base_url, input="  \n")
    assert empty.returncode == 2 and "nothing to answer" in empty.stderr


def test_starts_a_local_server_when_none_answers(tmp_path: Path) -> None:
    """As `ollama run`: no server on the configured port, so one is started for the call and
    stopped afterwards (`--no-start` refuses instead)."""
    home, port = tmp_path / "home", free_port()
    env = clean_env(HEARTH_HOME=str(home), HEARTH_PORT=str(port), HEARTH_HOST="127.0.0.1")
    refused = hearth("run", DEFAULT_MODEL, "Say hi", "--no-start", env=env)
    assert refused.returncode == 1 and f"no server answers at http://127.0.0.1:{port}" in refused.stderr
    result = hearth("run", DEFAULT_MODEL, "Say hi", "--max-tokens", "8", env=env, timeout=300)
    assert result.returncode == 0, result.stderr + (home / "logs" / "autostart.log").read_text(errors="replace")
    assert "starting one" in result.stderr and result.stdout.strip()
    log = (home / "logs" / "autostart.log").read_text(errors="replace")
    assert f"http://127.0.0.1:{port}/v1" in log  # its ready banner
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        raise AssertionError("the server started for the call is still running")
    except httpx.ConnectError:
        pass


def test_a_started_server_ends_with_a_closed_terminal(tmp_path: Path) -> None:
    """The chat's terminal closes (SIGHUP): the server `hearth run` started for it stops too."""
    home, port = tmp_path / "home", free_port()
    env = clean_env(HEARTH_HOME=str(home), HEARTH_PORT=str(port), HEARTH_HOST="127.0.0.1")
    chat = pexpect.spawn(
        str(HEARTH), ["run", DEFAULT_MODEL], cwd=str(REPO_ROOT), env=env, encoding="utf-8", timeout=240
    )
    chat.expect_exact(">>> ")
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    chat.kill(signal.SIGHUP)
    chat.expect(pexpect.EOF)
    chat.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.ConnectError:
            return
        time.sleep(0.5)
    raise AssertionError("the server started by `hearth run` outlived its terminal")
