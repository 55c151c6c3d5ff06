"""Starting an engine of either kind: what the server's engine factory calls, and the workers the
server starts early for its preloaded models (`EarlyStarts`)."""

from __future__ import annotations

import logging

from adapters.base import EmbeddingSpec, EngineOptions, RunnerExitHook
from adapters.chat_engine import ChatEngine
from adapters.embedding_engine import EmbeddingEngine
from adapters.ipc import Load, LoadChat, LoadEmbeddings
from adapters.sandbox import Confinement
from adapters.worker import Launched, launch
from hub.models import ModelSpec

log = logging.getLogger(__name__)


def load_message(spec: ModelSpec, options: EngineOptions, confinement: Confinement | None) -> Load:
    """What a worker for `spec` is sent: the load of its engine kind."""
    if isinstance(spec, EmbeddingSpec):
        return LoadEmbeddings(spec, options, confinement or Confinement())
    return LoadChat(spec, options, confinement or Confinement())


class EarlyStarts:
    """Workers started before the server is ready for them: `hearth serve` starts its preloaded
    models' workers first, so that they load while the server imports its web framework and binds
    (~2 s of a warm start, benchmarks/RESULTS.md). A runner that starts the same load adopts its
    worker (`take`); one nobody adopted is stopped with `discard`."""

    def __init__(self) -> None:
        self._launched: list[Launched] = []

    def launch(self, spec: ModelSpec, options: EngineOptions, confinement: Confinement | None) -> None:
        """Start a worker for `spec` now (a failure to start is logged: the runner starts one later)."""
        try:
            self._launched.append(launch(load_message(spec, options, confinement)))
        except OSError as exc:
            log.warning("cannot start the worker for %s early: %s", spec.id, exc)

    def take(self, spec: ModelSpec, options: EngineOptions, confinement: Confinement | None) -> Launched | None:
        """The worker started early for exactly this load, handed over once; None if there is none."""
        wanted = load_message(spec, options, confinement)
        for launched in self._launched:
            if launched.load == wanted:
                self._launched.remove(launched)
                log.info("adopting the worker started early for %s (pid %s)", spec.id, launched.process.pid)
                return launched
        return None

    def discard(self) -> None:
        """Stop every worker nobody adopted."""
        for launched in self._launched:
            log.info("stopping the early worker for %s: no runner asked for it", launched.load.spec.id)
            launched.discard()
        self._launched.clear()


async def start_engine(
    spec: ModelSpec,
    options: EngineOptions,
    confinement: Confinement | None = None,
    on_exit: RunnerExitHook | None = None,
    early: EarlyStarts | None = None,
) -> ChatEngine | EmbeddingEngine:
    """A worker process serving `spec`: an embedding engine for an `EmbeddingSpec`, else a text
    generation engine; confined as `confinement` says (by default fully), and `on_exit` is told
    if it stops unasked. A worker `early` started for this same load is adopted."""
    launched = early.take(spec, options, confinement) if early is not None else None
    if isinstance(spec, EmbeddingSpec):
        return await EmbeddingEngine.start(spec, options, confinement=confinement, on_exit=on_exit, launched=launched)
    return await ChatEngine.start(spec, options, confinement=confinement, on_exit=on_exit, launched=launched)
