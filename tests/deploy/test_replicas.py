"""Scale-out on one machine, behind a real router: two Hearth instances and LiteLLM's proxy
(deploy/litellm/config.yaml, in its own venv) load-balancing them. Concurrent streaming chats run
through the proxy; one instance is SIGKILLed while they stream and a second wave follows at once.

What must hold: every request ends with a complete answer. A request that had not reached the dead
instance yet, or was sent to it after the kill, is retried by the router on the survivor (LiteLLM's
`x-litellm-attempted-retries` header says so) and the client sees no error; a stream that was
already flowing from the dead instance breaks (no router can resume a half-sent stream) and the
client sends it again, as OpenAI clients do. After the kill the survivor serves everything.
The figures go to benchmarks/out/replicas.json (copied into benchmarks/RESULTS.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from server.security.keys import KeyStore
from tests.conftest import DEFAULT_MODEL, REPO_ROOT, HearthServer, free_port, run_hearth
from tests.deploy.tools import DEPLOY, venv_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HEARTH_KEY = "replica-test-" + "0123456789abcdef" * 2
MASTER_KEY = "sk-litellm-test-0123456789abcdef"
WAVE = 6
MAX_TOKENS = 48
PROXY_STARTUP_S = 240.0


@dataclass
class Outcome:
    """One logical request: its attempts by the client, and what the router said of the last one."""

    wave: int
    attempts: int = 0
    completed: bool = False
    broken_streams: int = 0
    errors: str = ""
    router_retries: int = 0
    served_by: str = ""
    tokens: int = 0
    seconds: float = 0.0


def start_proxy(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`litellm --config` from its own venv, on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "OPENAI_"))}
    env.update(
        HEARTH_KEY=HEARTH_KEY,
        LITELLM_MASTER_KEY=MASTER_KEY,
        # No fetch of the model price map, no telemetry: nothing leaves the machine.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        PYTHONUNBUFFERED="1",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                str(venv_tool(".venv-litellm", "litellm")),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_proxy(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Until the proxy answers its liveness route."""
    deadline = time.monotonic() + PROXY_STARTUP_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-5000:]
        try:
            if httpx.get(f"{base}/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"LiteLLM's proxy did not start:\n{log.read_text()[-5000:]}")


def chat_requests(server: HearthServer) -> float:
    """Chat completions the server has answered (its hearth_requests counter)."""
    text = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {HEARTH_KEY}"}, timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hearth_requests_total{") and "chat" in line
    )


def running(server: HearthServer) -> float:
    """vllm:num_requests_running of the default model, 0 when the server does not answer."""
    try:
        text = httpx.get(
            f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {HEARTH_KEY}"}, timeout=5
        ).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f'vllm:num_requests_running{{model_name="{DEFAULT_MODEL}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def one_request(client: openai.OpenAI, outcome: Outcome, ports: dict[str, str], first_token: threading.Event) -> None:
    """Stream one chat through the proxy; send it again (twice at most) if the stream breaks."""
    started = time.perf_counter()
    while outcome.attempts < 3 and not outcome.completed:
        outcome.attempts += 1
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=DEFAULT_MODEL,
                messages=[{"role": "user", "content": "Write a short story about a lighthouse keeper."}],
                max_tokens=MAX_TOKENS,
                stream=True,
            )
            outcome.router_retries += int(raw.headers.get("x-litellm-attempted-retries", "0") or 0)
            api_base = raw.headers.get("x-litellm-model-api-base", "")
            outcome.served_by = next((name for name, port in ports.items() if f":{port}/" in api_base), api_base)
            finish = None
            tokens = 0
            for chunk in raw.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    tokens += 1
                    first_token.set()
                if chunk.choices and chunk.choices[0].finish_reason:
                    finish = chunk.choices[0].finish_reason
            if finish is None:
                outcome.broken_streams += 1
                continue
            outcome.completed = True
            outcome.tokens = tokens
        except (openai.APIError, httpx.HTTPError) as exc:
            outcome.broken_streams += 1
            outcome.errors += f"{type(exc).__name__}: {str(exc)[:200]}; "
    outcome.seconds = round(time.perf_counter() - started, 2)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HearthServer, HearthServer, str]]:
    """Two keyed Hearth instances and the proxy in front of them (the shipped config, its ports
    replaced)."""
    with ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            home = tmp_path_factory.mktemp(f"replica-{name}")
            KeyStore(home / "keys.json").put("router", "inference", HEARTH_KEY)
            servers.append(stack.enter_context(run_hearth(home, "--max-num-seqs", "4")))
        config = yaml.safe_load((DEPLOY / "litellm" / "config.yaml").read_text())
        assert len(config["model_list"]) == 2
        for entry, server in zip(config["model_list"], servers, strict=True):
            entry["litellm_params"]["api_base"] = server.api_url
        workdir = tmp_path_factory.mktemp("litellm")
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = workdir / "proxy.log"
        proxy = start_proxy(workdir / "config.yaml", port, log)
        try:
            wait_proxy(proxy, f"http://127.0.0.1:{port}", log)
            yield servers[0], servers[1], f"http://127.0.0.1:{port}"
        finally:
            proxy.terminate()
            try:
                proxy.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proxy.pid, signal.SIGKILL)
                proxy.wait()


def test_router_spreads_load_and_survives_a_killed_instance(
    replicas: tuple[HearthServer, HearthServer, str],
) -> None:
    victim, survivor, proxy = replicas
    ports = {"victim": str(victim.port), "survivor": str(survivor.port)}
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key=MASTER_KEY, max_retries=0, timeout=120)
    # Warm both instances (their first call compiles the model) and see that both are used: with
    # random routing, 12 requests all on one instance has a chance of 2 in 4096.
    warm = [Outcome(wave=0) for _ in range(12)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda o: one_request(client, o, ports, threading.Event()), warm))
    assert all(o.completed for o in warm), [asdict(o) for o in warm]
    assert {o.served_by for o in warm} == {"victim", "survivor"}, [o.served_by for o in warm]
    assert chat_requests(victim) + chat_requests(survivor) >= len(warm)
    assert chat_requests(victim) > 0 and chat_requests(survivor) > 0

    before = chat_requests(survivor)
    first_token = threading.Event()
    wave1 = [Outcome(wave=1) for _ in range(WAVE)]
    wave2 = [Outcome(wave=2) for _ in range(WAVE)]
    peak_running = {"victim": 0.0, "survivor": 0.0}
    started = time.perf_counter()
    with ThreadPoolExecutor(2 * WAVE) as pool:
        futures = [pool.submit(one_request, client, o, ports, first_token) for o in wave1]
        assert first_token.wait(120), "no token streamed through the proxy"
        time.sleep(1.0)
        peak_running["victim"] = running(victim)
        peak_running["survivor"] = running(survivor)
        os.killpg(victim.process.pid, signal.SIGKILL)
        killed_at = time.perf_counter() - started
        futures += [pool.submit(one_request, client, o, ports, threading.Event()) for o in wave2]
        for future in futures:
            future.result()
    total_s = time.perf_counter() - started
    client.close()
    served_after = chat_requests(survivor) - before

    outcomes = wave1 + wave2
    figures = {
        "requests": len(outcomes),
        "max_tokens": MAX_TOKENS,
        "killed_after_s": round(killed_at, 2),
        "total_s": round(total_s, 2),
        "completed": sum(o.completed for o in outcomes),
        "completed_first_try": sum(o.completed and o.attempts == 1 for o in outcomes),
        "broken_streams_resent_by_client": sum(o.broken_streams for o in outcomes),
        "router_retries": sum(o.router_retries for o in outcomes),
        "warm_split": {name: sum(o.served_by == name for o in warm) for name in ports},
        "served_by_survivor_after_kill": sum(o.served_by == "survivor" for o in wave2),
        "survivor_chat_requests_during_load": served_after,
        "running_at_kill": peak_running,
        "outcomes": [asdict(o) for o in outcomes],
    }
    out = REPO_ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "replicas.json").write_text(json.dumps(figures, indent=2))

    assert all(o.completed for o in outcomes), json.dumps(figures, indent=2)
    # The second wave, sent after the kill, never reaches the dead instance: the router retries
    # it or has already cooled the instance down; the client sees no error.
    assert all(o.attempts == 1 and o.served_by == "survivor" for o in wave2), json.dumps(figures, indent=2)
    # Every answer after the kill came from the survivor.
    assert all(o.served_by == "survivor" for o in outcomes if o.attempts > 1), json.dumps(figures, indent=2)
    assert served_after >= len(wave2), json.dumps(figures, indent=2)
    assert not victim.alive()
    assert survivor.alive()
    assert peak_running["victim"] + peak_running["survivor"] >= 1, "the gauges showed no running request under load"
