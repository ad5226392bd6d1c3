"""Lab plumbing shared by the namespace and FRR harnesses: commands, bounded waits, process ends."""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
#: One CIDR string, several separated by spaces/commas, an iterable of those, or None.
Addrs = str | Iterable[str] | None

#: Directory holding the FRR daemons (Debian: /usr/lib/frr). Override with $FRR_BIN_DIR.
FRR_BIN_DIR = Path(os.environ.get("FRR_BIN_DIR", "/usr/lib/frr"))
#: vtysh binary. Override with $FRR_VTYSH.
VTYSH = os.environ.get("FRR_VTYSH") or shutil.which("vtysh") or "/usr/bin/vtysh"
IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"

NS_PREFIX = "bgpsvc"
_NS_RE = re.compile(rf"^{NS_PREFIX}-(\d+)-(\d+)(?:-.*)?$")
IFNAMSIZ = 15

#: The only networks the lab may put on an interface (traffic-carrying addresses).
ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("fe80::/10"),
)

DEFAULT_CMD_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_counter = itertools.count(1)
_lock = threading.RLock()


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


class CommandError(subprocess.CalledProcessError):
    """A command failed; unlike CalledProcessError, ``str()`` includes its stdout and stderr."""

    def __str__(self) -> str:
        cmd = self.cmd if isinstance(self.cmd, str) else shlex.join(str(c) for c in self.cmd)
        out = (self.stdout or "").strip()
        err = (self.stderr or "").strip()
        msg = f"command {cmd!r} exited with {self.returncode}"
        if out:
            msg += f"\n--- stdout ---\n{out}"
        if err:
            msg += f"\n--- stderr ---\n{err}"
        return msg


class AbortWait(Exception):
    """Raised by a :func:`wait_until` predicate to stop waiting at once (re-raised unchanged)."""


class FrrError(RuntimeError):
    """An FRR instance failed to start, configure or answer."""


class DaemonDied(FrrError, AbortWait):
    """An FRR daemon exited while we were waiting for it."""


def _run(
    cmd: Sequence[str], check: bool = True, timeout: float = DEFAULT_CMD_TIMEOUT, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (no shell), capture text output, raise :class:`CommandError` on failure if ``check``."""
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    return proc


def _as_argv(cmd: str | Sequence[str]) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 30, interval: float = 0.2, what: str = ""
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions raised by the predicate (e.g. an ``assert`` or a daemon not answering yet) count as
    "not yet", except :class:`AbortWait`, which is re-raised at once. After ``timeout`` seconds a
    :class:`TimeoutError` is raised naming ``what``, the last value returned and the last exception
    (chained as ``__cause__``).
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_exc: BaseException | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except AbortWait:
            raise
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    label = what or getattr(predicate, "__name__", repr(predicate))
    msg = f"timed out after {timeout:g}s ({attempts} attempts) waiting for {label}; last value: {last!r}"
    if last_exc is not None:
        msg += f"; last exception: {type(last_exc).__name__}: {last_exc}"
    raise TimeoutError(msg) from last_exc


def check_address(cidr: str) -> str:
    """Return ``cidr`` if it lies in :data:`ALLOWED_NETWORKS`, else raise ``ValueError``."""
    iface = ipaddress.ip_interface(cidr)
    if not any(iface.ip.version == n.version and iface.ip in n for n in ALLOWED_NETWORKS):
        allowed = ", ".join(str(n) for n in ALLOWED_NETWORKS)
        raise ValueError(f"{cidr}: lab addresses must be in documentation ranges ({allowed})")
    return cidr


def _split_addrs(addrs: Addrs) -> list[str]:
    if addrs is None:
        return []
    if isinstance(addrs, str):
        return [a for a in re.split(r"[\s,]+", addrs) if a]
    return [a for item in addrs for a in _split_addrs(item)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM ``proc`` (by its PID), wait up to ``timeout``, then SIGKILL and reap. Returns exit code."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return proc.wait(timeout=timeout)
