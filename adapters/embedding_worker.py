"""Runs an embedding model in its own process and exposes it to the server as an async engine.

Like the chat worker (adapters/worker.py), the model lives in a child interpreter that talks
msgpack over a socket pair, so a crash or a long batch never blocks the server's event loop. The
worker drains every request that arrived while it was busy and embeds all their texts together:
concurrent API calls share engine calls.
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
from multiprocessing.connection import Connection

import msgspec

from adapters.base import EngineError
from adapters.embeddings import EmbeddingInfo, EmbeddingSpec, EmbedRequest, EmbedResult, OpenVINOEmbedder, embed_batch
from adapters.worker import EngineStartError

log = logging.getLogger(__name__)

_NOT_RUNNING = "the model worker is not running"


class Load(msgspec.Struct, tag=True):
    spec: EmbeddingSpec
    device: str


class Embed(msgspec.Struct, tag=True):
    request: EmbedRequest


class Shutdown(msgspec.Struct, tag=True):
    pass


class Ready(msgspec.Struct, tag=True):
    info: EmbeddingInfo


class Results(msgspec.Struct, tag=True):
    results: list[EmbedResult]


class Fatal(msgspec.Struct, tag=True):
    message: str


Command = Embed | Shutdown
Event = Ready | Results | Fatal


def _serve(conn: Connection, embedder: OpenVINOEmbedder) -> None:
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Command)
    while True:
        commands = [decoder.decode(conn.recv_bytes())]
        while conn.poll(0):
            commands.append(decoder.decode(conn.recv_bytes()))
        requests = [c.request for c in commands if isinstance(c, Embed)]
        if requests:
            try:
                results = embed_batch(embedder, requests)
            except Exception as exc:  # a bug for these requests only: report it, keep serving
                log.exception("embedding failed")
                error = EngineError("internal_error", f"{type(exc).__name__}: {exc}")
                results = [EmbedResult(request_id=r.request_id, error=error) for r in requests]
            conn.send_bytes(encoder.encode(Results(results)))
        if any(isinstance(c, Shutdown) for c in commands):
            return


def _load(load: Load) -> OpenVINOEmbedder:
    """The embedder on the device `load` asks for; `auto` tries the best accelerator, then the CPU."""
    from adapters.registry import available_devices, plan_devices

    plan = plan_devices("openvino", load.device, available_devices("openvino"))
    if plan.note:
        log.warning("%s", plan.note)
    failure: Exception | None = None
    for device in plan.candidates:
        try:
            return OpenVINOEmbedder(load.spec, device)
        except Exception as exc:
            log.warning("cannot load %s on %s: %s", load.spec.id, device, exc)
            failure = exc
    assert failure is not None  # a plan always has a candidate
    raise failure


def worker_main(conn: Connection) -> None:
    """Entry point of the worker process: load the model, then embed until shutdown."""
    encoder = msgspec.msgpack.Encoder()
    try:
        load = msgspec.msgpack.decode(conn.recv_bytes(), type=Load)
        embedder = _load(load)
    except Exception as exc:
        conn.send_bytes(encoder.encode(Fatal(f"{type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(encoder.encode(Ready(embedder.info())))
    try:
        _serve(conn, embedder)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the server went away
    finally:
        embedder.close()


class EmbeddingWorker:
    """An embedding model running in a child process; `embed` may be awaited concurrently."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, info: EmbeddingInfo) -> None:
        self.info = info
        self._process = process
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._encoder = msgspec.msgpack.Encoder()
        self._waiting: dict[int, asyncio.Future[EmbedResult]] = {}
        self._ids = itertools.count(1)
        self._alive = True
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_events, name=f"embed-reader-{info.model_id}", daemon=True)
        self._reader.start()

    @classmethod
    async def start(cls, spec: EmbeddingSpec, device: str = "CPU", load_timeout: float = 300.0) -> EmbeddingWorker:
        """Spawn a worker for `spec` and wait until its model is loaded."""
        parent_sock, child_sock = socket.socketpair()
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "adapters.embedding_worker", str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child_sock.close()
        parent = Connection(parent_sock.detach())
        parent.send_bytes(msgspec.msgpack.encode(Load(spec, device)))
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(parent.recv_bytes), load_timeout)
        except (EOFError, TimeoutError) as exc:
            process.kill()
            raise EngineStartError(f"the embedding worker for {spec.id} exited or timed out while loading") from exc
        event = msgspec.msgpack.decode(ready, type=Event)
        if not isinstance(event, Ready):
            await asyncio.to_thread(process.wait, 5)
            raise EngineStartError(f"cannot load {spec.id}: {getattr(event, 'message', event)}")
        log.info("loaded embedding model %s in %.1fs (worker pid %s)", spec.id, event.info.load_seconds, process.pid)
        return cls(process, parent, event.info)

    @property
    def alive(self) -> bool:
        """Whether the worker process is still serving."""
        return self._alive

    def _read_events(self) -> None:
        decoder = msgspec.msgpack.Decoder(Event)
        try:
            while True:
                event = decoder.decode(self._conn.recv_bytes())
                if isinstance(event, Results):
                    self._loop.call_soon_threadsafe(self._dispatch, event.results)
        except (EOFError, OSError):
            pass
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_exit)

    def _dispatch(self, results: list[EmbedResult]) -> None:
        for result in results:
            future = self._waiting.pop(result.request_id, None)
            if future is not None and not future.done():
                future.set_result(result)

    def _on_exit(self) -> None:
        if self._alive:
            log.error("the embedding worker for %s exited (code %s)", self.info.model_id, self._process.poll())
        self._alive = False
        error = EngineError("engine_unavailable", f"the model worker for {self.info.model_id} stopped")
        for rid, future in self._waiting.items():
            if not future.done():
                future.set_result(EmbedResult(request_id=rid, error=error))
        self._waiting.clear()

    async def embed(self, texts: list[str]) -> EmbedResult:
        """The vectors and token counts of `texts`, or an `EmbedResult` with an error."""
        rid = next(self._ids)
        if not self._alive:
            return EmbedResult(request_id=rid, error=EngineError("engine_unavailable", _NOT_RUNNING))
        future: asyncio.Future[EmbedResult] = self._loop.create_future()
        self._waiting[rid] = future
        try:
            payload = self._encoder.encode(Embed(EmbedRequest(request_id=rid, texts=tuple(texts))))
            # Large batches are written from a thread so the event loop never blocks on the socket.
            await asyncio.to_thread(self._send, payload)
        except OSError:
            self._waiting.pop(rid, None)
            return EmbedResult(request_id=rid, error=EngineError("engine_unavailable", _NOT_RUNNING))
        try:
            return await future
        finally:
            self._waiting.pop(rid, None)

    def _send(self, payload: bytes) -> None:
        with self._send_lock:
            self._conn.send_bytes(payload)

    async def close(self) -> None:
        """Ask the worker to stop, and kill it if it does not."""
        self._alive = False
        with contextlib.suppress(OSError):
            self._send(self._encoder.encode(Shutdown()))
        try:
            await asyncio.to_thread(self._process.wait, 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            await asyncio.to_thread(self._process.wait, 5)
        self._conn.close()


if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
