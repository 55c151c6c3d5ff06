"""Downloads from the Hugging Face Hub (or a mirror) through `huggingface_hub`, never by hand.

`download_snapshot` pins the revision first (a branch or tag resolves to its commit sha, which the
manifest records), then lets `snapshot_download` fetch into a directory that survives an
interruption. Resumption is `huggingface_hub`'s: a dropped connection is resumed with an HTTP Range
request from the last chunk written, and files that arrived whole before a failure are kept in the
directory and not fetched again on the next try (since huggingface_hub 1.x it deletes a half file
when its own retries give up). `HF_ENDPOINT` picks a mirror, `HF_TOKEN` (or `hf auth login`) opens gated
repos, `HF_HUB_OFFLINE=1` forbids the network. Every failure becomes a `DownloadError` whose message
says what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from hub.errors import HubFailure, JobCancelled

# (what, bytes done, bytes total or None)
ProgressFn = Callable[[str, int, int | None], None]
DownloadErrorCode = Literal["repo_not_found", "revision_not_found", "gated", "offline", "unreachable", "failed"]
DEFAULT_ENDPOINT = "https://huggingface.co"


class DownloadError(HubFailure, RuntimeError):
    """A download failed; `code` says why, the message says what to do."""

    def __init__(self, message: str, code: DownloadErrorCode) -> None:
        super().__init__(message)
        self.code = code


class Snapshot(msgspec.Struct, frozen=True):
    """A downloaded repo: where its files are and the commit they came from."""

    repo_id: str
    revision: str
    path: str
    files: list[str]


def endpoint() -> str:
    """The Hub endpoint in use: `HF_ENDPOINT` (a mirror) or huggingface.co, read at call time."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """Whether `HF_HUB_OFFLINE` (read at call time) forbids the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _progress_class(progress: ProgressFn) -> type[Any]:
    """A tqdm class that reports to `progress` instead of drawing a bar."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["file"] = io.StringIO()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown: bool | None = super().update(n)
            if self.unit == "B":
                progress(str(self.desc or "download"), int(self.n), int(self.total) if self.total else None)
            return shown

    return Reporting


def _transport_errors() -> tuple[type[BaseException], ...]:
    # huggingface_hub 1.x talks through httpx, 2.x through httpx2: a network failure may be either.
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(importlib.import_module(module).TransportError)
    return tuple(errors)


def _explain(exc: BaseException, repo_id: str, revision: str | None) -> DownloadError:
    # Imported here, as huggingface_hub's API below: ~0.2 s a server that never pulls should not
    # pay at start-up.
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint()
    rev = revision or "main"
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo_id} is a gated repository: accept its license on {where}/{repo_id} and set HF_TOKEN "
            "to a token of that account",
            "gated",
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"revision {rev!r} does not exist in {repo_id} on {where}", "revision_not_found")
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"repository {repo_id!r} was not found on {where} (if it is private, set HF_TOKEN)", "repo_not_found"
        )
    if isinstance(exc, OfflineModeIsEnabled | LocalEntryNotFoundError) and offline():
        return DownloadError(
            f"offline (HF_HUB_OFFLINE is set) and {repo_id}@{rev} is not downloaded yet; unset HF_HUB_OFFLINE "
            "or import the files with `hearth import`",
            "offline",
        )
    if isinstance(exc, (*_transport_errors(), LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return DownloadError(
            f"cannot reach {where} to download {repo_id}@{rev} ({type(exc).__name__}); check the network, "
            "or set HF_ENDPOINT to a reachable mirror",
            "unreachable",
        )
    if isinstance(exc, EntryNotFoundError):
        return DownloadError(f"a file of {repo_id}@{rev} was not found: {exc}", "failed")
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(f"downloading {repo_id}@{rev} from {where} failed: {exc}", "failed")
    return DownloadError(f"downloading {repo_id}@{rev} failed: {type(exc).__name__}: {exc}", "failed")


def resolve_revision(repo_id: str, revision: str | None = None) -> str:
    """The commit sha that `revision` (branch, tag or sha; default main) of `repo_id` points at."""
    if offline():
        raise DownloadError(
            f"offline (HF_HUB_OFFLINE is set): cannot resolve {repo_id}@{revision or 'main'}", "offline"
        )
    try:
        from huggingface_hub import HfApi

        info = HfApi(endpoint=endpoint(), token=_token()).model_info(repo_id, revision=revision)
    except Exception as exc:
        raise _explain(exc, repo_id, revision) from exc
    if not info.sha:
        raise DownloadError(f"{endpoint()} did not say which commit {repo_id}@{revision} is", "failed")
    return info.sha


def download_snapshot(
    repo_id: str,
    local_dir: Path,
    *,
    revision: str | None = None,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> Snapshot:
    """Download `repo_id` at `revision` into `local_dir`, resuming whatever an earlier try left there.

    With `progress` the bytes are reported to it; without, `huggingface_hub` draws its own progress
    bars on stderr.
    """
    from huggingface_hub import snapshot_download

    sha = resolve_revision(repo_id, revision)
    local_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = snapshot_download(
            repo_id,
            revision=sha,
            local_dir=local_dir,
            allow_patterns=allow_patterns,
            ignore_patterns=ignore_patterns,
            endpoint=endpoint(),
            token=_token(),
            tqdm_class=_progress_class(progress) if progress else None,
            max_workers=4,
        )
    except JobCancelled:
        # Raised by `progress` (a cancelled job): not a download failure to explain.
        raise
    except Exception as exc:
        raise _explain(exc, repo_id, revision) from exc
    root = Path(path)
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(".cache/")
    )
    if not files:
        wanted = f" matching {allow_patterns}" if allow_patterns else ""
        raise DownloadError(f"{repo_id}@{revision or 'main'} has no files{wanted}", "failed")
    return Snapshot(repo_id=repo_id, revision=sha, path=str(root), files=files)
