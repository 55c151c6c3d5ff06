"""How much a running batch slows interactive chats: TTFT of interactive requests, alone and while
a batch of 200 lines runs on the same model (issue 16's target: at most 20% slower).

Starts one `hearth serve` on a temporary home, then:
1. `--samples` interactive streamed chats one after another (max_tokens 16), TTFT each;
2. a batch of `--lines` chat lines (max_tokens 64, the default batch concurrency) submitted;
3. the same interactive chats while the batch runs.

    .venv/bin/python -m benchmarks.batch_interference [--samples 20] [--lines 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

from benchmarks.run import first_answer, free_port

MODEL = "smollm2-135m-instruct"


def ttft(client: openai.OpenAI, n: int) -> list[float]:
    """TTFT in ms of `n` streamed interactive chats, one after another."""
    out: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"Write one line about the number {i}."}],
            max_tokens=16,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                out.append((time.perf_counter() - started) * 1000)
                break
        stream.close()
    return out


def summary(values: list[float]) -> str:
    """p50 / p90 in ms."""
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered):.0f} ms, p90 {ordered[int(0.9 * (len(ordered) - 1))]:.0f} ms"


def main() -> None:
    """Measure and print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="hearth-batch-bench-"))
    hearth = Path(sys.executable).parent / "hearth"
    server = subprocess.Popen(
        [str(hearth), "serve", "--port", str(port), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        if first_answer(base, MODEL, server, 180) is None:
            raise SystemExit("the server did not answer")
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")
        ttft(client, 3)  # warm up
        alone = ttft(client, args.samples)
        lines = [
            {
                "custom_id": f"l{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": f"Tell a story {i}"}],
                    "max_tokens": 64,
                },
            }
            for i in range(args.lines)
        ]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        file = client.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
        while client.batches.retrieve(batch.id).status != "in_progress":
            time.sleep(0.2)
        during = ttft(client, args.samples)
        counts = client.batches.retrieve(batch.id).request_counts
        ratio = statistics.median(during) / statistics.median(alone)
        print("| interactive TTFT | value |\n|---|---|")
        print(f"| alone | {summary(alone)} |")
        print(f"| with a {args.lines}-line batch running | {summary(during)} |")
        print(f"| ratio of medians | {ratio:.2f} |")
        print(f"| batch lines answered meanwhile | {counts.completed if counts else 0} |")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
