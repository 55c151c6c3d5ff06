"""The model worker process: read a `Load`, confine, build the model, serve commands until shutdown.

Started by adapters/worker.py as `python -m adapters.worker_main FD`, with FD its end of a socket
pair. A text generation backend is advanced one batch step at a time, and commands are drained
between steps; an embedding model embeds every `Embed` that arrived while it was busy in one call.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from multiprocessing.connection import Connection

import msgspec

from adapters.base import Backend, Delta, EmbedResult, EngineError, ModelInfo, Tokenize, Tokens
from adapters.embeddings import OpenVINOEmbedder, embed_batch, load_embedder
from adapters.ipc import (
    Cancel,
    Command,
    Deltas,
    Embed,
    Fatal,
    Load,
    LoadChat,
    LoadEmbeddings,
    Ready,
    Results,
    Shutdown,
    Submit,
)
from adapters.sandbox import confine
from adapters.solo import solo_cache_dir

log = logging.getLogger(__name__)


def load_backend(load: LoadChat) -> tuple[Backend, ModelInfo]:
    """Construct the backend that serves `load.spec` on the device its options resolve to."""
    from adapters.registry import load_backend as load_on_device

    loaded = load_on_device(load.spec, load.options)
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


def _submit(backend: Backend, command: Submit) -> list[Delta]:
    try:
        return backend.submit(command.request)
    except Exception as exc:  # a bug for this request only: report it, keep serving
        log.exception("submit failed")
        error = EngineError("internal_error", f"{type(exc).__name__}: {exc}")
        return [Delta(request_id=command.request.request_id, error=error)]


def serve_chat(conn: Connection, backend: Backend) -> None:
    """Run batch steps while requests are running; between steps, take what has arrived."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Command)
    while True:
        # Block while idle; between steps only drain what has arrived.
        while conn.poll(None if not backend.has_work() else 0):
            match decoder.decode(conn.recv_bytes()):
                case Shutdown():
                    return
                case Cancel(request_id=rid):
                    backend.cancel(rid)
                case Tokenize() as command:
                    conn.send_bytes(encoder.encode(_tokenize(backend, command)))
                case Submit() as command:
                    if immediate := _submit(backend, command):
                        conn.send_bytes(encoder.encode(Deltas(immediate)))
                case Embed(request=request):
                    error = EngineError("invalid_request", "this worker serves a model that generates text")
                    conn.send_bytes(encoder.encode(Results([EmbedResult(request_id=request.request_id, error=error)])))
        if deltas := backend.step():
            conn.send_bytes(encoder.encode(Deltas(deltas)))


def serve_embeddings(conn: Connection, embedder: OpenVINOEmbedder) -> None:
    """Embed, in one engine call, every request that arrived while the last call ran."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Command)
    while True:
        commands = [decoder.decode(conn.recv_bytes())]
        while conn.poll(0):
            commands.append(decoder.decode(conn.recv_bytes()))
        requests = []
        stop = False
        for command in commands:
            match command:
                case Embed(request=request):
                    requests.append(request)
                case Shutdown():
                    stop = True
                case _:
                    log.warning("an embedding worker ignores %s", type(command).__name__)
        if requests:
            try:
                results = embed_batch(embedder, requests)
            except Exception as exc:  # a bug for these requests only: report it, keep serving
                log.exception("embedding failed")
                error = EngineError("internal_error", f"{type(exc).__name__}: {exc}")
                results = [EmbedResult(request_id=r.request_id, error=error) for r in requests]
            conn.send_bytes(encoder.encode(Results(results)))
        if stop:
            return


def _cache_dirs(load: Load) -> list[str]:
    """The compiled-model cache, the one place beside its scratch directory a worker may write;
    made before confinement, which can only grant paths that exist."""
    cache_dir = load.options.cache_dir
    if not cache_dir:
        return []
    os.makedirs(cache_dir, exist_ok=True)
    if load.options.quick_start:
        os.makedirs(solo_cache_dir(load.options), exist_ok=True)
    return [cache_dir]


def confine_for(load: Load) -> list[str]:
    """Confine this process as the worker for `load` (its model readable, its cache writable)."""
    reads, writes = [load.spec.path], _cache_dirs(load)
    if load.spec.format == "gguf":
        # OpenVINO GenAI's GGUF reader (gguflib) opens the file O_RDWR|O_APPEND and fails
        # otherwise: the worker may write its own GGUF file (never truncate it, nor anything
        # else); a changed file fails `hearth verify` against its manifest.
        writes.append(load.spec.path)
    applied = confine(load.confinement, reads=reads, writes=writes)
    if "landlock:unavailable" in applied:
        log.warning("this kernel has no Landlock: the worker for %s is not confined to its files", load.spec.id)
    return applied


def main(conn: Connection) -> None:
    """Load the model `Load` names, confined before any model file is parsed (the loader is the
    largest attack surface), then serve until shutdown or until the server goes away."""
    # Stopping is the server's call: a SIGTERM or Ctrl-C sent to the whole process group (as
    # `systemctl stop` and a terminal do) must not end the worker before the server has drained
    # its streams. The worker still ends when the server says so or its socket closes.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker serves models and never converts one: without this entry `import openvino` also
    # imports its model converter (openvino.tools.ovc, with telemetry and absl), ~0.15 s of each
    # start (measured). A None entry makes that import fail, which openvino's __init__ allows.
    if "openvino.tools.ovc" not in sys.modules:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]  # None: "not importable"
    encoder = msgspec.msgpack.Encoder()
    try:
        load = msgspec.msgpack.decode(conn.recv_bytes(), type=Load)
        confine_for(load)
        match load:
            case LoadChat():
                backend, info = load_backend(load)
                model: Backend | OpenVINOEmbedder = backend
            case LoadEmbeddings(spec=spec, options=options):
                embedder = load_embedder(spec, options.device)
                model, info = embedder, embedder.info()
    except Exception as exc:
        conn.send_bytes(encoder.encode(Fatal(f"{type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(encoder.encode(Ready(info)))
    try:
        if isinstance(model, OpenVINOEmbedder):
            serve_embeddings(conn, model)
        else:
            serve_chat(conn, model)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the server went away: nothing left to serve
    # The model is not closed: the process ends here, as multiprocessing's children do, without
    # tearing down the interpreter. Closing would wait for a batching pipeline still building
    # (quick start), which held `hearth serve`'s exit for the rest of the build (measured: 5.9 s
    # when stopped right after its first answer, 0.7 s without waiting). Nothing is left to write:
    # a model's files are saved during its load, before `Ready`.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(Connection(int(sys.argv[1])))
