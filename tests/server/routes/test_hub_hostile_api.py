"""The hub API against hostile uploads, damaged artifacts and pulls that can never resolve, on a
real server whose Hearth home is a small tmpfs (a real ENOSPC, not a simulated one).

Before: a full disk during an upload was a 500 and an upload was copied into the store (twice its
size on disk); a zip bomb unpacked without bound; a damaged manifest made GET /v1/hub/models/NAME a
500 and hid the artifact from the listing; a pull of `a/b/c` was accepted (202) and failed later."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.models import default_model_path
from tests.conftest import HearthServer, run_hearth

TMPFS_BYTES = 512 * 1024 * 1024  # the server's own caches (~230 MB) and room to fill
SLACK = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("tmpfs-home")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(home)], check=False)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


@pytest.fixture(scope="module")
def server(small_home: Path) -> Iterator[HearthServer]:
    with run_hearth(small_home, "--no-audit", preload=False) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: HearthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.base_url}/v1/hub", timeout=120) as client:
        yield client


def _wait(api: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _used(server: HearthServer) -> int:
    return shutil.disk_usage(server.home).used


@pytest.fixture(scope="module")
def baseline(server: HearthServer) -> int:
    """What the server itself keeps in its home (its compiled-model cache among others)."""
    return _used(server)


def _leftovers(server: HearthServer) -> list[str]:
    partial = server.home / "models" / ".partial"
    return [p.name for p in partial.iterdir()] if partial.is_dir() else []


def test_a_full_disk_during_an_upload_is_a_507_and_keeps_nothing(
    server: HearthServer, api: httpx.Client, baseline: int
) -> None:
    def body() -> Iterator[bytes]:
        yield b"GGUF"
        for _ in range(TMPFS_BYTES // (1024 * 1024) + 20):
            yield bytes(1024 * 1024)

    response = api.post("/upload", params={"filename": "huge.gguf"}, content=body())
    assert response.status_code == 507, response.text
    assert response.json()["error"]["code"] == "insufficient_storage"
    assert _leftovers(server) == []
    assert _used(server) < baseline + SLACK
    assert httpx.get(f"{server.base_url}/health").status_code == 200


def test_an_upload_is_moved_into_the_store_not_copied(server: HearthServer, api: httpx.Client) -> None:
    """The tmpfs has room for one copy of the model and not two: a copy would fail with ENOSPC."""
    data = default_model_path().read_bytes()
    filler = server.home / "filler"
    with filler.open("wb") as f:  # leave room for 1.5 copies
        f.truncate(0)
        left = shutil.disk_usage(server.home).free - len(data) * 3 // 2
        while left > 0:
            left -= f.write(bytes(min(left, 4 * 1024 * 1024)))
    try:
        assert 2 * len(data) > shutil.disk_usage(server.home).free > len(data) + SLACK
        job = api.post("/upload", params={"filename": "Small.gguf", "name": "moved"}, content=data).json()
        final = _wait(api, job["id"])
    finally:
        filler.unlink()
    assert final["status"] == "succeeded", final
    assert (server.home / "models" / "moved" / "Small.gguf").stat().st_size == len(data)
    assert _leftovers(server) == []
    assert api.delete("/models/moved").status_code == 200


def test_a_zip_bomb_upload_fails_its_job_within_the_budget(
    server: HearthServer, api: httpx.Client, baseline: int
) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open("model/weights.bin", "w") as f:
        for _ in range(1024):
            f.write(bytes(1024 * 1024))  # 1 GiB of zeros, ~1 MB compressed
    job = api.post("/upload", params={"filename": "bomb.zip"}, content=bomb.getvalue()).json()
    final = _wait(api, job["id"])
    assert final["status"] == "failed" and "expands past" in final["error"], final
    assert _leftovers(server) == []
    assert _used(server) < baseline + SLACK


def test_a_damaged_artifact_is_listed_shown_as_damaged_and_removable(server: HearthServer, api: httpx.Client) -> None:
    data = b"GGUF" + bytes(4096)
    job = api.post("/upload", params={"filename": "x.gguf", "name": "broken"}, content=data).json()
    assert _wait(api, job["id"])["status"] in ("succeeded", "failed")
    folder = server.home / "models" / "broken"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text('{"name": "broken", "format": ')

    listing = api.get("/models")
    assert listing.status_code == 200
    assert [d["name"] for d in listing.json()["damaged"]] == ["broken"]
    shown = api.get("/models/broken")
    assert shown.status_code == 409 and shown.json()["error"]["code"] == "artifact_damaged"
    assert httpx.get(f"{server.base_url}/v1/models").status_code == 200
    assert api.delete("/models/broken").status_code == 200
    assert api.get("/models").json()["damaged"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"model": "a/b/c"},
        {"model": "org/re po"},
        {"model": "org/x--y"},
        {"model": "../etc/passwd"},
        {"model": "org/" + "x" * 200},
        {"model": "org/name", "revision": "bad rev\n"},
        {"model": "org/name", "precision": "int4; rm -rf"},
    ],
)
def test_a_pull_that_can_never_resolve_is_a_400(api: httpx.Client, body: dict[str, str]) -> None:
    response = api.post("/pull", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "model"
