"""A private network namespace for a private Ray cluster: nothing it opens is reachable beyond loopback.

Ray's servers bind the node's address, or every interface; in a network namespace whose only interface is the
loopback one, the node's address is 127.0.0.1 and every interface is loopback. :func:`enter_private_network` moves
the calling thread (the main thread, before Ray starts; the cluster's processes inherit it) into a new namespace
and brings its loopback interface up. From then on the process reaches no other machine. Linux only, and it needs
CAP_SYS_ADMIN (root): a multithreaded process cannot enter a user namespace of its own.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_IFREQ = "16sH14x"  # struct ifreq: the name, then ifr_flags


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def only_loopback() -> bool:
    """Whether the calling thread's network namespace has no interface but loopback."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def enter_private_network() -> None:
    """Move the calling thread into a new network namespace with loopback up; an ``OSError`` names why not."""
    if only_loopback():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    _loopback_up()


__all__ = ["enter_private_network", "only_loopback"]
