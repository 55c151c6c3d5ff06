"""`hearth completion bash|zsh|fish` and `hearth --version`."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from server.cli import build_parser
from server.commands.completion import walk
from tests.server.commands.cli import hearth

# What `hearth keys` offers, read from the parser itself (the completion must match it).
KEYS_SUBCOMMANDS = next(list(node.subcommands) for node in walk(build_parser()) if node.path == "keys")


def test_version() -> None:
    result = hearth("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"hearth {metadata.version('hearth')}"


def _complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one is the word being completed)."""
    call = (
        f"source {script}; COMP_WORDS=(hearth {' '.join(repr(w) for w in words)}); "
        'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _hearth; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(["bash", "-c", call], capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.split()


def test_bash_script_parses_and_completes(tmp_path: Path) -> None:
    result = hearth("completion", "bash")
    assert result.returncode == 0
    script = tmp_path / "hearth.bash"
    script.write_text(result.stdout)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert {"run", "ps", "stop", "ls", "show", "pull", "completion"} <= set(_complete(script, ""))
    assert _complete(script, "st") == ["stop"]
    assert {"create", "ls", "revoke"} <= set(KEYS_SUBCOMMANDS)
    assert _complete(script, "keys", "") == KEYS_SUBCOMMANDS
    assert _complete(script, "keys", "create", "--scope", "") == ["inference", "admin"]
    # The value of an option is skipped when finding the command: `--url X` does not hide `run`.
    assert "--max-tokens" in _complete(script, "run", "--url", "http://h", "m", "--max")
    assert _complete(script, "serve", "--log-level", "w") == ["warning"]


def _script(tmp_path: Path, shell: str) -> Path:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (apt-get install {shell})")
    result = hearth("completion", shell)
    assert result.returncode == 0
    script = tmp_path / f"hearth.{shell}"
    script.write_text(result.stdout)
    return script


def test_zsh_script_parses_and_completes(tmp_path: Path) -> None:
    script = _script(tmp_path, "zsh")
    subprocess.run(["zsh", "-n", str(script)], check=True, timeout=30)
    # zsh's completion builtins replaced by functions that print what they are given.
    stubs = 'compdef(){}; compadd(){ shift; print -l -- "$@" }; _describe(){ print -l -- "${(@P)4}" }; _files(){ }'

    def complete(*words: str) -> list[str]:
        typed = " ".join(repr(w) for w in words)
        call = f"{stubs}; source {script}; words=(hearth {typed}); CURRENT={len(words) + 1}; _hearth"
        out = subprocess.run(["zsh", "-c", call], capture_output=True, text=True, timeout=30, check=True).stdout
        return out.splitlines()

    assert "stop:unload a model from a running server (it loads again on use)" in complete("")
    assert complete("keys", "create", "--scope", "") == ["inference", "admin"]
    assert "--max-tokens" in complete("run", "--url", "http://h", "m", "--m")


def test_fish_script_parses_and_completes(tmp_path: Path) -> None:
    script = _script(tmp_path, "fish")
    subprocess.run(["fish", "--no-execute", str(script)], check=True, timeout=30)

    def complete(line: str) -> list[str]:
        call = f"source {script}; complete -C {line!r}"
        out = subprocess.run(["fish", "-c", call], capture_output=True, text=True, timeout=30, check=True).stdout
        return [row.split("\t")[0] for row in out.splitlines()]

    assert complete("hearth sto") == ["stop"]
    assert sorted(complete("hearth keys ")) == sorted(KEYS_SUBCOMMANDS)
    assert sorted(complete("hearth keys create --scope ")) == ["admin", "inference"]
    assert "--json" in complete("hearth ls --")


def test_unknown_shell_is_a_usage_error() -> None:
    result = hearth("completion", "powershell")
    assert result.returncode == 2 and "invalid choice" in result.stderr
