"""The preloaded models' workers, started before the server imports its web framework.

A warm start spends ~2 s (more on a busy machine) importing Litestar and the routes and building
the app before the lifespan asks for the first worker; the worker then spends as long again loading
its model. `hearth serve` calls `start_early` first, so that the two overlap on separate cores; the
scheduler's runners adopt these workers when they start the same load (adapters/engines.py
`EarlyStarts`), and the app stops any nobody adopted.
"""

from __future__ import annotations

import logging

from adapters.engines import EarlyStarts
from hub.store import ArtifactStore
from server.security.confinement import worker_confinement
from server.serving.deployments import deployments
from server.settings import Settings

log = logging.getLogger(__name__)


def start_early(settings: Settings) -> EarlyStarts:
    """Start a worker for each preloaded model now, when the server preloads while binding; a
    services file that cannot be read starts none (create_app reports it)."""
    early = EarlyStarts()
    if not settings.scheduler.preload_while_binding:
        return early
    try:
        preloaded = [d for d in deployments(settings, ArtifactStore(settings.models_dir)) if d.service.preload]
    except Exception as exc:  # the same error comes back, with its message, from create_app
        log.debug("no early workers: %s", exc)
        return early
    confinement = worker_confinement(settings)
    for deployment in preloaded:
        early.launch(deployment.spec, deployment.options, confinement)
    return early
