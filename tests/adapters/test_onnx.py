"""The ONNX Runtime GenAI backend in-process: fair interleaving, the wait queue and cancellation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.base import Delta, EngineOptions, GenerationRequest, SamplingParams
from adapters.onnx import ONNXBackend
from hub.models import resolve_model


@pytest.fixture(scope="module")
def backend(tiny_onnx_dir: Path) -> Iterator[ONNXBackend]:
    loaded = ONNXBackend(resolve_model("tiny-onnx", str(tiny_onnx_dir)), EngineOptions(device="cpu", max_num_seqs=2))
    yield loaded
    loaded.close()


def _request(rid: int, max_tokens: int = 8) -> GenerationRequest:
    params = SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True)
    return GenerationRequest(request_id=rid, prompt_ids=(5, 6, 7), params=params)


def test_info_reads_the_builder_config(backend: ONNXBackend) -> None:
    info = backend.info()
    assert info.backend == "onnx" and info.device == "cpu"
    assert info.context_length == 256  # max_position_embeddings of the tiny Llama
    assert not info.capabilities.batching


def test_running_requests_take_turns_and_extra_ones_wait(backend: ONNXBackend) -> None:
    for rid in (1, 2, 3):
        assert backend.submit(_request(rid)) == []
    first: list[Delta] = backend.step()
    # Two slots (max_num_seqs=2): the first two advance one token each, the third waits its turn.
    assert sorted(d.request_id for d in first if d.tokens) == [1, 2]
    done: dict[int, int] = {1: 0, 2: 0, 3: 0}
    for d in first:
        done[d.request_id] += d.tokens
    while backend.has_work():
        for d in backend.step():
            done[d.request_id] += d.tokens
    assert done == {1: 8, 2: 8, 3: 8}


def test_cancel_frees_running_and_waiting_requests(backend: ONNXBackend) -> None:
    for rid in (10, 11, 12):
        backend.submit(_request(rid, max_tokens=200))
    backend.step()
    backend.cancel(10)  # running
    backend.cancel(12)  # still waiting
    seen = set()
    while backend.has_work():
        seen |= {d.request_id for d in backend.step()}
    assert seen == {11}


def test_same_output_alone_and_interleaved(backend: ONNXBackend) -> None:
    def run(*requests: GenerationRequest) -> dict[int, tuple[str, int]]:
        out = {r.request_id: ("", 0) for r in requests}
        for r in requests:
            backend.submit(r)
        while backend.has_work():
            for d in backend.step():
                text, tokens = out[d.request_id]
                out[d.request_id] = (text + d.text, tokens + d.tokens)
        return out

    assert backend.count_tokens(_request(20)) == 3
    alone = [run(_request(20, 5))[20], run(_request(21, 7))[21]]
    together = run(_request(22, 5), _request(23, 7))
    assert [together[22], together[23]] == alone
    assert [tokens for _, tokens in alone] == [5, 7]
