"""Quick start on the real default model: the stateful pipeline answers while the batching one builds."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.base import ChatMessage, Delta, EngineOptions, GenerationRequest, SamplingParams
from adapters.ir_cache import PipelineSource, ir_folder, is_complete
from adapters.openvino import OpenVINOBackend, quick_start_source
from hub.models import DEFAULT_MODEL_ID, ModelSpec, resolve_model

# Where a greedy answer of the stateful pipeline may part from the batching one's: only where the
# batching pipeline itself was unsure (its u8 KV cache against the stateful one's f32).
_TIED = math.log(0.75)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, EngineOptions]:
    """A model cache holding the default model's IR (the first load saves it; no quick start then)
    and the stateful pipeline's compiled blob (the first quick start saves it)."""
    spec = resolve_model(DEFAULT_MODEL_ID, None)
    cache = tmp_path_factory.mktemp("model-cache")
    options = EngineOptions(
        context_length=1024, kv_cache_gb=0.05, cache_dir=str(cache), gguf_ir_cache=True, quick_start=True
    )
    first = OpenVINOBackend(spec, options)
    assert "stateful" not in first.info().loaded_from  # it read the GGUF and saved the IR
    assert first.serving_pipeline() == "batching"
    first.close()
    assert is_complete(ir_folder(Path(spec.path), cache))
    OpenVINOBackend(spec, options).close()  # saves the stateful pipeline's blob
    return spec, options


@pytest.fixture
def starting(warm: tuple[ModelSpec, EngineOptions]) -> Iterator[OpenVINOBackend]:
    """A backend just loaded: the stateful pipeline serves, the batching one is not built yet."""
    backend = OpenVINOBackend(*warm)
    assert backend.serving_pipeline() == "stateful"
    assert "stateful pipeline first" in backend.info().loaded_from
    yield backend
    backend.close()


def _chat(rid: int, text: str, **params: Any) -> GenerationRequest:
    return GenerationRequest(
        request_id=rid, messages=(ChatMessage("user", text),), params=SamplingParams(temperature=0.0, **params)
    )


def _run(backend: OpenVINOBackend, *requests: GenerationRequest) -> dict[int, list[Delta]]:
    out: dict[int, list[Delta]] = {r.request_id: [] for r in requests}
    for request in requests:
        for delta in backend.submit(request):
            out[delta.request_id].append(delta)
    deadline = time.monotonic() + 120
    while any(not d or not d[-1].final for d in out.values()):
        assert time.monotonic() < deadline, "the backend stopped answering"
        for delta in backend.step():
            out[delta.request_id].append(delta)
    return out


def _settle(backend: OpenVINOBackend) -> None:
    """Step until the batching pipeline serves and the stateful one is gone."""
    deadline = time.monotonic() + 120
    while backend.has_work():
        assert time.monotonic() < deadline
        backend.step()


def test_the_first_answer_comes_from_the_stateful_pipeline_and_later_ones_from_the_batching_one(
    starting: OpenVINOBackend,
) -> None:
    prompts = ["What is the capital of France?", "Write a haiku about the sea.", "Count from one to ten."]
    early = [_run(starting, _chat(i, p, max_tokens=24))[i] for i, p in enumerate(prompts)]
    _settle(starting)
    assert starting.serving_pipeline() == "batching"
    for i, prompt in enumerate(prompts):
        late = _run(starting, _chat(10 + i, prompt, max_tokens=24, logprobs=True))[10 + i]
        assert early[i][0].prompt_tokens == late[0].prompt_tokens
        solo_text = "".join(d.text for d in early[i])
        batched_text = "".join(d.text for d in late)
        if solo_text == batched_text:
            assert early[i][-1].finish_reason == late[-1].finish_reason
            assert sum(d.tokens for d in early[i]) == sum(d.tokens for d in late)
            continue
        # They may part only where the batching pipeline was not sure of its own token.
        common = ""
        for lp in (lp for d in late for lp in d.logprobs):
            if not solo_text.startswith(common + lp.token):
                assert lp.logprob < _TIED, (prompt, solo_text, batched_text)
                break
            common += lp.token


def test_a_request_that_waits_is_answered_and_the_stateful_pipeline_is_then_dropped(
    starting: OpenVINOBackend,
) -> None:
    # Two at once: the second waits for the stateful pipeline or the batching one, whichever first;
    # the third needs log probabilities, which only the batching pipeline gives.
    out = _run(
        starting,
        _chat(1, "Tell me a story.", max_tokens=40, ignore_eos=True),
        _chat(2, "Tell me a story.", max_tokens=40, ignore_eos=True),
        _chat(3, "Say yes.", max_tokens=3, ignore_eos=True, logprobs=True),
    )
    assert [sum(d.tokens for d in out[i]) for i in (1, 2, 3)] == [40, 40, 3]
    assert all(out[i][-1].finish_reason == "length" for i in (1, 2, 3))
    assert len([lp for d in out[3] for lp in d.logprobs]) == 3
    _settle(starting)
    assert starting.serving_pipeline() == "batching"
    assert not starting.has_work()


def test_stop_strings_and_cancel_on_the_stateful_pipeline(starting: OpenVINOBackend) -> None:
    full = "".join(d.text for d in _run(starting, _chat(1, "What is the capital of France?", max_tokens=20))[1])
    assert "Paris" in full
    deltas = _run(starting, _chat(2, "What is the capital of France?", max_tokens=20, stop=("Paris",)))[2]
    assert "".join(d.text for d in deltas) == full[: full.index("Paris")]
    assert deltas[-1].finish_reason == "stop"
    assert starting.submit(_chat(3, "Write a long story.", max_tokens=400, ignore_eos=True)) == []
    got = 0
    while got < 3:
        got += sum(d.tokens for d in starting.step())
    starting.cancel(3)
    _settle(starting)  # the cancelled generation ended, so the stateful pipeline could be dropped
    assert starting.serving_pipeline() == "batching"


def test_quick_start_needs_an_ir_on_disk_the_model_cache_and_a_cpu(
    warm: tuple[ModelSpec, EngineOptions], tmp_path: Path
) -> None:
    spec, options = warm
    ir = PipelineSource(str(ir_folder(Path(spec.path), Path(options.cache_dir))), from_ir_cache=True)
    assert quick_start_source(ir, options)
    assert not quick_start_source(ir, msgspec.structs.replace(options, quick_start=False))
    assert not quick_start_source(ir, msgspec.structs.replace(options, cache_dir=""))
    assert not quick_start_source(ir, msgspec.structs.replace(options, device="GPU"))
    assert not quick_start_source(PipelineSource(spec.path), options)  # the GGUF itself
    staging = tmp_path / "staging"
    staging.mkdir()
    saving = PipelineSource(str(staging / "source.gguf"), _staging=staging, _target=tmp_path / "ir")
    assert not quick_start_source(saving, options)  # this load saves the IR: nothing compiled yet


def test_a_request_longer_than_the_stateful_cache_waits_for_the_batching_pipeline(
    warm: tuple[ModelSpec, EngineOptions],
) -> None:
    # 0.02 GB holds ~450 tokens at the stateful pipeline's f32: a ~500-token prompt does not fit,
    # so it waits for (and starts) the batching pipeline rather than growing the f32 cache.
    spec, options = warm
    backend = OpenVINOBackend(spec, msgspec.structs.replace(options, kv_cache_gb=0.02))
    try:
        assert backend.serving_pipeline() == "stateful"
        short = _run(backend, _chat(1, "Say yes.", max_tokens=2, ignore_eos=True))[1]
        assert sum(d.tokens for d in short) == 2
        assert backend.serving_pipeline() == "stateful"
        long = _run(backend, _chat(2, "Repeat this: " + "one two three four " * 120, max_tokens=4, ignore_eos=True))[2]
        assert long[-1].error is None and sum(d.tokens for d in long) == 4
        assert long[0].prompt_tokens is not None and long[0].prompt_tokens > 450
        assert backend.serving_pipeline() == "batching"
    finally:
        backend.close()
