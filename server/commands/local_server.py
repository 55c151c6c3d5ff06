"""A `hearth serve` started by a client command when no server answers (as `ollama run` does).

Only for the configured local address: a URL the user named (`--url`, `HEARTH_URL`) that does not
answer is an error, since starting a server elsewhere would not be what was asked. The server runs
with the same settings (environment, config file, `--home`) in its own process group, logs to
`$HEARTH_HOME/logs/autostart.log`, and is stopped when the command ends unless it was asked to
stay (`--keep-server`), in which case it keeps serving like any `hearth serve`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from server.commands.client import ServerError, ready

if TYPE_CHECKING:
    from server.settings import Settings

_GRACE_S = 15.0


def _tail(path: os.PathLike[str], lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it unloads its models), then SIGKILL its group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _exit_on(signum: int, frame: object) -> None:
    # A closed terminal (SIGHUP) or a kill (SIGTERM) ends the command through its cleanup, so the
    # server it started does not outlive it.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def local_server(settings: Settings, url: str, start_timeout_s: float, keep: bool) -> Iterator[None]:
    """Start `hearth serve` for the settings' address and wait until it is ready at `url`; stop it
    afterwards unless `keep`. Raises `ServerError` when it exits or stays silent."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "autostart.log"
    command = [sys.executable, "-m", "server.cli", "serve", "--home", str(settings.home_path)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the chat must not reach the server, nor a kept one die
            # with this terminal.
            start_new_session=True,
        )
    previous = {s: signal.signal(s, _exit_on) for s in (signal.SIGTERM, signal.SIGHUP)}
    answered = False
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ready(url, timeout=1.0):
            if process.poll() is not None:
                raise ServerError(
                    f"the local server exited with code {process.returncode} while starting "
                    f"(log: {log_path}):\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServerError(f"the local server did not answer within {start_timeout_s:g}s (log: {log_path})")
            time.sleep(0.25)
        answered = True
        yield
    except BaseException:
        if not (keep and answered):
            _stop(process)
        raise
    else:
        if not keep:
            _stop(process)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
