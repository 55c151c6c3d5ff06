"""Worker confinement: a confined process that opens a socket is killed (SIGSYS); the socketpair it
inherited keeps working; core dumps are off. Each case runs in a fresh interpreter, since
confinement cannot be undone."""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import textwrap

import pytest

from adapters.sandbox import seccomp_filter

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
    reason="seccomp confinement is Linux x86-64/arm64 only",
)

PRELUDE = """
import resource, socket, sys
from adapters.sandbox import Confinement, confine
parent, child = socket.socketpair()
applied = confine(Confinement(max_open_files=256))
print(applied, flush=True)
"""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "attempt",
    [
        "socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
        "socket.create_connection(('127.0.0.1', 9))",
        "socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)",
        "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
    ],
)
def test_opening_a_socket_kills_the_process(attempt: str) -> None:
    result = _run(f"{attempt}\nprint('still alive')\n")
    assert result.returncode == -signal.SIGSYS, (result.returncode, result.stdout, result.stderr)
    assert "seccomp:no-sockets" in result.stdout and "still alive" not in result.stdout


def test_a_thread_started_earlier_is_confined_too() -> None:
    """The filter is synchronised to every thread (TSYNC), not only the caller."""
    code = """
import socket, threading, time
from adapters.sandbox import Confinement, confine
go = threading.Event()
def later() -> None:
    go.wait()
    socket.socket()
    print('thread opened a socket', flush=True)
t = threading.Thread(target=later)
t.start()
confine(Confinement(filesystem=False))  # Landlock binds one thread: it must come before any starts
go.set()
t.join()
print('still alive', flush=True)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGSYS, (result.returncode, result.stdout, result.stderr)
    assert "thread opened a socket" not in result.stdout


def test_the_inherited_socketpair_and_files_still_work() -> None:
    result = _run(
        """
        parent.sendall(b"ping")
        assert child.recv(4) == b"ping"
        with open(sys.executable, "rb") as f:
            f.read(4)
        assert resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 256
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok"


def test_disabled_confinement_applies_nothing() -> None:
    code = (
        "import socket\nfrom adapters.sandbox import Confinement, confine\n"
        "assert confine(Confinement(enabled=False)) == []\nsocket.socket()\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_filter_shape() -> None:
    """Every instruction is 8 bytes; the program ends with the pid check's allow, the EPERM and
    the kill that the checks jump to."""
    program = seccomp_filter("x86_64", own_pid=1234)
    assert len(program) % 8 == 0
    assert program[-24:-16].endswith((0x7FFF0000).to_bytes(4, "little"))
    assert program[-16:-8].endswith((0x00050001).to_bytes(4, "little"))
    assert program[-8:].endswith((0x80000000).to_bytes(4, "little"))
    assert (1234).to_bytes(4, "little") in program
