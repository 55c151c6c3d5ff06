"""Confinement of a model worker process: no new sockets, no core dumps, bounded resources.

Applied by every worker itself (adapters/worker_main.py) right after it has read its Load command and
before it parses any model file, so the model loader and the engine run confined:

- seccomp (Linux x86-64 and arm64): a BPF filter installed on every thread (TSYNC) kills the
  process if it calls socket(2) or io_uring_setup/enter/register, or makes a system call of
  another ABI (32-bit int 0x80, x32), which could reach socketcall(2). The worker keeps the
  socketpair it inherited from the server, its only channel; it cannot open a network or unix
  socket of its own. The server sees the death (SIGSYS) and records it in the audit log.
- no_new_privs: the worker and what it runs can never gain privileges (setuid binaries).
- rlimits: no core files (memory holds prompts), a cap on open files, and optionally on memory
  (RLIMIT_AS) through the `worker_max_memory_gb` setting.

Not promised: file system confinement (the worker can read what the user can; Landlock could
narrow that but OpenVINO reads plugins, caches and model files from paths we do not control), and
anything on kernels or platforms without seccomp (macOS, Windows: rlimits only, where they exist).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

import msgspec


class Confinement(msgspec.Struct, frozen=True, kw_only=True):
    """What to apply to a worker; `enabled=False` applies nothing."""

    enabled: bool = True
    max_memory_bytes: int = 0
    max_open_files: int = 4096


class SandboxError(RuntimeError):
    """The kernel refused a part of the confinement that this platform should support."""


# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_KILL_PROCESS, _RET_ALLOW = 0x80000000, 0x7FFF0000
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
# arch audit id, seccomp(2) number, socket(2) number, and whether x32 numbers must be refused.
_ARCH = {
    "x86_64": (0xC000003E, 317, 41, True),
    "aarch64": (0xC00000B7, 277, 198, False),
}
_IO_URING = (425, 426, 427)  # io_uring_setup, io_uring_enter, io_uring_register (both arches)
_X32_BIT = 0x40000000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_filter(machine: str) -> bytes:
    """The BPF program (as bytes of struct sock_filter) that confines a worker on `machine`."""
    arch, _, socket_nr, x32 = _ARCH[machine]
    denied = (socket_nr, *_IO_URING)
    checks: list[tuple[int, int]] = [(_JGE_K, _X32_BIT)] if x32 else []
    checks += [(_JEQ_K, nr) for nr in denied]
    # ld arch, jeq arch, ret kill, ld nr, the checks, ret allow, then the `ret kill` they jump to.
    kill = 4 + len(checks) + 1
    program = [_insn(_LD_W_ABS, 0, 0, 4), _insn(_JEQ_K, 1, 0, arch), _insn(_RET_K, 0, 0, _RET_KILL_PROCESS)]
    program.append(_insn(_LD_W_ABS, 0, 0, 0))  # seccomp_data.nr
    for i, (op, value) in enumerate(checks):
        index = 4 + i
        program.append(_insn(op, kill - index - 1, 0, value))
    program.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    program.append(_insn(_RET_K, 0, 0, _RET_KILL_PROCESS))
    return b"".join(program)


def _install_seccomp() -> None:
    machine = platform.machine()
    if machine not in _ARCH:
        raise SandboxError(f"no seccomp filter for {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    program = seccomp_filter(machine)
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    nr = _ARCH[machine][1]
    result = libc.syscall(
        ctypes.c_long(nr),
        ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(_SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        raise SandboxError(f"seccomp(SET_MODE_FILTER): {os.strerror(ctypes.get_errno() or errno.EINVAL)}")


def _limit(resource_id: int, value: int) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource_id)
    new_hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
    resource.setrlimit(resource_id, (min(value, new_hard), new_hard))


def confine(policy: Confinement) -> list[str]:
    """Apply `policy` to the calling process (irreversibly); returns what was applied."""
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
    if sys.platform.startswith("linux") and platform.machine() in _ARCH:
        _install_seccomp()
        applied.append("seccomp:no-sockets")
    return applied
