"""A second start on the same home serves the default model from the IR the first one saved.

Two real `hearth serve` processes, one after the other, on one `$HEARTH_HOME` and the defaults: the
first reads the GGUF (and saves its IR in $HEARTH_HOME/cache/ir), the second loads that IR. Both
answer the same greedy chat alike (the IR is the GGUF reader's own graph, so serving it must not
change what the model says), and the preloaded model loads while the HTTP server binds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_hearth

MODEL = "smollm2-135m-instruct"


def _answer_and_log(home: Path) -> tuple[str, str, dict[str, object]]:
    # Its own IR cache: the first start must read the GGUF, not the session's saved IR.
    with run_hearth(home, seed_ir=False, quick_start=True) as server:
        with server.openai_client() as client:
            reply = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Name three colours."}],
                temperature=0,
                max_tokens=24,
            )
        health = httpx.get(f"{server.base_url}/health", timeout=10).json()
        output = server.output()
    return reply.choices[0].message.content or "", output, health


@pytest.fixture(scope="module")
def two_starts(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, list[tuple[str, str, dict[str, object]]]]]:
    """(home, [(answer, server log, /health body) of the first start, ... of the second])."""
    home = tmp_path_factory.mktemp("warm-home")
    first = _answer_and_log(home)
    second = _answer_and_log(home)
    yield home, [first, second]


def test_the_first_start_reads_the_gguf_and_saves_its_ir(
    two_starts: tuple[Path, list[tuple[str, str, dict[str, object]]]],
) -> None:
    home, [(_, log, _), _] = two_starts
    assert f"loaded {MODEL} on " in log and "from its cached IR" not in log, log
    folders = list((home / "cache" / "ir").iterdir())
    assert len(folders) == 1 and (folders[0] / "openvino_model.xml").is_file(), folders
    assert (folders[0] / "openvino_tokenizer.xml").is_file() and (folders[0] / "openvino_detokenizer.xml").is_file()


def test_the_second_start_loads_the_cached_ir(
    two_starts: tuple[Path, list[tuple[str, str, dict[str, object]]]],
) -> None:
    home, [_, (_, log, health)] = two_starts
    assert f"from its cached IR {home / 'cache' / 'ir'}" in log, log
    assert health == {"status": "ok", "models": {MODEL: "ready"}, "audit": "ok"}


def test_the_ir_answers_like_the_gguf(two_starts: tuple[Path, list[tuple[str, str, dict[str, object]]]]) -> None:
    _, [(from_gguf, _, _), (from_ir, _, _)] = two_starts
    assert from_gguf.strip() and from_ir == from_gguf


def test_the_model_loads_while_the_server_binds(
    two_starts: tuple[Path, list[tuple[str, str, dict[str, object]]]],
) -> None:
    # The first start: its model takes ~15 s (the GGUF read, its IR saved). A warm start's worker
    # is launched before the app is built (server/serving/prestart.py) and may be ready first.
    _, [(_, log, _), _] = two_starts
    bound = log.index("Application startup complete")
    assert bound < log.index(f"loaded {MODEL} on "), log
