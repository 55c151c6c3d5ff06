"""What API keys, the audit log and TLS cost per request (docs/security.md, benchmarks/RESULTS.md).

Starts one `hearth serve` per configuration (a fresh HEARTH_HOME each, all at once) and times
GET /v1/models requests, one at a time, on one keep-alive connection per server: that endpoint
does almost nothing, so the difference between configurations is the security layer itself. TLS
is also timed with a new connection per request (handshake included). In-process, it times the
key check and one audit append with and without fsync.

    .venv/bin/python -m benchmarks.security_overhead --requests 400
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from server.security.audit import AuditWriter
from server.security.auth import Authenticator
from server.security.keys import KeyStore

HEARTH = Path(sys.executable).with_name("hearth")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(home: Path, args: list[str], settings: dict[str, str], verify: ssl.SSLContext | bool) -> Iterator[str]:
    port = _free_port()
    scheme = "https" if verify is not True else "http"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")} | settings
    command = [str(HEARTH), "serve", "--home", str(home), "--port", str(port), "--log-level", "warning", *args]
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"{scheme}://localhost:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{base}/health", verify=verify, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _time(call: Callable[[], object], count: int) -> list[float]:
    for _ in range(min(20, count)):  # warm up
        call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def _row(name: str, times: list[float], base: float | None) -> str:
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    added = f"{median - base:+.0f}" if base is not None else "-"
    return f"| {name} | {len(times)} | {median:.0f} | {p90:.0f} | {added} |"


def _getter(client: httpx.Client) -> Callable[[], object]:
    return lambda: client.get("/v1/models").raise_for_status()


def _fresh_getter(url: str, verify: ssl.SSLContext | bool, headers: dict[str, str]) -> Callable[[], object]:
    return lambda: httpx.get(f"{url}/v1/models", verify=verify, headers=headers).raise_for_status()


def _appender(writer: AuditWriter, records: list[dict[str, object]]) -> Callable[[], object]:
    return lambda: writer.append(records)


def http_configs(requests: int) -> list[str]:
    """Time every configuration; one markdown row each. All servers run at once and each round
    times one request to each, in a shuffled order, so that the machine's changing load (it is
    shared) falls on every configuration alike."""
    root = Path(tempfile.mkdtemp(prefix="hearth-secbench-"))
    try:
        tls_home = root / "tls-home"
        subprocess.run([HEARTH, "tls", "--home", str(tls_home), "init"], check=True, capture_output=True)
        ca = ssl.create_default_context(cafile=tls_home / "tls" / "ca.pem")
        off, no_fsync = {"HEARTH_AUDIT": "false"}, {"HEARTH_AUDIT_FSYNC": "false"}
        configs: list[tuple[str, list[str], dict[str, str], bool, bool]] = [
            ("no keys, audit off (baseline)", [], off, False, False),
            ("keys, audit off", [], off, True, False),
            ("keys, audit on, fsync per batch", [], {}, True, False),
            ("keys, audit on, no fsync", [], no_fsync, True, False),
            ("keys, audit on, TLS 1.3 (keep-alive)", ["--tls"], {}, True, True),
        ]
        calls: dict[str, Callable[[], object]] = {}
        with ExitStack() as stack:
            for index, (name, args, settings, keyed, tls) in enumerate(configs):
                home = tls_home if tls else root / f"home{index}"
                home.mkdir(exist_ok=True)
                headers: dict[str, str] = {}
                if keyed:
                    secret, _ = KeyStore(home / "keys.json").create(f"bench{index}", "inference")
                    headers = {"authorization": f"Bearer {secret}"}
                verify: ssl.SSLContext | bool = ca if tls else True
                url = stack.enter_context(_server(home, args, settings, verify))
                client = stack.enter_context(httpx.Client(base_url=url, verify=verify, headers=headers))
                calls[name] = _getter(client)
                if tls:
                    calls["... TLS 1.3, new connection per request"] = _fresh_getter(url, verify, headers)
            times: dict[str, list[float]] = {name: [] for name in calls}
            order = list(calls)
            for name in order:  # warm up
                for _ in range(10):
                    calls[name]()
            for _ in range(requests):
                random.shuffle(order)
                for name in order:
                    start = time.perf_counter()
                    calls[name]()
                    times[name].append((time.perf_counter() - start) * 1e6)
        base = statistics.median(times[configs[0][0]])
        return [_row(name, values, None if i == 0 else base) for i, (name, values) in enumerate(times.items())]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def in_process(count: int) -> list[str]:
    """The key check and one audit append (the writer thread's work), in microseconds."""
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore(Path(tmp) / "keys.json")
        for i in range(10):
            secret, _ = store.create(f"k{i}", "inference")
        auth = Authenticator(store)
        headers = {b"authorization": f"Bearer {secret}".encode()}
        rows.append(
            _row(
                "key check (10 keys, file stat included)",
                _time(lambda: auth.decide("POST", "/v1/chat/completions", headers, "127.0.0.1"), count),
                None,
            )
        )
        record: dict[str, object] = {
            "time": "2026-01-01T00:00:00.000000Z",
            "event": "request",
            "key": "k1",
            "model": "m",
            "status": 200,
        }
        for fsync in (True, False):
            writer = AuditWriter(Path(tmp) / f"audit-{fsync}", fsync=fsync)
            label = "audit append of 1 record, " + ("fsync" if fsync else "no fsync")
            rows.append(_row(label, _time(_appender(writer, [record]), count), None))
        writer = AuditWriter(Path(tmp) / "audit-batch", fsync=True)
        batch = _time(_appender(writer, [record] * 32), max(10, count // 10))
        rows.append(_row("audit append of a 32-record batch, fsync (per batch)", batch, None))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the two result tables as markdown."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="requests per configuration (default 300)")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process timings")
    args = parser.parse_args(argv)
    header = "| what | n | median µs | p90 µs | added median µs |\n|---|---:|---:|---:|---:|"
    print("In-process:\n\n" + header)
    print("\n".join(in_process(args.requests)))
    if not args.skip_http:
        print("\nGET /v1/models over HTTP, sequential:\n\n" + header)
        print("\n".join(http_configs(args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
