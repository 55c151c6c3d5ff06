"""The container's entrypoint (deploy/docker/entrypoint.sh), run directly: no container engine
runs on the build machine (docker has no daemon here and no registry for base images is
reachable), so the image's own start-up path is tested without the image. It must hand a key from
a secret file or the environment to the key store, keep the key out of the server's environment,
and leave the server's refusal of a public bind without keys in force.

One real server is started through the entrypoint on 0.0.0.0 with a key and --metrics-public:
/health needs no key, a chat needs the key (official openai client), and /metrics carries the
vLLM-named gauges the inference gateway's endpoint picker reads, without a key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import DEFAULT_MODEL, REPO_ROOT, free_port
from tests.deploy.tools import ENTRYPOINT

HEARTH = Path(sys.executable).with_name("hearth")
KEY = "k" * 8 + "0123456789abcdef0123456789abcdef"
STARTUP_S = 120.0


def entrypoint_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment the image gives the entrypoint, on this machine's venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(
        HEARTH_HOME=str(home),
        HEARTH_HOST="0.0.0.0",
        HEARTH_PORT=str(port),
        HEARTH_BIN=str(HEARTH),
        PATH=f"{HEARTH.parent}:{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run_entrypoint(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the entrypoint to its end (for the cases where it must not start a server)."""
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=entrypoint_env(home, free_port(), **extra),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_keys(home: Path) -> str:
    """`hearth keys ls` of a home."""
    result = subprocess.run(
        [str(HEARTH), "keys", "ls"],
        env={**entrypoint_env(home, 0)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_public_bind_without_a_key_is_refused(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path / "home")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "--insecure" in result.stderr


def test_a_short_key_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path / "home", HEARTH_API_KEY="hunter2")
    assert result.returncode == 2
    assert "at least 32 characters" in result.stderr
    assert "refusing to listen" not in result.stderr, "the entrypoint must stop at the bad key"


def test_unreadable_key_file_is_an_error(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path / "home", HEARTH_API_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "cannot be read" in result.stderr


def test_key_file_is_stored_and_a_new_secret_rotates_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = tmp_path / "api-key"
    # An invalid setting stops `hearth serve` right after the key was stored.
    for key in (KEY, KEY[::-1]):
        secret.write_text(key + "\n")
        result = run_entrypoint(home, "--kv-cache-gb", "-1", HEARTH_API_KEY_FILE=str(secret), HEARTH_API_KEY_NAME="k8s")
        assert result.returncode != 0
        assert "stored key 'k8s'" in result.stderr
    listing = stored_keys(home)
    assert listing.count("k8s") == 1, listing
    assert KEY[:4] not in listing and KEY[::-1][:4] in listing, "the listing shows the newest key's prefix"


def test_a_first_argument_that_is_not_a_flag_runs_that_command(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path / "home", "hearth", "keys", "ls")
    assert result.returncode == 0
    assert "no keys" in result.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`entrypoint.sh --metrics-public` on 0.0.0.0 with the key in HEARTH_API_KEY."""
    home = tmp_path_factory.mktemp("entrypoint-home")
    port = free_port()
    log = home / "server-output.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "--metrics-public"],
            env=entrypoint_env(home, port, HEARTH_API_KEY=KEY),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def test_served_health_needs_no_key_and_chat_needs_the_key(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, _ = served
    assert httpx.get(f"{base}/health", timeout=10).json()["status"] == "ok"
    with (
        openai.OpenAI(base_url=f"{base}/v1", api_key="wrong-" + KEY, max_retries=0, timeout=60) as wrong,
        pytest.raises(openai.AuthenticationError),
    ):
        wrong.models.list()
    with openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=60) as client:
        answer = client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
        )
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens > 0


def test_served_process_does_not_keep_the_key_in_its_environment(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    _, process = served
    # exec: the entrypoint's pid is the server's.
    environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    assert any(entry.startswith(b"HEARTH_HOME=") for entry in environ)
    assert not any(entry.startswith(b"HEARTH_API_KEY=") for entry in environ)
    assert KEY.encode() not in b"\0".join(environ)
    assert b"hearth" in Path(f"/proc/{process.pid}/cmdline").read_bytes()


def test_served_metrics_are_public_and_carry_the_gateway_gauges(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = served
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    label = f'{{model_name="{DEFAULT_MODEL}"}}'
    for name in (
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
    ):
        assert samples.get(name + label) == 0.0, f"{name}{label} missing or not idle: {response.text[:3000]}"
    assert f'hearth_queue_depth{{model="{DEFAULT_MODEL}"}}' in samples
    # Only /metrics opened up: everything else still needs the key.
    assert httpx.get(f"{base}/v1/status", timeout=10).status_code == 401
