"""The engine door's order against a real server: a request that gets a 400 gets it at once, even
while its model's only slot is busy, and without loading a model that is not loaded.

Two services of the default model: `busy` (preloaded, one request at a time) and `cold` (loads on
first use, which no request of this file makes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import HearthServer, run_hearth

SERVICES = """\
services:
  - name: busy
    max_concurrency: 1
    preload: true
  - name: cold
"""
MESSAGES = [{"role": "user", "content": "Count to ten."}]
# Refused by the translation, each for a different reason (none of them by msgspec's decoding).
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/chat/completions", {"messages": MESSAGES, "logit_bias": {"1": 1.0}}, "logit_bias"),
    ("/v1/chat/completions", {"messages": MESSAGES, "response_format": {"type": "json_schema"}}, "response_format"),
    ("/v1/chat/completions", {"messages": MESSAGES, "keep_alive": "a while"}, "keep_alive"),
    ("/v1/completions", {"prompt": "Once", "best_of": 3}, "best_of"),
    ("/v1/completions", {"prompt": [1, 2], "suffix": "end"}, "suffix"),
    ("/v1/responses", {"input": "hi", "background": True}, "background"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server of the two services above."""
    home = tmp_path_factory.mktemp("hearth-door")
    (home / "services.yaml").write_text(SERVICES)
    with run_hearth(home, "--services", str(home / "services.yaml"), "--kv-cache-gb", "1") as server:
        yield server


def _states(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in http.get("/v1/status").json()["models"]}


def test_a_400_never_waits_for_a_slot_nor_loads_a_model(server: HearthServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        assert _states(http)["busy"]["state"] == "loaded"
        assert _states(http)["cold"]["state"] == "unloaded"
        long = {"model": "busy", "messages": MESSAGES, "max_tokens": 4000, "ignore_eos": True, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=long) as held:
            assert held.status_code == 200
            lines = held.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            assert _states(http)["busy"]["active"] == 1

            # The slot is really held: a valid request waits (until its client gives up).
            with pytest.raises(httpx.ReadTimeout):
                http.post("/v1/chat/completions", json={"model": "busy", "messages": MESSAGES}, timeout=2)

            for model in ("busy", "cold"):
                for path, body, param in INVALID:
                    started = time.monotonic()
                    answer = http.post(path, json={"model": model, **body}, timeout=10)
                    elapsed = time.monotonic() - started
                    assert answer.status_code == 400, (model, path, answer.text)
                    assert param in (answer.json()["error"]["param"] or ""), (model, path, answer.text)
                    assert elapsed < 5, (model, path, elapsed)

            states = _states(http)
            assert states["busy"]["active"] == 1
            assert states["cold"]["state"] == "unloaded"
            assert states["cold"]["loads"] == 0
            # The held generation is still running: every 400 above came while it held the slot.
            chunk = next(line for line in lines if line.startswith("data: "))
            assert json.loads(chunk.removeprefix("data: "))["choices"][0]["finish_reason"] is None
