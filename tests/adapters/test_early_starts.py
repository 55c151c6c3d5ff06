"""Workers started early (adapters/engines.py `EarlyStarts`): handed over only for the same load,
and stopped when nobody adopts them. Real worker processes on the default model."""

from __future__ import annotations

import asyncio
import os

import msgspec

from adapters.base import EngineOptions
from adapters.engines import EarlyStarts, start_engine
from adapters.sandbox import Confinement
from hub.models import ModelSpec, default_model_path


def test_a_worker_is_adopted_only_by_the_same_load_and_the_rest_are_stopped() -> None:
    spec = ModelSpec(id="smollm2-135m-instruct", path=str(default_model_path()), format="gguf")
    options = EngineOptions(kv_cache_gb=0.05)
    early = EarlyStarts()
    early.launch(spec, options, Confinement())
    early.launch(spec, msgspec.structs.replace(options, threads=1), Confinement())
    processes = [launched.process for launched in early._launched]
    # Another option, another load: not this worker.
    assert early.take(spec, msgspec.structs.replace(options, threads=2), Confinement()) is None

    async def adopt() -> None:
        engine = await start_engine(spec, options, Confinement(), early=early)
        try:
            assert engine.pid == processes[0].pid and engine.alive
        finally:
            await engine.close()

    asyncio.run(adopt())
    assert processes[0].poll() is not None
    # The one nobody adopted is stopped, and its scratch directory removed.
    scratch = early._launched[0].scratch
    early.discard()
    assert processes[1].poll() is not None and early.take(spec, options, Confinement()) is None
    assert not os.path.exists(scratch)
