"""The audit log fails closed, on a real full disk with a real server: while a record cannot be
written, requests are refused with 503 `audit_unavailable` and /health and /metrics say so; once
there is space again the held records are written and serving resumes by itself. A torn tail left
in the file is set aside on restart, and the chain goes on with a gap record `audit verify` reports.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from server.security.audit import CURRENT, AuditWriter, check
from tests.conftest import DEFAULT_MODEL, HEARTH, HearthServer, run_hearth

MESSAGES = [{"role": "user", "content": "Say hi."}]


@pytest.fixture
def audit_on_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A Hearth home whose audit directory is a 256 KiB tmpfs (the rest of the home is not)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    home = tmp_path / "home"
    audit = home / "audit"
    audit.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(audit)], check=True)
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(audit)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte with one file; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _until(http: httpx.Client, status: int, path: str = "/v1/models", timeout: float = 20.0) -> httpx.Response:
    """GET `path` until it answers `status` (each answer is an audited request); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def _metric(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def _chat(server: HearthServer) -> None:
    with server.openai_client() as client:
        answer = client.chat.completions.create(model=DEFAULT_MODEL, messages=MESSAGES, max_tokens=2)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_full_disk_refuses_requests_until_space_comes_back(audit_on_tmpfs: Path) -> None:
    home = audit_on_tmpfs
    audit = home / "audit"
    with (
        run_hearth(home, "--audit-retry-s", "0.2") as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        _chat(server)
        filler = _fill(audit)
        # Each audited request adds a record; the slack of the file's last page soon runs out.
        refused = _until(http, 503)
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "audit_unavailable" and error["type"] == "server_error"
        assert "No space left on device" in error["message"] and refused.headers["retry-after"] == "1"

        with server.openai_client() as client, pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=DEFAULT_MODEL, messages=MESSAGES, max_tokens=2)  # type: ignore[arg-type]
        assert caught.value.status_code == 503 and "audit log" in caught.value.message
        health = http.get("/health")
        assert health.status_code == 503 and health.json()["audit"] == "failing"
        assert _metric(http, "hearth_audit_failing") == 1.0
        assert _metric(http, "hearth_audit_write_errors_total") >= 1
        # What reached the disk is whole records only: nothing torn, the chain intact.
        assert (audit / CURRENT).read_bytes().endswith(b"\n")
        assert check(audit).broken is None

        filler.unlink()
        assert _until(http, 200).status_code == 200
        _chat(server)
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["audit"] == "ok"
        assert _metric(http, "hearth_audit_failing") == 0.0
    result = check(audit)
    assert result.broken is None, result.broken
    assert [g.fields["cause"] for g in result.gaps] == ["write_failed"]
    gap = result.gaps[0].fields
    assert gap["error"] == "No space left on device" and gap["late"] >= 2 and gap["dropped"] == 0
    records = [line for line in (audit / CURRENT).read_bytes().splitlines() if b'"status":503' in line]
    assert any(b'"event":"refused"' in line and b"audit log" in line for line in records)


def test_torn_tail_is_set_aside_on_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    audit = home / "audit"
    AuditWriter(audit).append([{"time": "t", "event": "server_start"}, {"time": "t", "event": "server_stop"}])
    whole = (audit / CURRENT).read_bytes()
    torn = whole.splitlines(keepends=True)[-1][:57]  # half a record, as a full disk or a crash leaves it
    with open(audit / CURRENT, "ab") as f:
        f.write(torn)
    with run_hearth(home) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        _chat(server)
        assert http.get("/health").json()["audit"] == "ok"
        assert _metric(http, "hearth_audit_write_errors_total") == 0.0
    result = check(audit)
    assert result.broken is None, result.broken
    assert result.count > 4  # the two records before, the gap, and the server's own
    assert [g.fields["cause"] for g in result.gaps] == ["torn_tail"]
    gap = result.gaps[0].fields
    assert gap["seq"] == 3 and gap["bytes"] == len(torn)
    assert (audit / gap["set_aside"]).read_bytes() == torn
    assert (audit / CURRENT).read_bytes().startswith(whole)
    cli = subprocess.run([HEARTH, "audit", "--home", str(home), "verify"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "1 recorded gap" in cli.stdout and f"57 bytes of a torn write set aside in {gap['set_aside']}" in cli.stdout
