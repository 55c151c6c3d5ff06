"""The artifact store: atomic installs, verify, rm, gc and name validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.manifest import MANIFEST_FILE, Source, sha256_file
from hub.store import ArtifactExists, ArtifactInfo, ArtifactNotFound, ArtifactStore, InvalidName, validate_name


def _install(store: ArtifactStore, name: str, payload: bytes = b"GGUF weights") -> None:
    def build(partial: Path) -> ArtifactInfo:
        (partial / "model.gguf").write_bytes(payload)
        (partial / "sub").mkdir()
        (partial / "sub" / "tokenizer.json").write_text("{}")
        return ArtifactInfo(format="gguf", entry="model.gguf", source=Source(kind="local", ref="test"))

    store.install(name, build)


def test_install_writes_a_manifest_with_hashes(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "tiny")
    manifest = store.get("tiny")
    assert [f.path for f in manifest.files] == ["model.gguf", "sub/tokenizer.json"]
    model = store.path("tiny") / "model.gguf"
    assert manifest.files[0].sha256 == sha256_file(model)
    assert manifest.files[0].size == model.stat().st_size
    assert store.entry_path("tiny") == model.resolve()
    assert [m.name for m in store.artifacts()] == ["tiny"]
    assert not any(store.partial_root.iterdir())
    with pytest.raises(ArtifactExists):
        _install(store, "tiny")


def test_failure_mid_install_leaves_nothing_that_looks_whole(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")

    def build(partial: Path) -> ArtifactInfo:
        (partial / "model.gguf").write_bytes(b"half a mod")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        store.install("broken", build)
    assert not store.exists("broken")
    assert not store.path("broken").exists()
    assert store.artifacts() == []
    assert not any(store.partial_root.iterdir())


def test_crash_leftovers_are_invisible_and_gc_removes_them(tmp_path: Path) -> None:
    """A process killed mid-install leaves a partial directory (and maybe a manifest-less folder):
    neither is listed, and gc removes both plus files an artifact's manifest does not list."""
    store = ArtifactStore(tmp_path / "models")
    _install(store, "kept")
    partial = store.new_partial("crashed")
    (partial / "model.gguf").write_bytes(b"x" * 1000)
    orphan = store.root / "no-manifest"
    orphan.mkdir()
    (orphan / "model.gguf").write_bytes(b"y" * 10)
    download = store.downloads_root / "org--repo"
    download.mkdir(parents=True)
    (download / "weights.safetensors.incomplete").write_bytes(b"z" * 5)
    stray = store.path("kept") / "stray.bin"
    stray.write_bytes(b"s" * 7)

    assert [m.name for m in store.artifacts()] == ["kept"]
    report = store.gc()
    assert report.freed_bytes == 1000 + 10 + 5 + 7
    assert sorted(report.removed) == sorted(
        [
            f".partial/{partial.name}",
            ".downloads/org--repo",
            "no-manifest",
            "kept/stray.bin",
        ]
    )
    assert not partial.exists() and not orphan.exists() and not stray.exists()
    assert store.verify("kept") == []
    assert store.gc().removed == []


def test_verify_catches_a_changed_byte(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "tiny", b"0123456789")
    assert store.verify("tiny") == []
    model = store.path("tiny") / "model.gguf"
    data = bytearray(model.read_bytes())
    data[5] ^= 1
    model.write_bytes(bytes(data))
    assert store.verify("tiny") == ["model.gguf: sha256 differs"]
    (store.path("tiny") / "sub" / "tokenizer.json").unlink()
    assert "sub/tokenizer.json: missing" in store.verify("tiny")


def test_rm_removes_the_whole_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "a")
    _install(store, "b")
    store.remove("a")
    assert [m.name for m in store.artifacts()] == ["b"]
    assert not store.path("a").exists()
    with pytest.raises(ArtifactNotFound):
        store.remove("a")
    with pytest.raises(ArtifactNotFound):
        store.get("a")


def test_replace_swaps_in_the_new_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "m", b"old")

    def build(partial: Path) -> ArtifactInfo:
        (partial / "model.gguf").write_bytes(b"new")
        return ArtifactInfo(format="gguf", entry="model.gguf", source=Source(kind="local", ref="v2"))

    store.install("m", build, replace=True)
    assert (store.path("m") / "model.gguf").read_bytes() == b"new"
    assert store.get("m").source.ref == "v2"
    assert not (store.path("m") / "sub").exists()


def test_an_entry_outside_the_artifact_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")

    def build(partial: Path) -> ArtifactInfo:
        (partial / "model.gguf").write_bytes(b"x")
        return ArtifactInfo(format="gguf", entry="../../etc/passwd", source=Source(kind="local", ref="x"))

    with pytest.raises(Exception, match="entry"):
        store.install("evil", build)
    assert not store.path("evil").exists()


@pytest.mark.parametrize(
    "name",
    ["", "..", ".", "../escape", "a/b", "a\\b", ".hidden", "with space", "bell\x07", "nl\n", "x" * 129, "/abs"],
)
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    store = ArtifactStore(tmp_path / "models")
    with pytest.raises(InvalidName):
        validate_name(name)
    with pytest.raises(InvalidName):
        _install(store, name)
    assert not (tmp_path / "escape").exists()


def test_manifest_is_the_last_file_written(tmp_path: Path) -> None:
    """The manifest lists every file but itself; a directory is whole only once it exists."""
    store = ArtifactStore(tmp_path / "models")
    _install(store, "tiny")
    assert MANIFEST_FILE not in {f.path for f in store.get("tiny").files}
    for good in ("Qwen2.5-0.5B-Instruct-int4", "llama-3.2-1b+ov", "a"):
        assert validate_name(good) == good
