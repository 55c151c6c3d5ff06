"""Runs a backend in its own process and exposes it to the server as an async `Engine`.

The worker loop takes commands (submit, cancel, shutdown) from a pipe between batch steps and
sends back every delta a step produced as one message. The parent reads that pipe on a thread and
hands each delta to the asyncio queue of its request. A crash of the worker is contained: every
request in flight gets an `engine_unavailable` error and the server stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection

import msgspec

from adapters.base import Backend, ChatMessage, Delta, EngineError, EngineOptions, GenerationRequest, ModelInfo
from adapters.sandbox import Confinement, confine
from hub.models import ModelSpec

log = logging.getLogger(__name__)


class Submit(msgspec.Struct, tag=True):
    request: GenerationRequest


class Cancel(msgspec.Struct, tag=True):
    request_id: int


class Shutdown(msgspec.Struct, tag=True):
    pass


class Tokenize(msgspec.Struct, tag=True):
    """Token ids of a text or a conversation (`ids` empty), or the text of `ids`."""

    request_id: int
    text: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    add_special: bool = True
    ids: list[int] | None = None


class Tokens(msgspec.Struct, tag=True):
    request_id: int
    ids: list[int] = []
    text: str = ""
    pieces: list[str] = []
    error: str | None = None


class Load(msgspec.Struct, tag=True):
    spec: ModelSpec
    options: EngineOptions
    confinement: Confinement = Confinement()


class Ready(msgspec.Struct, tag=True):
    info: ModelInfo


class Deltas(msgspec.Struct, tag=True):
    deltas: list[Delta]


class Fatal(msgspec.Struct, tag=True):
    message: str


Command = Submit | Cancel | Shutdown | Tokenize
Event = Ready | Deltas | Fatal | Tokens


class EngineStartError(RuntimeError):
    """The worker could not load the model."""


# Told when a worker stops that was not asked to: (model id, pid, exit status; negative = signal).
RunnerExitHook = Callable[[str, int, int | None], None]


def load_backend(spec: ModelSpec, options: EngineOptions) -> tuple[Backend, ModelInfo]:
    """Construct the backend that serves `spec` on the device its options resolve to."""
    from adapters.registry import load_backend as load

    loaded = load(spec, options)
    info = loaded.backend.info()
    if loaded.fallback:
        info = msgspec.structs.replace(info, device_note=loaded.fallback)
    return loaded.backend, info


def _tokenize(backend: Backend, command: Tokenize) -> Tokens:
    """Answer a tokenize or detokenize command; a bad input is an error for this command only."""
    rid = command.request_id
    try:
        if command.ids is not None:
            text, pieces = backend.detokenize(command.ids)
            return Tokens(rid, ids=command.ids, text=text, pieces=pieces)
        ids = backend.tokenize(command.text, command.messages, command.add_special)
        text, pieces = backend.detokenize(ids)
        return Tokens(rid, ids=ids, text=text, pieces=pieces)
    except Exception as exc:
        return Tokens(rid, error=f"{type(exc).__name__}: {exc}")


def worker_main(conn: Connection) -> None:
    """Entry point of the worker process: load the model, then serve commands until shutdown."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Command)
    try:
        load = msgspec.msgpack.decode(conn.recv_bytes(), type=Load)
        # Confined before any model file is parsed: the loader is the largest attack surface.
        confine(load.confinement)
        backend, info = load_backend(load.spec, load.options)
    except Exception as exc:
        conn.send_bytes(encoder.encode(Fatal(f"{type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(encoder.encode(Ready(info)))
    try:
        while True:
            # Block while idle; between steps only drain what has arrived.
            while conn.poll(None if not backend.has_work() else 0):
                command = decoder.decode(conn.recv_bytes())
                if isinstance(command, Shutdown):
                    return
                if isinstance(command, Cancel):
                    backend.cancel(command.request_id)
                elif isinstance(command, Tokenize):
                    conn.send_bytes(encoder.encode(_tokenize(backend, command)))
                else:
                    try:
                        immediate = backend.submit(command.request)
                    except Exception as exc:  # a bug for this request only: report it, keep serving
                        log.exception("submit failed")
                        error = EngineError("internal_error", f"{type(exc).__name__}: {exc}")
                        immediate = [Delta(request_id=command.request.request_id, error=error)]
                    if immediate:
                        conn.send_bytes(encoder.encode(Deltas(immediate)))
            deltas = backend.step()
            if deltas:
                conn.send_bytes(encoder.encode(Deltas(deltas)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the server went away: nothing left to serve
    finally:
        backend.close()


class WorkerEngine:
    """An `Engine` whose model runs in a child process."""

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
        self._queues: dict[int, asyncio.Queue[Delta]] = {}
        self._tokenizing: dict[int, asyncio.Future[Tokens]] = {}
        self._ids = itertools.count(1)
        self._alive = True
        self._reader = threading.Thread(target=self._read_events, name=f"engine-reader-{info.model_id}", daemon=True)
        self._reader.start()

    @classmethod
    async def start(
        cls,
        spec: ModelSpec,
        options: EngineOptions,
        load_timeout: float = 300.0,
        confinement: Confinement | None = None,
        on_exit: RunnerExitHook | None = None,
    ) -> WorkerEngine:
        """Spawn a worker for `spec` (confined as `confinement` says, by default fully) and wait
        until its model is loaded; `on_exit` is told if it later stops unasked."""
        # A plain child interpreter (not multiprocessing's spawn) so that the worker never
        # re-imports the caller's __main__ module.
        parent_sock, child_sock = socket.socketpair()
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "adapters.worker", str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child_sock.close()
        parent = Connection(parent_sock.detach())
        parent.send_bytes(msgspec.msgpack.encode(Load(spec, options, confinement or Confinement())))
        decoder = msgspec.msgpack.Decoder(Event)
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(parent.recv_bytes), load_timeout)
        except (EOFError, TimeoutError) as exc:
            process.kill()
            raise EngineStartError(f"the worker for {spec.id} exited or timed out while loading") from exc
        event = decoder.decode(ready)
        if not isinstance(event, Ready):
            await asyncio.to_thread(process.wait, 5)
            raise EngineStartError(f"cannot load {spec.id}: {getattr(event, 'message', event)}")
        if event.info.device_note:
            log.warning("%s", event.info.device_note)
        log.info(
            "loaded %s on %s in %.1fs (worker pid %s)", spec.id, event.info.device, event.info.load_seconds, process.pid
        )
        return cls(process, parent, event.info, asyncio.get_running_loop(), on_exit)

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

    def _read_events(self) -> None:
        decoder = msgspec.msgpack.Decoder(Event)
        try:
            while True:
                event = decoder.decode(self._conn.recv_bytes())
                if isinstance(event, Deltas):
                    self._loop.call_soon_threadsafe(self._dispatch, event.deltas)
                elif isinstance(event, Tokens):
                    self._loop.call_soon_threadsafe(self._resolve_tokens, event)
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

    def _dispatch(self, deltas: list[Delta]) -> None:
        for delta in deltas:
            queue = self._queues.get(delta.request_id)
            if queue is not None:
                queue.put_nowait(delta)
                if delta.final:
                    del self._queues[delta.request_id]

    def _resolve_tokens(self, tokens: Tokens) -> None:
        future = self._tokenizing.pop(tokens.request_id, None)
        if future is not None and not future.done():
            future.set_result(tokens)

    async def tokenize(self, command: Tokenize) -> Tokens:
        """Run a tokenize/detokenize command in the worker (between batch steps)."""
        if not self._alive:
            return Tokens(command.request_id, error="the model worker is not running")
        future: asyncio.Future[Tokens] = self._loop.create_future()
        self._tokenizing[command.request_id] = future
        try:
            self._send(command)
            return await future
        except OSError:
            return Tokens(command.request_id, error="the model worker is not running")
        finally:
            self._tokenizing.pop(command.request_id, None)

    def _on_exit(self) -> None:
        if self._alive:
            log.error("the worker for %s exited (code %s)", self.info.model_id, self._process.poll())
        self._alive = False
        error = EngineError("engine_unavailable", f"the model worker for {self.info.model_id} stopped")
        for rid, queue in self._queues.items():
            queue.put_nowait(Delta(request_id=rid, error=error))
        self._queues.clear()
        for rid, future in self._tokenizing.items():
            if not future.done():
                future.set_result(Tokens(rid, error=error.message))
        self._tokenizing.clear()

    def _send(self, command: Command) -> None:
        self._conn.send_bytes(self._encoder.encode(command))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Stream the deltas of `request`; leaving early cancels it in the worker."""
        rid = request.request_id
        if not self._alive:
            yield Delta(request_id=rid, error=EngineError("engine_unavailable", "the model worker is not running"))
            return
        queue: asyncio.Queue[Delta] = asyncio.Queue()
        self._queues[rid] = queue
        try:
            try:
                self._send(Submit(request))
            except OSError:
                yield Delta(request_id=rid, error=EngineError("engine_unavailable", "the model worker is not running"))
                return
            while True:
                delta = await queue.get()
                yield delta
                if delta.final:
                    return
        finally:
            if self._queues.pop(rid, None) is not None and self._alive:
                with contextlib.suppress(OSError):
                    self._send(Cancel(rid))

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


if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
