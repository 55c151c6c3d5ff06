"""One validator for every name that reaches a path or a log: models, services, workflows, files, keys.

A name is 1-128 characters of letters, digits, `.`, `_` and `-`, starting with a letter or digit;
model ids may also have `/`-separated segments (Hugging Face style `org/name`), each segment a valid
name. So no name can be empty, absolute, contain `..` or a control character, or climb out of the
directory it is joined to. Lives in the hub because both the hub and the server use it (the hub
never imports the server).
"""

from __future__ import annotations

import re
from typing import Literal

from hub.errors import HubFailure

MAX_NAME_LENGTH = 128
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Artifact names may also have `+` (`llama-3.2-1b+ov`), as the hub has always allowed.
_ARTIFACT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

NameKind = Literal["model", "artifact", "service", "workflow", "file", "key"]


class InvalidNameError(HubFailure, ValueError):
    """A name that must not be used: its message says why, for an API error or a CLI message."""

    code = "invalid_request"
    bad_request = True

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(f"invalid {kind} name {name!r}: {reason}")
        self.kind = kind
        self.name = name
        self.reason = reason


def check_name(name: str, kind: NameKind = "file") -> str:
    """Return `name` if it is safe to use as a `kind` name (a path component), else raise
    `InvalidNameError`. Only model names may have `/`-separated segments."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(kind, str(name), "it is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(kind, name[:40] + "...", f"it is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidNameError(kind, name, "it contains a control character")
    segments = name.split("/") if kind == "model" else [name]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidNameError(kind, name, "it has an empty, '.' or '..' path segment")
        if not (_ARTIFACT if kind == "artifact" else _SEGMENT).fullmatch(segment):
            allowed = "'.', '_', '+' and '-'" if kind == "artifact" else "'.', '_' and '-'"
            raise InvalidNameError(kind, name, f"use letters, digits, {allowed}, starting with a letter or digit")
    return name


def is_valid_name(name: str, kind: NameKind = "file") -> bool:
    """Whether `check_name(name, kind)` accepts `name`."""
    try:
        check_name(name, kind)
    except InvalidNameError:
        return False
    return True


# Hugging Face's own rules for repo ids (huggingface_hub.utils.validate_repo_id): `org/name`, each
# part 1-96 letters, digits, `.`, `_`, `-`, not starting or ending with `.` or `-`, no `--` or `..`.
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")
_PRECISION = re.compile(r"[A-Za-z0-9_]{1,32}")


def check_pull_ref(ref: str, revision: str | None = None, precision: str | None = None) -> None:
    """Refuse (InvalidNameError) a pull that can never resolve: a repo id Hugging Face would not
    accept, a revision or a precision that is not a plain token. Checked before a job is queued."""
    parts = ref.split("/")
    if len(parts) != 2 or not all(_REPO_PART.fullmatch(p) for p in parts) or "--" in ref or ".." in ref:
        raise InvalidNameError(
            "model",
            ref[:200],
            "it is neither a catalog model (see `hearth catalog`) nor a Hugging Face repo id (org/name)",
        )
    if revision is not None and (not _REVISION.fullmatch(revision) or ".." in revision):
        raise InvalidNameError("model", revision[:200], "the revision must be a branch, tag or commit name")
    if precision is not None and not _PRECISION.fullmatch(precision):
        raise InvalidNameError("model", precision[:200], "the precision must be a name such as int4 or q4_k_m")
