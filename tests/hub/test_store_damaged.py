"""A damaged artifact (its manifest unreadable, or naming files outside itself) is listed as
damaged, fails verify, can be removed and is collected by gc; it never hides or crashes a listing.
Before: `verify` said ok and skipped it, `ls` omitted it, `verify NAME` and `show` raised."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.manifest import MANIFEST_FILE, Source
from hub.store import ArtifactDamaged, ArtifactInfo, ArtifactStore
from server.cli import main


def _install(store: ArtifactStore, name: str) -> None:
    def build(partial: Path) -> ArtifactInfo:
        (partial / "model.gguf").write_bytes(b"GGUF weights")
        return ArtifactInfo(format="gguf", entry="model.gguf", source=Source(kind="local", ref="test"))

    store.install(name, build)


CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "truncated": lambda text: text[: len(text) // 2],
    "not json": lambda text: "\x00\xff garbage",
    "wrong type": lambda text: text.replace('"format": "gguf"', '"format": 7'),
    "entry escapes": lambda text: text.replace('"entry": "model.gguf"', '"entry": "../../keys.json"'),
    "file escapes": lambda text: text.replace('"path": "model.gguf"', '"path": "/etc/shadow"'),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_artifact_is_listed_fails_verify_and_can_be_removed(tmp_path: Path, corruption: str) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "good")
    _install(store, "bad")
    manifest = store.path("bad") / MANIFEST_FILE
    manifest.write_text(CORRUPTIONS[corruption](manifest.read_text()))

    assert [m.name for m in store.artifacts()] == ["good"]
    assert [d.name for d in store.damaged()] == ["bad"] and store.damaged()[0].status == "damaged"
    assert store.verify("bad") and store.verify("bad")[0].startswith(MANIFEST_FILE)
    with pytest.raises(ArtifactDamaged, match="damaged"):
        store.get("bad")
    store.remove("bad")
    assert store.damaged() == [] and [m.name for m in store.artifacts()] == ["good"]


def test_gc_collects_a_damaged_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "models")
    _install(store, "bad")
    (store.path("bad") / MANIFEST_FILE).write_text("{")
    report = store.gc()
    assert report.removed == ["bad"] and report.freed_bytes > 0
    assert not store.path("bad").exists()


def test_the_cli_shows_damage_with_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path))
    store = ArtifactStore(tmp_path / "models")
    _install(store, "good")
    _install(store, "bad")
    (store.path("bad") / MANIFEST_FILE).write_text(json.dumps({"name": "bad"}))
    capsys.readouterr()

    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "bad" in out and "DAMAGED" in out
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "good: ok" in out and "bad: MISMATCH" in out
    assert main(["verify", "bad"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["show", "bad"]) == 1
    assert "damaged" in capsys.readouterr().err
    assert main(["rm", "bad"]) == 0
    assert main(["verify"]) == 0
