"""The worker's seccomp filter, built with libseccomp through ctypes.

The worker installs it on itself after start-up and before it loads hook
code, so the interpreter can start but hook code can never fork, exec, open
a socket but a UNIX, IPv4 or IPv6 stream (no UDP, raw, packet or netlink
socket), or reach the kernel interfaces that sandbox escapes use.
Runs inside the sandbox; standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

LIBRARY = "libseccomp.so.2"

_ALLOW = 0x7FFF0000
_CMP_NE = 1
_CMP_EQ = 4
_CMP_GE = 5
_CMP_GT = 6
_PR_SET_PDEATHSIG = 1
_CMP_MASKED_EQ = 7
_CLONE_THREAD = 0x00010000
_FAMILIES = frozenset({socket.AF_UNIX, socket.AF_INET, socket.AF_INET6})
_AF_MAX = 46  # one past the highest address family Linux defines
_SOCK_PACKET = 10
# Every socket type but SOCK_STREAM (1): datagram, raw, RDM, seqpacket, DCCP, packet.
_DENIED_TYPES = (2, 3, 4, 5, 6, _SOCK_PACKET)
_TCP_ULP = 31
_SOCK_TYPE_MASK = 0xF  # the type, without SOCK_NONBLOCK and SOCK_CLOEXEC
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C

# Denied outright: kernel interfaces hooks have no use for and escapes do.
DENIED = (
    # Other processes and their memory.
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise",
    "kcmp",
    # Mounts and namespaces, old and new API.
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsmount",
    "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr",
    # Kernel interfaces that escapes tend to use.
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init", "quotactl", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "iopl", "ioperm", "personality",
    "swapon", "swapoff", "reboot", "acct", "syslog", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    # Memory outside the address-space limit.
    "memfd_create", "memfd_secret",
    # No new processes and no new programs: a hook is one process for its whole life.
    "fork", "vfork", "execve", "execveat",
    # No session of its own: it would be a scheduler autogroup of its own, out
    # from under the low priority the server gave the worker's session.
    "setsid",
    # Nor an I/O priority above the server's.
    "ioprio_set",
)  # fmt: skip


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def install(library: str = LIBRARY) -> None:
    """Load the filter into the calling process (and its future threads), for good."""
    _with_filter(library, lambda lib, context: lib.seccomp_load(context), "seccomp_load")


def export(path: str, library: str = LIBRARY) -> None:
    """Write the same filter to ``path`` as a BPF program, for a worker that cannot
    build one itself (Node.js: runtime/node/confine.c loads it before Node starts).
    The calling process is left unfiltered."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        _with_filter(
            library, lambda lib, context: lib.seccomp_export_bpf(context, fd), "seccomp_export_bpf"
        )
    finally:
        os.close(fd)


def _with_filter(library: str, use: Callable[[Any, int], int], what: str) -> None:
    """Build the filter in a libseccomp context and hand it to ``use``."""
    lib = ctypes.CDLL(library, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]

    context = lib.seccomp_init(_ALLOW)
    if not context:
        raise OSError("seccomp_init failed")
    try:

        def rule(name: str, action: int, *conditions: tuple[int, int, int, int]) -> None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a system call on this architecture
                return
            array = (_ArgCmp * max(len(conditions), 1))(*(_ArgCmp(*c) for c in conditions))
            result = lib.seccomp_rule_add_array(context, action, number, len(conditions), array)
            if result < 0:
                raise OSError(-result, f"seccomp rule for {name} failed")

        for name in DENIED:
            rule(name, _errno(errno.EPERM))
        # Threads are clones with CLONE_THREAD; every other clone is a new process.
        rule("clone", _errno(errno.EPERM), (0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))
        # clone3 passes its flags in memory, out of a filter's reach: make the C
        # library fall back to clone, which the rule above can inspect.
        rule("clone3", _errno(errno.ENOSYS))
        # A worker may not opt out of dying with its parent.
        rule("prctl", _errno(errno.EPERM), (0, _CMP_EQ, _PR_SET_PDEATHSIG, 0))
        # Sockets: Unix (the egress door is one), and TCP — which reaches nothing
        # but the sandbox's own loopback, where the egress broker listens: the
        # network namespace has no other interface. No netlink, no other family.
        for family in range(_AF_MAX):
            if family not in _FAMILIES:
                rule("socket", _errno(errno.EPERM), (0, _CMP_EQ, family, 0))
        rule("socket", _errno(errno.EPERM), (0, _CMP_GE, _AF_MAX, 0))
        # Of those, stream sockets only (TCP, and Unix), with the default protocol:
        # no UDP, UDP-Lite, SCTP, DCCP, MPTCP, raw or packet sockets — each a kernel
        # protocol module a hook could otherwise have loaded and poked at.
        for kind in _DENIED_TYPES:
            rule("socket", _errno(errno.EPERM), (1, _CMP_MASKED_EQ, _SOCK_TYPE_MASK, kind))
        rule("socket", _errno(errno.EPERM), (2, _CMP_GT, socket.IPPROTO_TCP, 0))
        # And no upper-layer protocols on TCP (kernel TLS and the like).
        rule(
            "setsockopt",
            _errno(errno.EPERM),
            (1, _CMP_EQ, socket.SOL_TCP, 0),
            (2, _CMP_EQ, _TCP_ULP, 0),
        )
        rule("socketpair", _errno(errno.EPERM), (0, _CMP_NE, socket.AF_UNIX, 0))
        # No typing into a terminal, should one ever be reachable (the sandbox has
        # no controlling terminal). The kernel reads the request as 32 bits.
        for request in (_TIOCSTI, _TIOCLINUX):
            rule("ioctl", _errno(errno.EPERM), (1, _CMP_MASKED_EQ, 0xFFFFFFFF, request))
        result = use(lib, context)
        if result < 0:
            raise OSError(-result, f"{what} failed")
    finally:
        lib.seccomp_release(context)
