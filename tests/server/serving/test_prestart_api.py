"""`hearth serve` starts the preloaded model's worker before it builds the app, and the scheduler
adopts that worker only when it asks for exactly what the worker loads (server/serving/prestart.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psutil
import pytest

from adapters.base import EngineOptions
from adapters.chat_engine import ChatEngine
from adapters.ipc import LoadChat
from hub.models import ModelSpec
from server.serving.deployments import deployments
from server.serving.prestart import Prestart, prestart
from server.serving.runner import ManagedEngine
from server.settings import Settings, load_settings
from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    with run_hearth(tmp_path_factory.mktemp("prestart"), quick_start=True) as running:
        yield running


def _workers(server: HearthServer) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [p for p in children if "adapters.worker_main" in " ".join(p.cmdline())]


def test_the_worker_started_before_the_app_is_the_one_that_serves(server: HearthServer) -> None:
    with server.openai_client() as client:
        reply = client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0
        )
    assert reply.choices[0].message.content
    (worker,) = _workers(server)  # one model worker: nothing launched twice, nothing left behind
    log = server.output()
    assert f"(worker pid {worker.pid})" in log, log
    # Launched before uvicorn started its server process (the app is built before that line).
    started = re.search(r"^(\S+ \S+) INFO uvicorn.error: Started server process", log, re.MULTILINE)
    assert started is not None, log
    started_at = dt.datetime.strptime(started.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    assert worker.create_time() < started_at, (worker.create_time(), started_at)


def _settings(home: Path, **flags: object) -> Settings:
    return load_settings({"home": str(home), **flags})


def test_nothing_is_launched_without_a_preloaded_model(tmp_path: Path) -> None:
    assert not prestart(_settings(tmp_path, preload_model=False)).pending
    services = tmp_path / "services.yaml"
    services.write_text(f"- name: a\n  model: {DEFAULT_MODEL}\n  preload: true\n")
    assert not prestart(_settings(tmp_path, services=str(services))).pending


def test_a_worker_launched_for_other_options_is_not_adopted_and_is_stopped(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (planned,) = deployments(settings)
    launched = ChatEngine.launch(LoadChat(planned.spec, planned.options, settings.worker_confinement()))
    early = Prestart(launched)
    asked: list[EngineOptions] = []

    async def inner(spec: ModelSpec, options: EngineOptions) -> ManagedEngine:
        asked.append(options)
        raise RuntimeError("the scheduler's own start")

    other = msgspec.structs.replace(planned.options, max_num_seqs=planned.options.max_num_seqs + 1)

    async def ask() -> ManagedEngine:
        return await early.factory(inner, None)(planned.spec, other)

    with pytest.raises(RuntimeError, match="own start"):
        asyncio.run(ask())
    assert asked == [other] and early.pending
    early.discard()
    assert not early.pending
    assert launched.process.poll() is not None  # stopped
    assert not Path(launched.scratch).exists()
