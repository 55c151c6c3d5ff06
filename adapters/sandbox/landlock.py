"""Landlock file confinement: a worker reads only the runtime and its model, and writes only its
scratch and cache directories.

Landlock (Linux 5.13+, unprivileged) is applied with the highest ABI the kernel offers. Everything
not granted here is denied to the worker and every thread it has, for good: Hearth's home (keys,
TLS keys, the audit log, other models), the user's files, /tmp. From ABI 4 TCP bind and connect
are denied too, and from ABI 6 signals and abstract unix sockets cannot cross out of the worker's
domain. Landlock also stops a confined process from ptracing, or opening /proc/PID/mem, environ or
fd/ of, any process outside its domain, the server included. On a kernel without Landlock the
worker runs without file confinement (seccomp and the capability drop still apply) and the server
logs a warning once per worker.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on x86-64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2

READ = READ_FILE | READ_DIR | EXECUTE
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | REFER | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV

# What any CPython process with native libraries reads: no secrets live here. /proc is safe because
# Landlock refuses access to other processes' /proc entries that need ptrace rights.
SYSTEM_READS = (
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/etc/ld.so.cache", "/etc/ld.so.conf",
    "/etc/ld.so.conf.d", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
    "/etc/os-release", "/etc/OpenCL", "/proc", "/sys",
)  # fmt: skip
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random", "/dev/dri", "/dev/accel")


class LandlockError(RuntimeError):
    """The kernel has Landlock but refused the ruleset."""


def abi_version(libc: ctypes.CDLL) -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is missing or disabled."""
    version = libc.syscall(ctypes.c_long(_CREATE_RULESET), None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def runtime_reads() -> list[str]:
    """The Python runtime this worker runs on, and Hearth's own packages (wherever they live)."""
    paths = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    paths.append(str(Path(sys.executable).resolve().parent))
    for package in ("adapters", "hub"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            paths += list(spec.submodule_search_locations)
    return paths


def _rights_for(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def _ruleset(libc: ctypes.CDLL, abi: int) -> int:
    handled_net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("QQQ", _rights_for(abi), handled_net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    buffer = ctypes.create_string_buffer(attr[:size], size)
    fd = libc.syscall(ctypes.c_long(_CREATE_RULESET), buffer, ctypes.c_size_t(size), 0)
    if fd < 0:
        raise LandlockError(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    return int(fd)


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False  # absent here (no /dev/dri on a CPU machine): nothing to grant
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        if libc.syscall(ctypes.c_long(_ADD_RULE), ruleset, _RULE_PATH_BENEATH, attr, 0) != 0:
            code = ctypes.get_errno()
            raise LandlockError(f"landlock_add_rule({path}): {os.strerror(code or errno.EINVAL)}")
        return True
    finally:
        os.close(fd)


def restrict(libc: ctypes.CDLL, reads: Iterable[str], writes: Iterable[str]) -> int:
    """Confine the calling process to `reads` (read-only) and `writes` (read-write), beside the
    runtime and system paths; returns the ABI used, or 0 where the kernel has no Landlock.
    no_new_privs must already be set."""
    abi = abi_version(libc)
    if abi == 0:
        return 0
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:  # landlock_restrict_self binds the calling thread only (no TSYNC before ABI 8)
        raise LandlockError(f"file confinement must come before any thread starts ({threads} running)")
    handled = _rights_for(abi)
    ruleset = _ruleset(libc, abi)
    try:
        for path in {*SYSTEM_READS, *runtime_reads(), *reads}:
            _allow(libc, ruleset, path, READ & handled)
        for path in DEVICES:
            _allow(libc, ruleset, path, DEVICE & handled)
        for path in writes:
            _allow(libc, ruleset, path, WRITE & handled)
        if libc.syscall(ctypes.c_long(_RESTRICT_SELF), ruleset, 0) != 0:
            raise LandlockError(f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi
