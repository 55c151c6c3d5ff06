"""Run one converter as a child process, streaming its output lines and naming its failure."""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Callable

from hub.errors import HubFailure

TAIL_LINES = 25
# Progress bars (tqdm, rich) redraw with carriage returns and colour codes: split on both newlines
# and returns, and drop the escape sequences, so each redraw reaches `progress` as one clean line.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LINE_BREAK = re.compile(r"[\r\n]+")


class ConversionError(HubFailure, RuntimeError):
    """A converter failed; the message carries the tool's last output lines."""

    code = "conversionerror"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The source is local: a converter must never reach for the network, and its output must not
    # be held back in a pipe buffer.
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONSTARTUP", None)
    return env


def run_converter(cmd: list[str], tool: str, progress: Callable[[str], None] | None) -> None:
    """Run `cmd`, passing each output line to `progress`; raise ConversionError if it fails."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env()
        )
    except OSError as exc:
        raise ConversionError(f"{tool} could not be started: {exc}") from exc
    assert process.stdout is not None
    try:
        pending = ""
        while chunk := os.read(process.stdout.fileno(), 65536):
            pending += chunk.decode("utf-8", errors="replace")
            *lines, pending = _LINE_BREAK.split(pending)
            for line in lines:
                _emit(line, tail, progress)
        _emit(pending, tail, progress)
        returncode = process.wait()
    finally:
        # Reached with the child still running only when the caller is interrupted: never leave an
        # orphan converter writing into a folder its caller is about to delete.
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    if returncode != 0:
        last = "\n".join(tail) or "(no output)"
        raise ConversionError(f"{tool} failed with exit status {returncode}; its last output:\n{last}")


def _emit(raw: str, tail: deque[str], progress: Callable[[str], None] | None) -> None:
    line = _ANSI.sub("", raw).rstrip()
    if not line.strip():
        return
    tail.append(line)
    if progress is not None:
        progress(line)
