"""Dropping every Linux capability, so that a worker of a Hearth running as root is not root.

The bounding set is emptied first (that needs CAP_SETPCAP, which only a privileged process has;
an unprivileged one has nothing to drop), then the ambient set, then the effective, permitted and
inheritable sets through capset(2). With no_new_privs set as well, nothing the worker executes can
get a capability back.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from pathlib import Path

_PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAPSET = {"x86_64": 126, "aarch64": 91}


class CapabilityError(RuntimeError):
    """The kernel refused to drop a capability."""


def _last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63


def effective() -> int:
    """The calling process's effective capability mask (from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def drop_all(libc: ctypes.CDLL) -> None:
    """Empty the bounding, ambient, inheritable, permitted and effective sets of this process."""
    for cap in range(_last_cap() + 1):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            if code == errno.EINVAL:
                break  # past the last capability this kernel knows
            if code != errno.EPERM:
                raise CapabilityError(f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(code)}")
    if libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        if code != errno.EINVAL:  # kernels before 4.3 have no ambient set
            raise CapabilityError(f"prctl(PR_CAP_AMBIENT_CLEAR_ALL): {os.strerror(code)}")
    number = _CAPSET.get(platform.machine())
    if number is None:
        raise CapabilityError(f"no capset number for {platform.machine()}")
    header = ctypes.create_string_buffer(struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(bytes(24))  # two __user_cap_data_struct of three u32, all zero
    if libc.syscall(ctypes.c_long(number), header, data) != 0:
        raise CapabilityError(f"capset: {os.strerror(ctypes.get_errno())}")
    if effective() != 0:
        raise CapabilityError("capabilities remain after capset")
