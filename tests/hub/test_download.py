"""Downloads with the real huggingface_hub client against a local server that speaks the Hub's API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.download import DownloadError, download_snapshot
from tests.hub.fake_hub import FakeHub, FakeRepo, serve_hub

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD_SHA = "89abcdef0123456789abcdef0123456789abcdef"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB
CHUNK = 10 * 1024 * 1024  # huggingface_hub's download chunk
BIG = bytes(range(251)) * (CHUNK // 251 + 4096)
BIG_CUT = CHUNK + 65536


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    repos = {
        "org/tiny": FakeRepo(
            files={
                "config.json": b'{"model_type": "llama"}',
                "model.safetensors": WEIGHTS,
                "tok/vocab.txt": b"a\nb\n",
                "big.bin": BIG,
            },
            refs={"main": SHA, "v1": OLD_SHA},
        ),
        "org/gated": FakeRepo(files={"config.json": b"{}"}, gated=True),
    }
    with serve_hub(repos) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        yield served


def test_download_pins_the_revision_and_fetches_every_file(hub: FakeHub, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int | None]] = []
    snap = download_snapshot(
        "org/tiny", tmp_path / "dl", ignore_patterns=["big.bin"], progress=lambda *a: seen.append(a)
    )
    assert snap.revision == SHA
    assert snap.files == ["config.json", "model.safetensors", "tok/vocab.txt"]
    assert (Path(snap.path) / "model.safetensors").read_bytes() == WEIGHTS
    # The files are fetched at the pinned commit, not at the moving branch name.
    assert all(f"/resolve/{SHA}/" in p for m, p, _ in hub.requests if "/resolve/" in p)
    assert seen and max(done for _, done, _ in seen) >= len(WEIGHTS)


def test_a_tag_resolves_to_its_commit(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos["org/tiny"].sha = OLD_SHA
    snap = download_snapshot("org/tiny", tmp_path / "dl", revision="v1", allow_patterns=["config.json"])
    assert snap.revision == OLD_SHA and snap.files == ["config.json"]


def test_a_dropped_connection_resumes_with_a_range_request(hub: FakeHub, tmp_path: Path) -> None:
    # huggingface_hub writes in 10 MiB chunks: cut the connection after the first chunk is on disk.
    hub.cut_after["big.bin"] = (BIG_CUT, 1)
    snap = download_snapshot("org/tiny", tmp_path / "dl", allow_patterns=["big.bin"])
    assert (Path(snap.path) / "big.bin").read_bytes() == BIG
    first, resumed = hub.downloads_of("big.bin")
    assert "range" not in {k.lower() for k in first}
    assert {k.lower(): v for k, v in resumed.items()}["range"] == f"bytes={CHUNK}-"


def test_an_interrupted_pull_resumes_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    """A failure after some files arrived keeps them; the next try fetches only the rest."""
    hub.fail["tok/vocab.txt"] = 1
    with pytest.raises(DownloadError):
        download_snapshot("org/tiny", tmp_path / "dl", ignore_patterns=["big.bin"])
    assert (tmp_path / "dl" / "model.safetensors").read_bytes() == WEIGHTS
    assert not list((tmp_path / "dl").rglob("*.incomplete"))
    snap = download_snapshot("org/tiny", tmp_path / "dl", ignore_patterns=["big.bin"])
    assert snap.files == ["config.json", "model.safetensors", "tok/vocab.txt"]
    assert len(hub.downloads_of("model.safetensors")) == 1
    assert len(hub.downloads_of("vocab.txt")) == 2


def test_a_missing_repo_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="'org/absent' was not found") as info:
        download_snapshot("org/absent", tmp_path / "dl")
    assert info.value.code == "repo_not_found"


def test_a_missing_revision_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="revision 'v9' does not exist in org/tiny") as info:
        download_snapshot("org/tiny", tmp_path / "dl", revision="v9")
    assert info.value.code == "revision_not_found"


def test_a_gated_repo_asks_for_a_token(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DownloadError, match="HF_TOKEN") as info:
        download_snapshot("org/gated", tmp_path / "dl")
    assert info.value.code == "gated"
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert download_snapshot("org/gated", tmp_path / "dl").files == ["config.json"]


def test_offline_mode_is_a_clear_error(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline") as info:
        download_snapshot("org/tiny", tmp_path / "dl")
    assert info.value.code == "offline"
    assert not hub.requests


def test_an_unreachable_endpoint_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_hub({}) as gone:
        url = gone.url
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DownloadError, match="cannot reach") as info:
        download_snapshot("org/tiny", tmp_path / "dl")
    assert info.value.code == "unreachable"
    assert url in str(info.value) and os.environ["HF_ENDPOINT"] == url
