"""Escapes tried from inside a confined worker: each must fail.

The child interpreter plays a worker taken over by a hostile model file. It decodes a real `Load`
for the default model and confines itself through `adapters.worker_main.confine_for`, the code path
every worker runs, so what is tested is what serves. The test process plays the server: it holds a
listening TCP socket (the thing `pidfd_getfd` stole before), and a Hearth home with `keys.json`, a
TLS key and an audit log beside the worker's scratch directory.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from adapters.base import EngineOptions
from adapters.ipc import LoadChat
from adapters.sandbox import Confinement
from adapters.sandbox.landlock import abi_version
from adapters.worker import worker_environment
from hub.models import DEFAULT_MODEL_ID, resolve_model

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux confinement")

PRELUDE = """
import ctypes, json, os, sys
import msgspec
from adapters.ipc import LoadChat
from adapters.worker_main import confine_for
load = msgspec.json.decode(os.environ["LOAD"], type=LoadChat)
applied = confine_for(load)
print(json.dumps(applied), flush=True)
libc = ctypes.CDLL(None, use_errno=True)
PARENT = os.getppid()
def attempt(name, action):
    try:
        result = action()
    except OSError as exc:
        print(json.dumps([name, "refused", exc.errno]), flush=True)
    else:
        print(json.dumps([name, "ALLOWED", repr(result)[:80]]), flush=True)
"""


class Home:
    """A Hearth home with the secrets a worker must not reach."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tls").mkdir(parents=True)
        (root / "audit").mkdir()
        self.keys = root / "keys.json"
        self.keys.write_text(json.dumps({"keys": ["hk-secret"]}))
        self.tls_key = root / "tls" / "server-key.pem"
        self.tls_key.write_text("-----BEGIN PRIVATE KEY-----\n")
        self.audit = root / "audit" / "audit.jsonl"
        self.audit.write_text("{}\n")
        self.scratch = Path(tempfile.mkdtemp(prefix="hearth-worker-test-"))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    yield h
    subprocess.run(["rm", "-rf", str(h.scratch)], check=False)


def _run(home: Home, body: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    spec = resolve_model(DEFAULT_MODEL_ID, None)
    load = LoadChat(
        spec=spec,
        options=EngineOptions(cache_dir=str(home.root / "cache")),
        confinement=Confinement(scratch_dir=str(home.scratch)),
    )
    env = {**worker_environment(str(home.scratch)), "LOAD": msgspec.json.encode(load).decode()}
    code = PRELUDE + textwrap.dedent(body)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        env["LISTENER_FD"] = str(listener.fileno())
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("[")]
    return result, lines


def test_a_confined_worker_reaches_nothing_of_the_server(home: Home) -> None:
    """File secrets, other processes' /proc entries, signals, capabilities, pidfd_open: all refused;
    the model still loads and generates, and the scratch directory is writable."""
    result, lines = _run(
        home,
        f"""
        attempt("read keys.json", lambda: open({str(home.keys)!r}).read())
        attempt("write keys.json", lambda: open({str(home.keys)!r}, "w").write("x"))
        attempt("read tls key", lambda: open({str(home.tls_key)!r}).read())
        attempt("read audit log", lambda: open({str(home.audit)!r}).read())
        attempt("list home", lambda: os.listdir({str(home.root)!r}))
        attempt("write /tmp", lambda: open("/tmp/hearth-escape-test", "w").write("x"))
        attempt("read parent's environ", lambda: open(f"/proc/{{PARENT}}/environ", "rb").read())
        attempt("read parent's memory", lambda: open(f"/proc/{{PARENT}}/mem", "rb").read(1))
        socket_fd = os.environ["LISTENER_FD"]
        attempt("open parent's socket", lambda: os.open(f"/proc/{{PARENT}}/fd/{{socket_fd}}", os.O_RDWR))
        attempt("signal the parent", lambda: os.kill(PARENT, 0))
        attempt("signal the process group", lambda: os.kill(0, 0))
        attempt("pidfd_open the parent", lambda: os.pidfd_open(PARENT))
        caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
        print(json.dumps(["capabilities", caps]), flush=True)
        with open(os.path.join(os.environ["TMPDIR"], "scratch.txt"), "w") as f:
            f.write("ok")
        from adapters.worker_main import load_backend
        backend, info = load_backend(load)
        print(json.dumps(["loaded", info.model_id]), flush=True)
        os.kill(os.getpid(), 0)
        print(json.dumps(["done"]), flush=True)
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    applied = json.loads(result.stdout.splitlines()[0])
    assert "capabilities:none" in applied and "seccomp:no-sockets" in applied
    by_name = {line[0]: line[1:] for line in lines}
    landlock = abi_version_here() > 0
    file_escapes = ["read keys.json", "write keys.json", "read tls key", "read audit log", "list home", "write /tmp"]
    for name in file_escapes if landlock else []:
        assert by_name[name][0] == "refused", (name, by_name[name])
    for name in ["read parent's environ", "read parent's memory", "open parent's socket"] if landlock else []:
        assert by_name[name][0] == "refused", (name, by_name[name])
    for name in ["signal the parent", "signal the process group", "pidfd_open the parent"]:
        assert by_name[name][0] == "refused", (name, by_name[name])
    caps = dict(line.split(":") for line in by_name["capabilities"][0])
    assert all(int(value.strip(), 16) == 0 for value in caps.values()), caps
    assert (home.scratch / "scratch.txt").read_text() == "ok"
    assert home.keys.read_text() == json.dumps({"keys": ["hk-secret"]})
    assert by_name["loaded"] and by_name["done"] == []


def abi_version_here() -> int:
    import ctypes

    return abi_version(ctypes.CDLL(None, use_errno=True))


@pytest.mark.parametrize(
    "attempt",
    [
        # pidfd_getfd(pidfd, targetfd, 0): how a worker took the server's socket and connected out
        "libc.syscall(438, 3, int(os.environ['LISTENER_FD']), 0)",
        # ptrace(PTRACE_ATTACH, parent)
        "libc.syscall(101 if os.uname().machine == 'x86_64' else 117, 16, PARENT, 0, 0)",
        # process_vm_readv(parent, ...)
        "libc.syscall(310 if os.uname().machine == 'x86_64' else 270, PARENT, 0, 0, 0, 0, 0)",
        # kcmp(self, parent, KCMP_FILE, ...)
        "libc.syscall(312 if os.uname().machine == 'x86_64' else 272, os.getpid(), PARENT, 0, 0, 0)",
        "__import__('socket').create_connection(('127.0.0.1', 9))",
    ],
    ids=["pidfd_getfd", "ptrace", "process_vm_readv", "kcmp", "connect"],
)
def test_reaching_into_another_process_kills_the_worker(home: Home, attempt: str) -> None:
    result, _ = _run(home, f"{attempt}\nprint('still alive', flush=True)\n")
    assert result.returncode == -signal.SIGSYS, (result.returncode, result.stdout, result.stderr[-2000:])
    assert "still alive" not in result.stdout
