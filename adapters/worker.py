"""The server's side of a model worker: one child process per model, spoken to over a socket pair.

Every engine kind (text generation in adapters/chat_engine.py, embeddings in
adapters/embedding_engine.py) runs its model in a plain child interpreter (adapters/worker_main.py)
that confines itself before it parses a model file. This base spawns it, sends its `Load`, waits
for `Ready`, reads its events on a thread and hands them to the event loop, and stops it. A worker
that exits unasked fails every call in flight with `engine_unavailable` (the server stays up) and
is reported to the `RunnerExitHook` (the audit log).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from multiprocessing.connection import Connection
from typing import Self

import msgspec

from adapters.base import EngineError, EngineStartError, ModelInfo, RunnerExitHook, Tokens
from adapters.ipc import Command, Deltas, Event, Load, Ready, Results, Shutdown

log = logging.getLogger(__name__)

NOT_RUNNING = "the model worker is not running"


def worker_environment(scratch: str) -> dict[str, str]:
    """The environment a worker starts with: its scratch directory as TMPDIR and HOME (libraries
    that keep files in ~, such as OpenVINO's telemetry id, find a place they may write), and numpy's
    BLAS on one thread, since file confinement binds only the thread that applies it and must
    therefore come before any thread starts (the engine's own threads start after it, confined)."""
    scratch_env = {"TMPDIR": scratch, "HOME": scratch, "OPENBLAS_NUM_THREADS": "1"}
    return {**os.environ, "PYTHONUNBUFFERED": "1", **scratch_env}


class Launched:
    """A worker process started and sent its `Load`, not yet waited for."""

    def __init__(self, load: Load, process: subprocess.Popen[bytes], conn: Connection, scratch: str) -> None:
        self.load = load
        self.process = process
        self.conn = conn
        self.scratch = scratch

    def kill(self) -> None:
        """Stop the process and remove its scratch directory (a worker nobody adopted or that failed)."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


class WorkerEngine(ABC):
    """A model running in a child process; subclasses say what to send and what the events mean."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        conn: Connection,
        info: ModelInfo,
        loop: asyncio.AbstractEventLoop,
        on_exit: RunnerExitHook | None = None,
    ) -> None:
        self.info = info
        self._on_exit_hook = on_exit
        self._process = process
        self._conn = conn
        self._loop = loop
        self._encoder = msgspec.msgpack.Encoder()
        # Calls may write from the event loop and from threads (large embedding batches).
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._scratch = ""
        self._alive = True
        self._open()
        self._reader = threading.Thread(target=self._read_events, name=f"engine-reader-{info.model_id}", daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, load: Load) -> Launched:
        """Start a worker and send it `load` without waiting for it (`adopt` waits): `hearth serve`
        starts its default model's worker this way before it imports the web framework."""
        # The worker's only writable directory (its TMPDIR), removed when it stops.
        scratch = tempfile.mkdtemp(prefix="hearth-worker-")
        load = msgspec.structs.replace(load, confinement=msgspec.structs.replace(load.confinement, scratch_dir=scratch))
        try:
            # A plain child interpreter (not multiprocessing's spawn) so that the worker never
            # re-imports the caller's __main__ module.
            parent_sock, child_sock = socket.socketpair()
            process = subprocess.Popen(
                [sys.executable, "-m", "adapters.worker_main", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                env=worker_environment(scratch),
            )
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        child_sock.close()
        parent = Connection(parent_sock.detach())
        parent.send_bytes(msgspec.msgpack.encode(load))
        return Launched(load, process, parent, scratch)

    @classmethod
    async def spawn(cls, load: Load, load_timeout: float = 300.0, on_exit: RunnerExitHook | None = None) -> Self:
        """Start a worker, send it `load` and wait until its model is loaded; `on_exit` is told
        if it later stops unasked."""
        launched = await asyncio.to_thread(cls.launch, load)
        return await cls.adopt(launched, load_timeout, on_exit)

    @classmethod
    async def adopt(
        cls, launched: Launched, load_timeout: float = 300.0, on_exit: RunnerExitHook | None = None
    ) -> Self:
        """Wait until the `launched` worker's model is loaded and serve it (it is stopped if it fails)."""
        try:
            engine = await cls._ready(launched, load_timeout, on_exit)
        except BaseException:
            await asyncio.to_thread(launched.kill)
            raise
        engine._scratch = launched.scratch
        return engine

    @classmethod
    async def _ready(cls, launched: Launched, load_timeout: float, on_exit: RunnerExitHook | None) -> Self:
        spec, process, parent = launched.load.spec, launched.process, launched.conn
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(parent.recv_bytes), load_timeout)
        except (EOFError, TimeoutError) as exc:
            raise EngineStartError(f"the worker for {spec.id} exited or timed out while loading") from exc
        match msgspec.msgpack.decode(ready, type=Event):
            case Ready(info=info):
                pass
            case other:
                await asyncio.to_thread(process.wait, 5)
                raise EngineStartError(f"cannot load {spec.id}: {getattr(other, 'message', other)}")
        if info.device_note:
            log.warning("%s", info.device_note)
        origin = f" from {info.loaded_from}" if info.loaded_from else ""
        log.info(
            "loaded %s on %s in %.1fs%s (worker pid %s)", spec.id, info.device, info.load_seconds, origin, process.pid
        )
        return cls(process, parent, info, asyncio.get_running_loop(), on_exit)

    @property
    def alive(self) -> bool:
        """Whether the worker process is still serving."""
        return self._alive

    @property
    def pid(self) -> int | None:
        """Process id of the worker."""
        return self._process.pid

    def next_request_id(self) -> int:
        """A fresh id for a request to this engine."""
        return next(self._ids)

    @abstractmethod
    def _open(self) -> None:
        """Create the tables of calls in flight (before the reader can answer any)."""

    @abstractmethod
    def _on_event(self, event: Deltas | Results | Tokens) -> None:
        """Hand an answer to whoever waits for it (on the event loop)."""

    @abstractmethod
    def _fail_all(self, error: EngineError) -> None:
        """Answer every call in flight with `error` (on the event loop)."""

    def _read_events(self) -> None:
        decoder = msgspec.msgpack.Decoder(Event)
        try:
            while True:
                match decoder.decode(self._conn.recv_bytes()):
                    case Deltas() | Results() | Tokens() as event:
                        self._loop.call_soon_threadsafe(self._on_event, event)
                    case other:
                        log.warning("unexpected event from the worker for %s: %r", self.info.model_id, other)
        except (EOFError, OSError):
            pass
        if self._alive and self._on_exit_hook is not None:
            # The pipe closes as the process ends; reap it so the hook gets its exit status.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            if self._alive:
                self._on_exit_hook(self.info.model_id, self._process.pid, self._process.poll())
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_exit)

    def _on_exit(self) -> None:
        if self._alive:
            log.error("the worker for %s exited (code %s)", self.info.model_id, self._process.poll())
        self._alive = False
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._fail_all(EngineError("engine_unavailable", f"the model worker for {self.info.model_id} stopped"))

    def _send(self, command: Command) -> None:
        with self._send_lock:
            self._conn.send_bytes(self._encoder.encode(command))

    async def close(self) -> None:
        """Ask the worker to stop, and kill it if it does not."""
        self._alive = False
        with contextlib.suppress(OSError):
            self._send(Shutdown())
        try:
            await asyncio.to_thread(self._process.wait, 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            await asyncio.to_thread(self._process.wait, 5)
        self._conn.close()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
