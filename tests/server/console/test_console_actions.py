"""The console's hub actions and recent errors in a real browser against a real server: cancel a
pull held in flight by a local fake Hub, import a model from a path on the server's machine,
verify it (then again after a byte of it is flipped), and see a failed request on the dashboard.
Like every console test, each fails on a console error or a failed request it did not expect."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
from playwright.sync_api import expect

from hub.models import default_model_path
from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth
from tests.hub.fake_hub import FakeHub, FakeRepo, serve_hub
from tests.server.console.conftest import Watched

SLOW_REPO = "org/slow-GGUF"
SLOW_FILE = "slow-Q8_0.gguf"
# More than huggingface_hub's 10 MB read chunk, so one progress step arrives before the hold.
SLOW_BYTES = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    with serve_hub({SLOW_REPO: FakeRepo(files={SLOW_FILE: b"GGUF" + bytes(SLOW_BYTES - 4)})}) as hub:
        yield hub


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory, fake_hub: FakeHub) -> Iterator[HearthServer]:
    """This module's server pulls from the fake Hub (it replaces conftest's); its actions never
    need the model, so it is not preloaded."""
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    home = tmp_path_factory.mktemp("hearth-home-console-actions")
    with run_hearth(home, env=env, preload=False) as server:
        yield server


def test_models_cancel_a_running_pull(watched: Watched, console_server: HearthServer, fake_hub: FakeHub) -> None:
    page = watched.page
    release = threading.Event()
    fake_hub.hold[SLOW_FILE] = (11 * 1024 * 1024, release)
    try:
        page.goto("/#/models")
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        job = httpx.post(f"{console_server.base_url}/v1/hub/pull", json={"model": SLOW_REPO}, timeout=30).json()
        row = page.get_by_role("listitem", name=f"Job pull {SLOW_REPO}")
        expect(row.locator(".state")).to_have_text("running")
        expect(row.get_by_role("progressbar", name=f"Progress of pull {SLOW_REPO}")).to_be_visible()
        row.get_by_role("button", name=f"Cancel pull {SLOW_REPO}").click()
        expect(row.locator(".state")).to_have_text("cancelling")
        expect(row.get_by_role("button", name=f"Cancel pull {SLOW_REPO}")).to_have_count(0)
    finally:
        release.set()
    expect(row.locator(".state")).to_have_text("cancelled")
    watched.screenshot("models-cancelled")
    final = httpx.get(f"{console_server.base_url}/v1/hub/jobs/{job['id']}", timeout=30).json()
    assert final["status"] == "cancelled" and final["result"] is None
    models = console_server.home / "models"
    assert not any(list(p.iterdir()) for p in (models / ".partial", models / ".downloads") if p.is_dir())


def test_models_import_a_path_then_verify(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    gguf = default_model_path()
    page.goto("/#/models")
    form = page.get_by_role("form", name="Import from a path")
    # A relative path is refused with the server's reason (the one 400 this test expects).
    watched.allowed.add(400)
    form.get_by_label("Path on the server").fill("models/smol.gguf")
    form.get_by_role("button", name="Import").click()
    expect(form.get_by_role("alert")).to_contain_text("relative path")

    form.get_by_label("Path on the server").fill(str(gguf))
    form.get_by_label("Import as").fill("local-smol")
    form.get_by_role("button", name="Import").click()
    row = page.get_by_role("listitem", name=f"Job import {gguf}")
    expect(row.locator(".state")).to_have_text("succeeded", timeout=60_000)
    installed = page.get_by_role("table", name="Installed models")
    expect(installed.get_by_role("cell", name="local-smol", exact=True)).to_be_visible()

    installed.get_by_role("button", name="Verify local-smol").click()
    cell = installed.get_by_role("cell", name="Verification of local-smol")
    expect(cell).to_have_text("verified", timeout=60_000)

    stored = console_server.home / "models" / "local-smol" / gguf.name
    with stored.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    installed.get_by_role("button", name="Verify local-smol").click()
    expect(cell).to_have_text(f"damaged: {gguf.name}", timeout=60_000)
    # The server keeps the result: a reload shows it again.
    page.reload()
    expect(page.get_by_role("cell", name="Verification of local-smol")).to_have_text(f"damaged: {gguf.name}")
    watched.screenshot("models-verify")


def test_dashboard_lists_recent_errors(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    with console_server.openai_client() as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "a prompt nobody sees"}], max_tokens=4
        )
    page.goto("/")
    table = page.get_by_role("table", name="Recent errors")
    row = table.get_by_role("row").filter(has_text="no-such-model").first
    expect(row).to_contain_text("POST /v1/chat/completions")
    expect(row.get_by_role("cell", name="404", exact=True)).to_be_visible()
    expect(row).to_contain_text("does not exist")
    expect(table).not_to_contain_text("a prompt nobody sees")
    # A request that fails while the page is open appears at the top on the next poll.
    httpx.get(f"{console_server.api_url}/models/another-missing-model", timeout=30)
    expect(table.get_by_role("row").nth(1)).to_contain_text("another-missing-model")
    expect(
        page.get_by_role("table", name="Served models").get_by_role("cell", name=DEFAULT_MODEL, exact=True)
    ).to_be_visible()
    watched.screenshot("dashboard-errors")
