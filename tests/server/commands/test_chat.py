"""The interactive `hearth run MODEL` under a real terminal (a pty, driven with pexpect): questions,
multi-line input, `/set parameter`, Ctrl-C during an answer, `/save` `/clear` `/load`, `/bye`."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from tests.conftest import DEFAULT_MODEL, HEARTH, REPO_ROOT, HearthServer
from tests.server.commands.cli import clean_env

PROMPT = ">>> "


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def chat(hearth_server: HearthServer, tmp_path: Path) -> Iterator[pexpect.spawn[str]]:
    """`hearth run MODEL` on a pty, with its own HEARTH_HOME (saved chats, input history)."""
    child = pexpect.spawn(
        str(HEARTH),
        ["run", DEFAULT_MODEL, "--url", hearth_server.base_url],
        cwd=str(REPO_ROOT),
        env=clean_env(HEARTH_HOME=str(tmp_path), TERM="xterm"),
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 200),
        # As in a terminal: a suite started in the background by a shell without job control
        # inherits SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    child.expect_exact(PROMPT)
    yield child
    child.close(force=True)


def ask(child: pexpect.spawn[str], line: str) -> str:
    """Send one line and return what was printed before the next prompt."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return str(child.before)


def active_requests(server: HearthServer) -> int:
    status = httpx.get(f"{server.base_url}/v1/status", timeout=10).json()
    return sum(m["active"] + m["queued"] for m in status["models"])


def test_a_conversation_with_commands(chat: pexpect.spawn[str], tmp_path: Path) -> None:
    answer = ask(chat, "What is the capital of France?")
    assert answer.replace("What is the capital of France?", "").strip(), "no answer was printed"
    assert "Set parameter 'temperature' to '0.2'" in ask(chat, "/set parameter temperature 0.2")
    assert "needs a number" in ask(chat, "/set parameter temperature warm")
    assert "Set parameter 'max_tokens' to '16'" in ask(chat, "/set parameter max_tokens 16")
    # A multi-line message: the continuation prompt until the closing quotes.
    chat.sendline('"""Here are two lines:')
    chat.expect_exact("... ")
    chat.sendline('roses and tulips. Which are red?"""')
    chat.expect_exact(PROMPT)
    shown = ask(chat, "/show")
    assert "temperature=0.2" in shown and "max_tokens=16" in shown and "messages: 4" in shown
    assert "Saved" in ask(chat, "/save trip")
    saved = json.loads((tmp_path / "chats" / "trip.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"] * 2
    assert saved["messages"][2]["content"] == "Here are two lines:\nroses and tulips. Which are red?"
    assert "Cleared" in ask(chat, "/clear")
    assert "messages: 0" in ask(chat, "/show")
    assert "Loaded 'trip': 4 messages" in ask(chat, "/load trip")
    assert "Set the system prompt" in ask(chat, "/system You answer in one word.")
    assert "Unknown command" in ask(chat, "/frobnicate")
    assert "/set parameter" in ask(chat, "/?")
    chat.sendline("/bye")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0


def test_ctrl_c_stops_an_answer_and_keeps_the_session(chat: pexpect.spawn[str], hearth_server: HearthServer) -> None:
    # A generation that would run for a long time: it does not stop at the end of its answer.
    ask(chat, "/set parameter ignore_eos true")
    ask(chat, "/set parameter max_tokens 4000")
    story = "Tell me a very long story about a lighthouse."
    chat.sendline(story)
    chat.expect_exact(story + "\r\n")  # the terminal's echo of the line
    chat.expect(r"\w+\W+\w+\W+\w+")  # the answer is streaming
    assert active_requests(hearth_server) == 1
    chat.sendintr()
    chat.expect_exact("[stopped]")
    chat.expect_exact(PROMPT)
    # Closing the stream cancelled the generation on the server.
    deadline = time.monotonic() + 10
    while active_requests(hearth_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert active_requests(hearth_server) == 0
    # The stopped turn is not part of the conversation, and the session goes on.
    assert "messages: 0" in ask(chat, "/show")
    ask(chat, "/set parameter ignore_eos false")
    ask(chat, "/set parameter max_tokens 8")
    ask(chat, "Say hi")
    assert "messages: 2" in ask(chat, "/show")
    # Ctrl-C at the prompt does not leave either; Ctrl-D does.
    chat.sendintr()
    chat.expect_exact("Use Ctrl + d or /bye to exit.")
    chat.expect_exact(PROMPT)
    chat.sendeof()
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0
