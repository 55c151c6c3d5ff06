"""The committed console bundle is the build of the committed sources (`make console` rebuilds it)."""

from __future__ import annotations

import gzip

from server.console.bundle import STATIC, SWAGGER_FILES, ConsoleBundle, sources_digest
from tests.conftest import REPO_ROOT


def test_bundle_matches_its_sources() -> None:
    bundle = ConsoleBundle()
    assert bundle.sources_sha256 == sources_digest(REPO_ROOT / "console"), (
        "server/console/static was built from other sources than console/: run `make console` and commit"
    )


def test_bundle_has_the_page_its_assets_and_swagger_ui() -> None:
    bundle = ConsoleBundle()
    page = bundle.get("index.html")
    assert page is not None
    html = gzip.decompress(page.gzipped).decode()
    # Every script and style the page names is in the bundle, and none comes from elsewhere.
    for reference in ("/console/assets/",):
        assert reference in html
    for name in [n for n in bundle.assets if n.startswith("assets/")]:
        assert f"/console/{name}" in html
    assert "http://" not in html and "https://" not in html
    for name in SWAGGER_FILES:
        assert bundle.get(f"vendor/{name}") is not None
    # Only the manifest's files are served, and each is there.
    assert {p.relative_to(STATIC).as_posix().removesuffix(".gz") for p in STATIC.rglob("*.gz")} == set(bundle.assets)
