"""The preloaded model's worker, started by `hearth serve` before it imports the web framework.

Why (benchmarks/RESULTS.md, session 24): importing Litestar and building the app takes ~2.4 s of a
warm start, during which one of the machine's cores would otherwise sit idle, while the model worker
needs ~2 s to import OpenVINO and load the model. Starting the worker first runs the two side by
side.

The worker is only launched here. The scheduler still decides what to load: its engine factory
(`Prestart.factory`) adopts the launched worker only when the scheduler asks for exactly the model,
engine options and confinement the worker was given, and otherwise starts its own. A worker nobody
adopted is stopped when the app stops (`discard`).
"""

from __future__ import annotations

import logging

from adapters.base import EngineOptions, RunnerExitHook
from adapters.chat_engine import ChatEngine
from adapters.ipc import LoadChat
from adapters.worker import Launched
from hub.models import ModelSpec
from hub.store import ArtifactStore
from server.serving.deployments import Deployment, deployments
from server.serving.runner import EngineFactory, ManagedEngine
from server.settings import Settings

log = logging.getLogger(__name__)


class Prestart:
    """A launched worker (or none) waiting for the scheduler's first preload to adopt it."""

    def __init__(self, launched: Launched | None = None, planned: list[Deployment] | None = None) -> None:
        self._launched = launched
        # The deployments computed to find the worker to launch: `create_app` takes them rather
        # than reading the model's metadata again.
        self.planned = planned

    @property
    def pending(self) -> bool:
        """Whether a launched worker still waits to be adopted."""
        return self._launched is not None

    def factory(self, inner: EngineFactory, on_exit: RunnerExitHook | None) -> EngineFactory:
        """`inner`, except that a request for exactly what the launched worker loads adopts it."""

        async def start(spec: ModelSpec, options: EngineOptions) -> ManagedEngine:
            launched = self._launched
            if launched is not None and launched.load.spec == spec and launched.load.options == options:
                self._launched = None
                return await ChatEngine.adopt(launched, on_exit=on_exit)
            return await inner(spec, options)

        return start

    def discard(self) -> None:
        """Stop a launched worker that nobody adopted."""
        if self._launched is not None:
            self._launched.kill()
            self._launched = None


def prestart(settings: Settings) -> Prestart:
    """Launch the worker of the first model the scheduler will preload, when that is a text model
    on its own (no services file naming several); never raises: whatever goes wrong here, the
    scheduler's own load reports."""
    if not settings.scheduler.preload_model or settings.scheduler.services is not None:
        return Prestart()
    try:
        planned = deployments(settings, ArtifactStore(settings.models_dir))
        first = next((d for d in planned if d.service.preload and d.kind == "chat"), None)
        if first is None:
            return Prestart()
        load = LoadChat(first.spec, first.options, settings.worker_confinement())
        return Prestart(ChatEngine.launch(load), planned)
    except Exception as exc:  # the scheduler's load will say what is wrong
        log.debug("no early start of the model worker: %s", exc)
        return Prestart()
