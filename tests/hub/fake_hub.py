"""A local HTTP server that serves tiny repos the way the Hugging Face Hub does, for the real
`huggingface_hub` client: model info (`sha`, `siblings`), the recursive tree listing, and
`resolve` URLs with ETag / X-Repo-Commit / Content-Length and HTTP Range.

`FakeHub.cut_after[path] = (n_bytes, times)` makes the next `times` downloads of `path` stop after
`n_bytes` (the connection closes mid-body), to test resumption; `FakeHub.fail[path] = times` answers
the next `times` downloads of `path` with a 500. `FakeHub.hold[path] = (n_bytes, event)` makes
the next download of `path` send `n_bytes`, then wait for `event` before it sends the rest (a slow
download that a test holds in flight, e.g. to cancel it).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

DEFAULT_SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeRepo:
    """One repo: branch/tag name -> commit sha, and the files at that commit."""

    files: dict[str, bytes]
    sha: str = DEFAULT_SHA
    refs: dict[str, str] = field(default_factory=lambda: {"main": DEFAULT_SHA})
    gated: bool = False


@dataclass
class FakeHub:
    """The repos served, and a log of the requests received."""

    repos: dict[str, FakeRepo]
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    cut_after: dict[str, tuple[int, int]] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    hold: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def downloads_of(self, filename: str) -> list[dict[str, str]]:
        """Headers of every GET of `filename`'s resolve URL."""
        return [h for m, p, h in self.requests if m == "GET" and "/resolve/" in p and p.endswith("/" + filename)]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code})

        def _repo(self, repo_id: str, revision: str) -> tuple[FakeRepo, str] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if repo.gated and "authorization" not in {k.lower() for k in self.headers}:
                self._error(403, "GatedRepo", "Access to this model is restricted")
                return None
            sha = repo.refs.get(revision, revision if revision == repo.sha else None)
            if sha is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return None
            return repo, sha

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            with hub.lock:
                hub.requests.append((self.command, path, dict(self.headers.items())))
            if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
                found = self._repo(match[1], match[2])
                if found:
                    tree = [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in sorted(found[0].files.items())
                    ]
                    self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
            elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                found = self._repo(match[1], match[2] or "main")
                if found:
                    repo, sha = found
                    info = {
                        "id": match[1],
                        "modelId": match[1],
                        "sha": sha,
                        "private": False,
                        "gated": repo.gated,
                        "siblings": [{"rfilename": name} for name in sorted(repo.files)],
                    }
                    self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
            elif match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                found = self._repo(match[1], match[2])
                if found:
                    self._file(found[0], found[1], match[3])
            else:
                self._error(404, "EntryNotFound", f"no route {path}")

        def _file(self, repo: FakeRepo, sha: str, filename: str) -> None:
            data = repo.files.get(filename)
            if data is None:
                self._error(404, "EntryNotFound", f"{filename} does not exist")
                return
            headers = {
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Repo-Commit": sha,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start = 0
            if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                start = int(match[1])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            status = 206 if start else 200
            if self.command == "HEAD":
                self._send(status, body, headers)
                return
            with hub.lock:
                failing = hub.fail.get(filename, 0)
                if failing:
                    hub.fail[filename] = failing - 1
            if failing:
                self._error(500, "InternalError", "the server had an error")
                return
            with hub.lock:
                held = hub.hold.pop(filename, None)
            if held is not None:
                self._send_held(status, body, headers, *held)
                return
            with hub.lock:
                cut, times = hub.cut_after.get(filename, (0, 0))
                if times:
                    hub.cut_after[filename] = (cut, times - 1)
            if not times:
                self._send(status, body, headers)
                return
            # Promise the whole body, send part of it, and drop the connection.
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: max(0, cut - start)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

        def _send_held(
            self, status: int, body: bytes, headers: dict[str, str], n_bytes: int, release: threading.Event
        ) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:n_bytes])
            self.wfile.flush()
            release.wait(timeout=60)
            try:
                self.wfile.write(body[n_bytes:])
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client gave up meanwhile

    return Handler


@contextmanager
def serve_hub(repos: dict[str, FakeRepo]) -> Iterator[FakeHub]:
    """Serve `repos` on a free 127.0.0.1 port until the block ends."""
    hub = FakeHub(repos)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
