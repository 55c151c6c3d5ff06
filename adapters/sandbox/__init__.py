"""Confinement of a model worker process: what it can reach once it has read its `Load`.

Applied by every worker itself (adapters/worker_main.py) right after it has read its Load command
and before it parses any model file, so the model loader and the engine run confined. In order:

- rlimits: no core files (memory holds prompts), a cap on open files, and optionally on memory
  (RLIMIT_AS) through the `worker_max_memory_gb` setting.
- no_new_privs, then every capability dropped (capabilities.py): a worker of a Hearth running as
  root keeps no privilege, and nothing it executes can gain one.
- Landlock (landlock.py, where the kernel has it): reads only the runtime, the system libraries and
  its own model; writes only its scratch and compiled-model cache directories. Hearth's keys, TLS
  keys, audit log and other models are out of reach. Without Landlock this step is skipped and
  reported (`landlock:unavailable`), and the server logs a warning.
- seccomp (seccomp.py, Linux x86-64 and arm64, every thread): no sockets, no io_uring, no reaching
  another process's descriptors or memory (pidfd_getfd, ptrace, process_vm_*, kcmp), no signals to
  anyone but itself, no other ABI. The worker keeps the socketpair it inherited from the server, its
  only channel. The server sees a killed worker's death (SIGSYS) and records it in the audit log.

Not promised: anything on kernels or platforms without seccomp (macOS, Windows: rlimits only).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

import msgspec

from adapters.sandbox import capabilities, landlock, seccomp
from adapters.sandbox.seccomp import seccomp_filter

__all__ = ["Confinement", "SandboxError", "confine", "seccomp_filter"]

_PR_SET_NO_NEW_PRIVS = 38


class Confinement(msgspec.Struct, frozen=True, kw_only=True):
    """What to apply to a worker; `enabled=False` applies nothing."""

    enabled: bool = True
    max_memory_bytes: int = 0
    max_open_files: int = 4096
    # Landlock file confinement (where the kernel has it); off only for setups that need files the
    # policy does not grant (e.g. a GPU runtime in an unusual place).
    filesystem: bool = True
    # The worker's only writable directory besides the model cache (created and removed by the
    # server around the worker's life); "" = none.
    scratch_dir: str = ""


class SandboxError(RuntimeError):
    """The kernel refused a part of the confinement that this platform should support."""


def _limit(resource_id: int, value: int) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource_id)
    new_hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
    resource.setrlimit(resource_id, (min(value, new_hard), new_hard))


def confine(policy: Confinement, reads: Iterable[str] = (), writes: Iterable[str] = ()) -> list[str]:
    """Apply `policy` to the calling process (irreversibly), letting it read `reads` (its model)
    and write `writes` (its cache) besides its scratch directory; returns what was applied.
    Call it before any thread starts."""
    if not policy.enabled:
        return []
    applied: list[str] = []
    if sys.platform != "win32":
        import resource

        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_NOFILE, policy.max_open_files)
        applied += ["rlimit_core=0", f"rlimit_nofile={policy.max_open_files}"]
        if policy.max_memory_bytes:
            _limit(resource.RLIMIT_AS, policy.max_memory_bytes)
            applied.append(f"rlimit_as={policy.max_memory_bytes}")
    if not (sys.platform.startswith("linux") and seccomp.supported()):
        return applied
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    try:
        capabilities.drop_all(libc)
        applied.append("capabilities:none")
        scratch = [policy.scratch_dir] if policy.scratch_dir else []
        if policy.filesystem:
            abi = landlock.restrict(libc, reads, [*scratch, *writes])
            applied.append(f"landlock:abi{abi}" if abi else "landlock:unavailable")
        seccomp.install(libc)
    except (capabilities.CapabilityError, landlock.LandlockError, seccomp.SeccompError) as exc:
        raise SandboxError(str(exc)) from exc
    applied.append("seccomp:no-sockets")
    return applied
