"""The base of the hub's errors, which says how a caller reports each one.

The API (a job's `error_code`) and the CLI (its exit code) both read these attributes instead of
matching error classes by name, so a new hub error needs no change in the server.
"""

from __future__ import annotations


class HubFailure(Exception):
    """An error of a hub operation that a caller reports rather than crashes on."""

    # The job's `error_code` in the API.
    code: str = "failed"
    # True when the caller asked for something wrong (CLI exit 2), False when the operation failed (exit 1).
    bad_request: bool = False


def error_code(exc: BaseException) -> str:
    """A job failure's error code in the API's vocabulary (`failed` for anything unforeseen)."""
    return exc.code if isinstance(exc, HubFailure) else "failed"


class JobCancelled(HubFailure):
    """The job was cancelled by its caller; raised inside the job at its next report."""

    code = "cancelled"
