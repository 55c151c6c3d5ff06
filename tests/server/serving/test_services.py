"""Services files: valid ones become deployments; mistakes name the file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from adapters.kv_cache import auto_kv_cache_gb, kv_cache_tokens, kv_shape
from hub.models import ModelNotFound, default_model_path
from hub.store import ArtifactStore
from server.serving.deployments import deployments
from server.serving.services import ServicesError, load_services, parse_duration
from server.settings import load_settings

GOOD = """\
services:
  - name: chat
    max_tokens: 64
    temperature: 0.2
    priority: 10
    keep_alive: 5m
  - name: batch
    model: smollm2-135m-instruct
    device: cpu
    context: 512
    preload: true
"""


def write(tmp_path: Path, text: str) -> Path:
    """A services file with `text`."""
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The message loading `text` fails with."""
    with pytest.raises(ServicesError) as caught:
        load_services(str(write(tmp_path, text)))
    return str(caught.value)


def test_a_valid_file_becomes_deployments_with_their_own_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings({"services": str(path), "default_temperature": 0.9, "keep_alive_s": 60}, env={})
    chat, batch = deployments(settings)
    assert (chat.name, batch.name) == ("chat", "batch")
    assert chat.sampling.max_tokens == 64 and chat.sampling.temperature == 0.2
    assert batch.sampling.max_tokens == 2048 and batch.sampling.temperature == 0.9
    assert chat.service.priority == 10 and chat.keep_alive_s == 300 and batch.keep_alive_s == 60
    assert batch.options.context_length == 512 and batch.context_length == 512 and batch.device == "CPU"
    assert chat.context_length == 8192 and batch.service.preload and not chat.service.preload
    assert chat.estimated_bytes > Path(chat.spec.path).stat().st_size


def test_a_service_kv_cache_sizes_its_estimate_and_caps_its_context() -> None:
    settings = load_settings({"services": [{"name": "small", "kv_cache_gb": 0.01}, {"name": "big"}]}, env={})
    small, big = deployments(settings)
    # "big" takes the server's default: sized from the model (16,384 tokens of 12,960 bytes in u8).
    assert small.options.kv_cache_gb == 0.01 and 0.19 < big.options.kv_cache_gb < 0.21
    # The whole KV cache is budgeted: the runner fills it (prefix caching keeps blocks).
    expected = (big.options.kv_cache_gb - 0.01) * 1024**3
    assert abs(big.estimated_bytes - small.estimated_bytes - expected) < 2
    assert (small.context_length, big.context_length) == (800, 8192)


def test_the_default_kv_cache_is_sized_from_the_model_and_the_machine() -> None:
    settings = load_settings({"services": [{"name": "full"}, {"name": "short", "context": 2048}]}, env={})
    full, short = deployments(settings)
    shape = kv_shape(full.spec.path)
    assert shape is not None
    # One full context (8192) or 16,384 tokens, whichever is more: here 16,384 for both.
    for each in (full, short):
        tokens = kv_cache_tokens(shape, each.options.kv_cache_gb, "u8", "CPU")
        assert 16 * 1024 <= tokens < 16 * 1024 + 64, tokens
    assert full.context_length == 8192 and short.context_length == 2048
    # A context longer than 16,384 tokens gets a cache that holds it whole.
    long_context = auto_kv_cache_gb(shape, 65536, "u8", "CPU", psutil.virtual_memory().total)
    assert kv_cache_tokens(shape, long_context, "u8", "CPU") >= 65536


def test_inline_services_and_preload_list_from_settings() -> None:
    settings = load_settings({"services": [{"name": "one"}, {"name": "two"}], "preload": "two"}, env={})
    one, two = deployments(settings)
    assert (one.service.preload, two.service.preload) == (False, True)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("services:\n  - name: a\n    max_tokens: lots\n", 3, "services[0].max_tokens", "Expected `int | null`"),
        ("services:\n  - name: a\n  - name: b\n    colour: red\n", 4, "services[1].colour", "unknown field `colour`"),
        ("services:\n  - name: a\n    keep_alive: soon\n", 3, "services[0].keep_alive", "not a duration"),
        ("services:\n  - name: a\n    device: toaster\n", 3, "services[0].device", "unknown device `toaster`"),
        ("services:\n  - name: a\n  - name: a\n", 3, "services[1].name", "defined twice"),
        ("services:\n  - name: a\n    model: llama-70b\n", 3, "services[0].model", "not installed"),
        ("services:\n  - name: a\n    path: /no/such.gguf\n", 3, "services[0].path", "does not exist"),
        ("services: []\n", 1, "services", "length >= 1"),
        ("services:\n  - name: a\n    precision: int3\n", 3, "services[0].precision", "Invalid enum value 'int3'"),
    ],
)
def test_mistakes_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'services.yaml'}, line {line}, field `{field}`: "), message
    assert words in message


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    assert ", line 3: not valid YAML" in error_of(tmp_path, "services:\n  - name: a\n  - : : [\n")
    with pytest.raises(ServicesError, match="cannot read services file"):
        load_services(str(tmp_path / "missing.yaml"))


def test_durations() -> None:
    assert [parse_duration(v) for v in (30, "30s", "5m", "1h", "250ms", 0)] == [30, 30, 300, 3600, 0.25, 0]
    assert parse_duration(-1) == parse_duration("-1m") == float("inf")
    with pytest.raises(ValueError):
        parse_duration("tomorrow")


def test_serve_refuses_to_start_on_a_bad_services_file(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  - name: a\n    max_tokens: -5\n")
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--home", str(tmp_path), "--services", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{path}, line 3, field `services[0].max_tokens`" in done.stderr


def test_without_services_the_model_is_one_preloaded_service_kept_loaded() -> None:
    (only,) = deployments(load_settings({"model": "my-model", "model_path": str(default_model_path())}, env={}))
    assert only.name == "my-model" and only.service.preload and only.keep_alive_s == float("inf")


def test_a_model_name_that_is_not_installed_is_refused_with_the_command_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="hearth pull my-model"):
        deployments(load_settings({"model": "my-model", "home": str(tmp_path)}, env={}), ArtifactStore(tmp_path))
