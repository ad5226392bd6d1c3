"""Run a callable with the calling thread switched into a network namespace (Linux ``setns(2)``).

Sockets keep the namespace they were created in, so a server socket made this way serves clients
inside that namespace from any thread. The namespace switch is per thread and never touches the rest
of the process. Python 3.11 has no ``os.setns``; ``ctypes`` reaches libc's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` in a fresh thread that has joined network namespace ``name``; return its result."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    t = threading.Thread(target=target, name=f"netns:{name}", daemon=True)
    t.start()
    t.join(timeout=30)
    if error:
        raise error[0]
    if not result:
        raise TimeoutError(f"could not run in network namespace {name}")
    return result[0]
