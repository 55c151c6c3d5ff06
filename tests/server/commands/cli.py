"""Running the real `hearth` command the way a user does, for the tests of this folder."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import HEARTH, REPO_ROOT


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any `HEARTH_*` variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(extra)
    return env


def hearth(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run `hearth ARGS...` (stdin: `input`, else nothing) and return what it printed."""
    return subprocess.run(
        [str(HEARTH), *args],
        cwd=REPO_ROOT,
        env=env if env is not None else clean_env(),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
