"""Fixtures of the console's browser tests: a server of their own (the admin test creates keys),
headless Debian Chromium driven by Playwright, and pages that record every console error and
failed request, with a screenshot of each page kept under tests/artifacts/console/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, expect, sync_playwright

from tests.conftest import REPO_ROOT, HearthServer, run_hearth

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "console"
# Two shared cores: a poll can wait behind a generation.
expect.set_options(timeout=20_000)


@dataclass
class Watched:
    """A page, with what went wrong on it; `allowed` names statuses a test expects (e.g. 401)."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    allowed: set[int] = field(default_factory=set)
    foreign: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server with the default model, for this module only."""
    with run_hearth(tmp_path_factory.mktemp("hearth-home-console")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's package; `make test` installs it)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def watched(browser: Browser, console_server: HearthServer) -> Iterator[Watched]:
    """A fresh browser context on the console server; at the end, no console error, no failed
    request (other than the statuses the test allowed) and nothing fetched from another host."""
    context = browser.new_context(base_url=console_server.base_url, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    w = Watched(page, console_server.base_url)
    own = urlsplit(console_server.base_url).netloc

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            w.errors.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            w.errors.append(f"{response.status} {response.request.method} {response.url}")

    def on_failed(request: Request) -> None:
        # A navigation (reload, sign-in) cancels the polls in flight: that is not a failure.
        if request.failure != "net::ERR_ABORTED":
            w.errors.append(f"failed: {request.method} {request.url} {request.failure}")

    def on_request(request: Request) -> None:
        host = urlsplit(request.url).netloc
        if host and host != own:
            w.foreign.append(request.url)

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: w.errors.append(f"page error: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("request", on_request)
    # Nothing may come from the internet: block it, so a CDN asset would fail the test.
    context.route(lambda url: urlsplit(url).netloc != own, lambda route: route.abort())
    yield w
    context.close()
    unexpected = [e for e in w.errors if not any(e.startswith(f"{s} ") or f"status of {s} " in e for s in w.allowed)]
    assert not unexpected, "errors in the browser:\n" + "\n".join(unexpected)
    assert not w.foreign, f"requests to other hosts: {w.foreign}"
