"""The seccomp filter of a confined worker: no sockets, no reaching into another process.

A BPF program installed on every thread (TSYNC). It kills the process on system calls that only an
attacker makes (opening a socket, io_uring, taking another process's descriptor with pidfd_getfd,
ptrace, reading or writing another process's memory, kcmp, other ABIs) and fails with EPERM the ones
a library might probe harmlessly (pidfd_open, kernel keyrings, bpf, perf events, mounts, namespaces,
module loading, open_by_handle_at). Signals may only go to the worker itself: kill, tgkill and the
sigqueue calls are refused for any other pid (the server and its process group included).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_KILL_PROCESS, _RET_ALLOW, _RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_X32_BIT = 0x40000000
_ARG0 = 16  # offsetof(struct seccomp_data, args[0]); its low word on little-endian machines

# Numbers that differ by architecture. The pidfd calls (424, 434, 438) and io_uring (425-427) are
# the same on both.
_ARCH: dict[str, dict[str, int]] = {
    "x86_64": {
        "audit_arch": 0xC000003E, "seccomp": 317, "socket": 41, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
        "request_key": 249, "mount": 165, "umount2": 166, "unshare": 272, "setns": 308,
        "init_module": 175, "finit_module": 313, "kexec_load": 246, "open_by_handle_at": 304,
        "name_to_handle_at": 303,
    },
    "aarch64": {
        "audit_arch": 0xC00000B7, "seccomp": 277, "socket": 198, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217,
        "request_key": 218, "mount": 40, "umount2": 39, "unshare": 97, "setns": 268,
        "init_module": 105, "finit_module": 273, "kexec_load": 104, "open_by_handle_at": 265,
        "name_to_handle_at": 264,
    },
}  # fmt: skip
_COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}
_COMMON |= {"pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438}

KILLED = (
    "socket", "io_uring_setup", "io_uring_enter", "io_uring_register", "pidfd_getfd", "ptrace",
    "process_vm_readv", "process_vm_writev", "kcmp",
)  # fmt: skip
REFUSED = (
    "pidfd_open", "pidfd_send_signal", "tkill", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "mount", "umount2", "unshare", "setns", "init_module", "finit_module",
    "kexec_load", "open_by_handle_at", "name_to_handle_at",
)  # fmt: skip
OWN_PID_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


class SeccompError(RuntimeError):
    """The kernel refused the filter."""


def supported(machine: str | None = None) -> bool:
    """Whether a filter exists for this machine's architecture."""
    return (machine or platform.machine()) in _ARCH


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_filter(machine: str, own_pid: int | None = None) -> bytes:
    """The BPF program (bytes of struct sock_filter) confining a process `own_pid` on `machine`."""
    numbers = _ARCH[machine] | _COMMON
    pid = os.getpid() if own_pid is None else own_pid
    checks: list[tuple[int, int, str]] = []  # (opcode, value, where a match jumps)
    if machine == "x86_64":
        checks.append((_JGE_K, _X32_BIT, "kill"))  # x32 numbers could reach socketcall-like paths
    checks += [(_JEQ_K, numbers[name], "kill") for name in KILLED]
    checks += [(_JEQ_K, numbers[name], "eperm") for name in REFUSED]
    checks += [(_JEQ_K, numbers[name], "pid") for name in OWN_PID_ONLY]
    # Layout: [0] ld arch, [1] jeq arch, [2] ret kill, [3] ld nr, checks, ret allow,
    # pid: ld arg0, jeq pid ? allow : eperm, allow: ret allow, eperm: ret errno, kill: ret kill.
    first = 4
    after_checks = first + len(checks)
    labels = {"pid": after_checks + 1}
    labels["allow_pid"] = labels["pid"] + 2
    labels["eperm"] = labels["allow_pid"] + 1
    labels["kill"] = labels["eperm"] + 1
    program = [_insn(_LD_W_ABS, 0, 0, 4), _insn(_JEQ_K, 1, 0, numbers["audit_arch"])]
    program += [_insn(_RET_K, 0, 0, _RET_KILL_PROCESS), _insn(_LD_W_ABS, 0, 0, 0)]
    for index, (op, value, target) in enumerate(checks, start=first):
        program.append(_insn(op, labels[target] - index - 1, 0, value))
    program.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    program.append(_insn(_LD_W_ABS, 0, 0, _ARG0))
    program.append(_insn(_JEQ_K, 0, 1, pid & 0xFFFFFFFF))
    program.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    program.append(_insn(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM))
    program.append(_insn(_RET_K, 0, 0, _RET_KILL_PROCESS))
    return b"".join(program)


def install(libc: ctypes.CDLL) -> None:
    """Install the filter on every thread of the calling process (no_new_privs must be set)."""
    machine = platform.machine()
    if machine not in _ARCH:
        raise SeccompError(f"no seccomp filter for {machine}")
    program = seccomp_filter(machine)
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    result = libc.syscall(
        ctypes.c_long(_ARCH[machine]["seccomp"]),
        ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(_SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        raise SeccompError(f"seccomp(SET_MODE_FILTER): {os.strerror(ctypes.get_errno() or errno.EINVAL)}")
