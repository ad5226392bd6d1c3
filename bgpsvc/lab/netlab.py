"""Network lab harness: Linux network namespaces, veth links and real FRR routers for integration tests.

Everything here is built for running *many* isolated labs on one host without touching the host's own
network or the system FRR service:

* Namespaces are named ``bgpsvc-<pid>-<n>[-<label>]`` and veth ends ``b<pid>-<n>a`` / ``b<pid>-<n>b``
  (<= 15 chars). veth pairs are created directly inside their namespaces, so nothing ever appears in the
  host namespace, and a name already taken (e.g. a leftover from a crashed run whose pid was reused) is
  skipped instead of reused.
* Addresses given to :func:`veth` / :meth:`Netns.add_address` must lie in documentation ranges
  (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) or IPv6 link-local; anything else
  raises ``ValueError``.
* Each :class:`Frr` gets a private work dir (config, pid files, vty sockets, zserv socket, logs) and is
  started with explicit ``-f/-i/-z/--vty_socket`` paths and ``-P 0`` (no TCP vty), so neither ``/etc/frr``
  nor ``/var/run/frr`` is read or written. vtysh is pointed at the instance with ``--vty_socket`` and
  ``--config_dir``.
* Processes are only ever ended by PID (Popen handles of processes started here). Cleanup happens in
  :meth:`Lab.cleanup` (called by the pytest fixtures' finalizers) with an ``atexit`` hook and a SIGTERM
  handler as backstops.
* Every wait is bounded (:func:`wait_until`).

Only this module's own objects are ever cleaned up; :func:`sweep_stale_namespaces` additionally removes
*empty* namespaces left behind by harness runs whose process no longer exists.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import json as jsonlib
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ALLOWED_NETWORKS",
    "AbortWait",
    "CommandError",
    "DaemonDied",
    "Frr",
    "FrrError",
    "Lab",
    "Netns",
    "Terminated",
    "check_address",
    "cleanup_all",
    "drop_traffic",
    "frr_available",
    "frr_version",
    "link_set",
    "live_namespaces",
    "require_root_and_frr",
    "sweep_stale_namespaces",
    "veth",
    "wait_until",
]

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


# --------------------------------------------------------------------------------------------------
# environment checks
# --------------------------------------------------------------------------------------------------


def frr_available() -> list[str]:
    """Return a list of reasons the lab cannot run here (empty if it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (network namespaces and FRR need CAP_NET_ADMIN)")
    for tool in (IP, TC):
        if not os.access(tool, os.X_OK):
            problems.append(f"{tool} missing (iproute2)")
    for daemon in ("zebra", "bgpd"):
        path = FRR_BIN_DIR / daemon
        if not os.access(path, os.X_OK):
            problems.append(f"{path} missing (install FRR, e.g. Debian package 'frr')")
    if not os.access(VTYSH, os.X_OK):
        problems.append(f"{VTYSH} missing (FRR vtysh)")
    return problems


def require_root_and_frr() -> None:
    """Skip the calling test (``pytest.fail`` when ``$CI == "true"``) unless root and FRR are available."""
    import pytest  # noqa: PLC0415 - keep the module importable outside pytest

    problems = frr_available()
    if not problems:
        return
    msg = "integration lab unavailable: " + "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


_frr_version_cache: str | None = None


def frr_version() -> str:
    """Installed FRR version, e.g. ``"8.4.4"`` (from ``bgpd --version``)."""
    global _frr_version_cache  # noqa: PLW0603
    if _frr_version_cache is None:
        out = _run([str(FRR_BIN_DIR / "bgpd"), "--version"]).stdout
        m = re.search(r"version\s+(\S+)", out)
        if not m:
            raise FrrError(f"cannot parse FRR version from: {out!r}")
        _frr_version_cache = m.group(1)
    return _frr_version_cache


# --------------------------------------------------------------------------------------------------
# cleanup registry / backstops
# --------------------------------------------------------------------------------------------------

_live_netns: dict[str, Netns] = {}
_backstop_installed = False


def live_namespaces() -> list[str]:
    """Names of the namespaces this process created and has not deleted yet."""
    with _lock:
        return list(_live_netns)


def cleanup_all() -> list[str]:
    """Stop every FRR / process started by this module and delete every namespace it created.

    Registered with ``atexit``; safe to call many times. Returns the errors met (best effort, never raises).
    """
    errors: list[str] = []
    with _lock:
        victims = list(_live_netns.values())
    for ns in victims:
        try:
            ns.delete()
        except Exception as exc:
            errors.append(f"{ns.name}: {exc}")
    for err in errors:
        print(f"netlab cleanup: {err}", file=sys.stderr)
    return errors


class Terminated(KeyboardInterrupt):
    """SIGTERM received. A KeyboardInterrupt so that pytest stops the session and still runs fixture
    finalizers (a SystemExit inside a test would only fail that test and carry on)."""


_terminating = False


def _on_sigterm(signum: int, frame: Any) -> None:
    # Default SIGTERM action would skip fixture finalizers and atexit; raise instead. Later SIGTERMs are
    # ignored so they cannot interrupt the (bounded) cleanup; SIGKILL still works.
    global _terminating  # noqa: PLW0603
    if _terminating:
        return
    _terminating = True
    raise Terminated(f"signal {signum}")


def _install_backstop() -> None:
    global _backstop_installed  # noqa: PLW0603
    with _lock:
        if _backstop_installed:
            return
        _backstop_installed = True
        atexit.register(cleanup_all)
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _on_sigterm)


def _list_netns() -> list[str]:
    out = _run([IP, "-j", "netns", "list"], check=False).stdout.strip()
    if not out:
        return []
    return [entry["name"] for entry in jsonlib.loads(out)]


def sweep_stale_namespaces() -> list[str]:
    """Delete namespaces ``bgpsvc-<pid>-*`` left by dead runs (pid gone) that hold no processes.

    Namespaces that still contain processes are left alone (they are not ours to end) and reported
    with a warning. Returns the names deleted.
    """
    removed = []
    for name in _list_netns():
        m = _NS_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        pids = _run([IP, "netns", "pids", name], check=False).stdout.split()
        if pids:
            warnings.warn(
                f"stale lab namespace {name} still has processes {pids}; not touching it",
                stacklevel=2,
            )
            continue
        if _run([IP, "netns", "delete", name], check=False).returncode == 0:
            removed.append(name)
    return removed


# --------------------------------------------------------------------------------------------------
# namespaces and links
# --------------------------------------------------------------------------------------------------


class Netns:
    """A Linux network namespace created (and deleted) by the lab.

    ``Netns(label)`` only picks a name; :meth:`create` makes the namespace, brings ``lo`` up and sets
    sysctls: IPv6 DAD off (``accept_dad=0``) so addresses are usable at once, ``keep_addr_on_down=1`` so
    IPv6 addresses survive :func:`link_set` down/up, and IPv4/IPv6 forwarding on (``forwarding=True``).
    Also usable as a context manager.
    """

    def __init__(self, label: str = "", *, forwarding: bool = True) -> None:
        if label and not re.fullmatch(r"[A-Za-z0-9_.]+", label):
            raise ValueError(f"bad namespace label {label!r}")
        self.label = label
        self.forwarding = forwarding
        self.name = ""
        self.created = False
        self._procs: list[subprocess.Popen[Any]] = []
        self._frrs: list[Frr] = []

    def __repr__(self) -> str:
        return f"Netns({self.name or '<not created>'!r})"

    # lifecycle -------------------------------------------------------------------------------

    def create(self) -> Netns:
        """Create the namespace (idempotent) and return ``self``."""
        if self.created:
            return self
        _install_backstop()
        existing = set(_list_netns())
        for _ in range(1000):
            n = next(_counter)
            name = f"{NS_PREFIX}-{os.getpid()}-{n}" + (f"-{self.label}" if self.label else "")
            if name in existing:
                continue
            proc = _run([IP, "netns", "add", name], check=False)
            if proc.returncode == 0:
                break
            if "exists" not in proc.stderr:
                raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        else:
            raise RuntimeError("could not find a free namespace name")
        self.name = name
        self.created = True
        with _lock:
            _live_netns[name] = self
        try:
            self.ip("link", "set", "dev", "lo", "up")
            sysctls = {
                "net.ipv6.conf.all.accept_dad": 0,
                "net.ipv6.conf.default.accept_dad": 0,
                "net.ipv6.conf.all.keep_addr_on_down": 1,
                "net.ipv6.conf.default.keep_addr_on_down": 1,
            }
            if self.forwarding:
                sysctls |= {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
            self.sysctl(sysctls)
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Stop FRR instances and processes started in this namespace (by PID), then delete it."""
        errors: list[str] = []
        for frr in list(self._frrs):
            try:
                frr.stop()
            except Exception as exc:
                errors.append(f"stopping FRR {frr.name}: {exc}")
        for proc in list(self._procs):
            try:
                _end_process(proc)
            except Exception as exc:
                errors.append(f"ending pid {proc.pid}: {exc}")
            self._procs.remove(proc)
        if self.created:
            leftover = _run([IP, "netns", "pids", self.name], check=False).stdout.split()
            if leftover:
                errors.append(f"processes not started by netlab remain in {self.name}: {leftover}")
            deleted = _run([IP, "netns", "delete", self.name], check=False)
            if deleted.returncode != 0 and self.name in _list_netns():
                errors.append(f"ip netns delete {self.name}: {deleted.stderr.strip()}")
            else:
                self.created = False
                with _lock:
                    _live_netns.pop(self.name, None)
        if errors:
            raise RuntimeError("; ".join(errors))

    def __enter__(self) -> Netns:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()

    # commands --------------------------------------------------------------------------------

    def _require(self) -> None:
        if not self.created:
            raise RuntimeError(f"{self!r} is not created")

    def exec_argv(self, cmd: str | Sequence[str]) -> list[str]:
        """argv that runs ``cmd`` inside the namespace (``ip netns exec <name> ...``)."""
        self._require()
        return [IP, "netns", "exec", self.name, *_as_argv(cmd)]

    def run(
        self, cmd: str | Sequence[str], check: bool = True, timeout: float = DEFAULT_CMD_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` (argv list, or a string split with shlex - no shell) inside the namespace."""
        return _run(self.exec_argv(cmd), check=check, timeout=timeout)

    def popen(self, cmd: str | Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace; it is ended (by PID) when the namespace is deleted.

        ``ip netns exec`` execs the command, so ``Popen.pid`` is the command's own PID.
        """
        proc: subprocess.Popen[Any] = subprocess.Popen(self.exec_argv(cmd), **kw)
        self._procs.append(proc)
        return proc

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n <ns> <args>``."""
        self._require()
        return _run([IP, "-n", self.name, *args], check=check)

    def ip_json(self, *args: str) -> Any:
        """``ip -j -n <ns> <args>`` parsed (``[]`` for empty output)."""
        self._require()
        out = _run([IP, "-j", "-n", self.name, *args]).stdout.strip()
        return jsonlib.loads(out) if out else []

    def sysctl(self, values: dict[str, Any]) -> None:
        """Set sysctls inside the namespace (one process for all of them)."""
        script = "set -e\n" + "".join(
            f"echo {shlex.quote(str(v))} > /proc/sys/{k.replace('.', '/')}\n" for k, v in values.items()
        )
        self.run(["sh", "-c", script])

    def add_address(self, ifname: str, cidr: str) -> None:
        """Add ``cidr`` (documentation ranges only) to ``ifname``; IPv6 without DAD."""
        check_address(cidr)
        extra = ["nodad"] if ipaddress.ip_interface(cidr).version == 6 else []
        self.ip("addr", "add", cidr, "dev", ifname, *extra)

    def addresses(self, ifname: str) -> list[str]:
        """CIDR strings configured on ``ifname``."""
        data = self.ip_json("addr", "show", "dev", ifname)
        return [f"{a['local']}/{a['prefixlen']}" for link in data for a in link.get("addr_info", [])]

    def link(self, ifname: str) -> dict[str, Any]:
        """``ip -j link show dev <ifname>`` entry."""
        entry: dict[str, Any] = self.ip_json("link", "show", "dev", ifname)[0]
        return entry

    def routes(self, family: int = 4, proto: str | None = None, table: str = "main") -> list[dict[str, Any]]:
        """``ip -j -<family> route show table <table>`` inside the namespace, optionally only ``proto``.

        Filtering is done here rather than with ``ip ... proto X`` so that entries keep their
        ``"protocol"`` key (``ip`` omits it when filtering on it).
        """
        routes: list[dict[str, Any]] = self.ip_json(f"-{family}", "route", "show", "table", table)
        if proto:
            routes = [r for r in routes if r.get("protocol") == proto]
        return routes


def _ifname_pair() -> tuple[str, str]:
    n = next(_counter)
    base = f"b{os.getpid()}-{n}"
    names = (base + "a", base + "b")
    if len(names[0]) > IFNAMSIZ:
        raise RuntimeError(f"interface name {names[0]!r} longer than {IFNAMSIZ}")
    return names


def veth(
    a: Netns,
    b: Netns,
    addr_a: Addrs,
    addr_b: Addrs,
    *,
    mtu: int | None = None,
) -> tuple[str, str]:
    """Join ``a`` and ``b`` with a veth pair and return the interface names ``(in_a, in_b)``.

    The pair is created directly inside the two namespaces (never in the host namespace). Each end gets
    the addresses given (a CIDR string, several separated by spaces/commas, or an iterable; IPv4 and
    IPv6 mixed; documentation ranges only; IPv6 with ``nodad``), links and ``lo`` are brought up.
    ``a`` and ``b`` may be the same namespace.
    """
    addrs_a, addrs_b = _split_addrs(addr_a), _split_addrs(addr_b)
    for cidr in addrs_a + addrs_b:
        check_address(cidr)
    a.create()
    b.create()
    if_a, if_b = _ifname_pair()
    cmd = [IP, "link", "add", if_a, "netns", a.name]
    if mtu:
        cmd += ["mtu", str(mtu)]
    cmd += ["type", "veth", "peer", "name", if_b, "netns", b.name]
    if mtu:
        cmd += ["mtu", str(mtu)]
    _run(cmd)
    for ns, ifname, addrs in ((a, if_a, addrs_a), (b, if_b, addrs_b)):
        for cidr in addrs:
            ns.add_address(ifname, cidr)
        ns.ip("link", "set", "dev", ifname, "up")
        ns.ip("link", "set", "dev", "lo", "up")
    return if_a, if_b


def link_set(ns: Netns, ifname: str, up: bool) -> None:
    """Administratively bring ``ifname`` in ``ns`` up or down (a veth peer loses carrier too)."""
    ns.ip("link", "set", "dev", ifname, "up" if up else "down")


def drop_traffic(ns: Netns, ifname: str, on: bool) -> None:
    """Silently drop every frame sent or received on ``ifname`` (``on=True``), or stop doing so.

    The link stays up (no carrier change, no NOTIFICATION can get through), so only timers notice:
    the way to test hold-timer expiry. Implemented with tc only (no iptables/nft needed):

    * egress: root qdisc ``pfifo limit 0`` - every packet is dropped at enqueue;
    * ingress: ``ingress`` qdisc with a match-all u32 filter whose action is ``mirred egress redirect``
      to the same device, i.e. into that zero-length fifo where it is dropped too.

    Needs sch_fifo, sch_ingress, cls_u32 and act_mirred (standard in distribution kernels). Idempotent.
    """
    if on:
        ns.run([TC, "qdisc", "replace", "dev", ifname, "root", "pfifo", "limit", "0"])
        ns.run([TC, "qdisc", "replace", "dev", ifname, "ingress"])
        match_all = ["u32", "match", "u32", "0", "0"]
        to_fifo = ["action", "mirred", "egress", "redirect", "dev", ifname]
        ns.run(
            [
                TC,
                "filter",
                "replace",
                "dev",
                ifname,
                "parent",
                "ffff:",
                "protocol",
                "all",
                "prio",
                "1",
                *match_all,
                *to_fifo,
            ]
        )
    else:
        # Ingress first: without the zero-length fifo the redirect would reflect packets to the peer.
        for args in (["qdisc", "del", "dev", ifname, "ingress"], ["qdisc", "del", "dev", ifname, "root"]):
            proc = ns.run([TC, *args], check=False)
            if proc.returncode != 0 and not re.search(
                r"Cannot find|Invalid handle|handle of zero|No such", proc.stderr
            ):
                raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------------------------------
# FRR
# --------------------------------------------------------------------------------------------------


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _frr_identity() -> tuple[str, str]:
    try:
        pw = pwd.getpwnam("frr")
    except KeyError:
        return "root", "root"
    import grp  # noqa: PLC0415

    return "frr", grp.getgrgid(pw.pw_gid).gr_name


class Frr:
    """One FRR router (zebra + bgpd by default) running inside a :class:`Netns`.

    Isolation: all state lives in a private work dir ``<tmp>/bgpsvc-<pid>-frr-<name>-XXXX/`` (owned by
    the ``frr`` user the daemons drop privileges to): ``<daemon>.conf`` startup configs,
    ``<daemon>.pid``, ``<daemon>.vty`` sockets (``--vty_socket``), ``zserv.api`` (``-z``, zebra and its
    clients), ``<daemon>.log``. The TCP vty is disabled (``-P 0``); BGP listens on :179 inside the
    namespace only. Defaults profile is forced with ``-F traditional``.

    ``config`` is applied after the daemons are up with ``vtysh -f`` (which dispatches each line to the
    right daemon, like an integrated ``frr.conf``). Add ``"staticd"`` to ``daemons`` for ``ip route``
    statements (lines for daemons that are not running are silently ignored by vtysh). With
    ``daemons=("bgpd",)`` (no zebra), bgpd runs with ``-Z`` (no zebra, hence no kernel routes and no
    interface knowledge: configure ``bgp router-id`` or the OPEN carries 0.0.0.0 and is refused).
    """

    def __init__(
        self,
        ns: Netns,
        config: str,
        name: str,
        *,
        daemons: Sequence[str] = ("zebra", "bgpd"),
        log_level: str = "debugging",
        keep_workdir: bool | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"bad FRR instance name {name!r}")
        self.ns = ns
        self.config = config
        self.name = name
        self.daemons = tuple(daemons)
        if "zebra" in self.daemons:
            self.daemons = ("zebra", *(d for d in self.daemons if d != "zebra"))
        self.log_level = log_level
        self.keep_workdir = bool(os.environ.get("NETLAB_KEEP")) if keep_workdir is None else keep_workdir
        self.workdir: Path | None = None
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Frr({self.name!r} in {self.ns.name!r}, running={self.running})"

    # paths -------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.workdir is None:
            raise FrrError(f"{self.name}: not started")
        return self.workdir / name

    @property
    def zserv_path(self) -> Path:
        return self._path("zserv.api")

    def log_path(self, daemon: str) -> Path:
        return self._path(f"{daemon}.log")

    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    def pid(self, daemon: str) -> int:
        return self.procs[daemon].pid

    # lifecycle ---------------------------------------------------------------------------------

    def _make_workdir(self) -> Path:
        base = Path(os.environ.get("NETLAB_TMPDIR") or tempfile.gettempdir())
        user, group = _frr_identity()
        if user != "root" and not _traversable_by_others(base):
            raise FrrError(f"{base} is not traversable by user {user}; set NETLAB_TMPDIR (e.g. /tmp)")
        workdir = Path(tempfile.mkdtemp(prefix=f"{NS_PREFIX}-{os.getpid()}-frr-{self.name}-", dir=base))
        if len(str(workdir / "staticd.vty")) > 100:
            raise FrrError(f"{workdir} too long for unix socket paths; set NETLAB_TMPDIR")
        shutil.chown(workdir, user, group)
        workdir.chmod(0o750)
        return workdir

    def _daemon_argv(self, daemon: str) -> list[str]:
        user, group = _frr_identity()
        conf = self._path(f"{daemon}.conf")
        conf.write_text(f"frr version {frr_version()}\nfrr defaults traditional\nhostname {self.name}\n!\n")
        shutil.chown(conf, user, group)
        argv = [
            str(FRR_BIN_DIR / daemon),
            "-u", user, "-g", group,
            "-F", "traditional",
            "-f", str(conf),
            "-i", str(self._path(f"{daemon}.pid")),
            "--vty_socket", str(self.workdir),
            "-P", "0",
            "--log", f"file:{self.log_path(daemon)}",
            "--log-level", self.log_level,
        ]  # fmt: skip
        if "zebra" in self.daemons:
            argv += ["-z", str(self.zserv_path)]
        elif daemon == "bgpd":
            argv += ["-Z"]
        return argv

    def start(self, timeout: float = 30) -> None:
        """Start the daemons (zebra first), wait until each answers vtysh, then apply ``config``."""
        if self.procs:
            raise FrrError(f"{self.name}: already started")
        t0 = time.monotonic()
        self.ns.create()
        self.workdir = self._make_workdir()
        (self.workdir / "vtysh.conf").write_text("")
        self.ns._frrs.append(self)
        try:
            for daemon in self.daemons:
                argv = self._daemon_argv(daemon)
                with open(self._path(f"{daemon}.out"), "wb") as out:
                    self.procs[daemon] = subprocess.Popen(
                        self.ns.exec_argv(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out
                    )
                self._wait_daemon(daemon, timeout)
            self.timings["daemons_up"] = time.monotonic() - t0
            if "zebra" in self.daemons and "bgpd" in self.daemons:
                wait_until(
                    lambda: self._zebra_has_client("bgp"), timeout=timeout, what=f"{self.name}: bgpd->zebra"
                )
            self.configure(self.config)
            self.timings["started"] = time.monotonic() - t0
        except BaseException:
            with contextlib.suppress(Exception):
                diag = self.diagnostics(commands=())
                print(f"netlab: {self.name} failed to start\n{diag}", file=sys.stderr)
            self.stop()
            raise

    def _check_alive(self, daemon: str) -> None:
        proc = self.procs[daemon]
        if proc.poll() is not None:
            raise DaemonDied(
                f"{self.name}: {daemon} exited with {proc.returncode} during startup\n{self._tails(daemon)}"
            )

    def _wait_daemon(self, daemon: str, timeout: float) -> None:
        pidfile = self._path(f"{daemon}.pid")

        def ready() -> bool:
            self._check_alive(daemon)
            if not (self._path(f"{daemon}.vty").exists() and pidfile.exists()):
                return False
            if daemon == "zebra" and not self.zserv_path.exists():
                return False
            return self._vtysh_raw(["-d", daemon, "-c", "show version"], check=False).returncode == 0

        wait_until(ready, timeout=timeout, interval=0.05, what=f"{self.name}: {daemon} to answer vtysh")
        filepid = int(pidfile.read_text().strip() or 0)
        if filepid != self.procs[daemon].pid:
            raise FrrError(f"{self.name}: {daemon} pid file says {filepid}, started {self.procs[daemon].pid}")

    def _zebra_has_client(self, proto: str) -> bool:
        out = self._vtysh_raw(["-d", "zebra", "-c", "show zebra client summary"], check=False).stdout
        return any(line.split()[:1] == [proto] for line in out.splitlines())

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every daemon by PID (clients before zebra), wait, SIGKILL stragglers, remove work dir."""
        errors = []
        order = [d for d in reversed(self.daemons) if d in self.procs]
        for daemon in order:  # signal all first so they shut down in parallel
            proc = self.procs[daemon]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for daemon in order:
            proc = self.procs[daemon]
            try:
                code = _end_process(proc, timeout)
            except Exception as exc:
                errors.append(f"{daemon} (pid {proc.pid}): {exc}")
                continue
            if code not in (0, -signal.SIGTERM, None):
                # Not an error for cleanup purposes, but worth knowing (e.g. a crash during the test).
                print(f"netlab: {self.name} {daemon} exited with {code}", file=sys.stderr)
        self.procs.clear()
        with contextlib.suppress(ValueError):
            self.ns._frrs.remove(self)
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if errors:
            raise FrrError(f"{self.name}: could not stop: {'; '.join(errors)}")

    def kill(self, daemon: str, sig: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` to one daemon (by its PID), wait for it to exit, return its exit code.

        For crash / graceful-restart tests; :meth:`stop` still cleans up the rest.
        """
        proc = self.procs[daemon]
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def restart(self) -> None:
        """Stop and start again with the same config (new work dir)."""
        self.stop()
        self.start()

    # vtysh -------------------------------------------------------------------------------------

    def _vtysh_raw(
        self, args: Sequence[str], check: bool = True, timeout: float = DEFAULT_CMD_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        if self.workdir is None:
            raise FrrError(f"{self.name}: not started")
        env = dict(os.environ, VTYSH_PAGER="cat", LANG="C")
        argv = [VTYSH, "--vty_socket", str(self.workdir), "--config_dir", str(self.workdir), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def vtysh(self, *commands: str, daemon: str | None = None) -> str:
        """Run vtysh commands against this instance (``-c`` each) and return stdout."""
        args: list[str] = []
        if daemon:
            args += ["-d", daemon]
        for c in commands:
            args += ["-c", c]
        return self._vtysh_raw(args).stdout

    def configure(self, config: str) -> None:
        """Apply configuration text (``frr.conf`` syntax) with ``vtysh -f``; raise on any rejected line."""
        if not config.strip():
            return
        path = self._path(f"apply-{time.monotonic_ns()}.conf")
        path.write_text(config if config.endswith("\n") else config + "\n")
        try:
            self._vtysh_raw(["-f", str(path)])
        except CommandError as exc:
            raise FrrError(f"{self.name}: configuration rejected:\n{exc}") from None

    def json(self, command: str) -> Any:
        """``vtysh -c '<command> json'`` parsed."""
        if not command.rstrip().endswith(" json"):
            command = command.rstrip() + " json"
        out = self.vtysh(command)
        try:
            return jsonlib.loads(out)
        except ValueError:
            raise FrrError(f"{self.name}: {command!r} did not return JSON: {out[:500]!r}") from None

    def bgp_summary(self, family: str | None = None) -> dict[str, Any]:
        """``show bgp summary json``: ``{"ipv4Unicast": {"peers": {...}}, ...}``.

        With ``family`` (``"ipv4"``/``"ipv6"``): ``show bgp <family> unicast summary json``, i.e. the
        inner dict with ``"peers"`` directly (``{}`` if no peer is configured for it).
        """
        command = f"show bgp {family} unicast summary" if family else "show bgp summary"
        data: dict[str, Any] = self.json(command)
        return data

    def routes(self, family: str = "ipv4") -> dict[str, Any]:
        """``show bgp <family> unicast json``; the paths are under ``["routes"][prefix]``."""
        data: dict[str, Any] = self.json(f"show bgp {family} unicast")
        return data

    def neighbor(self, addr: str) -> dict[str, Any]:
        """``show bgp neighbors <addr> json`` for one neighbor (the inner dict: ``bgpState`` etc.)."""
        data = self.json(f"show bgp neighbors {addr}")
        if addr not in data:
            raise KeyError(f"{self.name}: no BGP neighbor {addr}: {data}")
        nbr: dict[str, Any] = data[addr]
        return nbr

    def peer_state(self, addr: str) -> str:
        """BGP FSM state of neighbor ``addr`` (``"Established"``, ``"Active"``, ``"Idle"``...)."""
        return str(self.neighbor(addr)["bgpState"])

    def wait_state(self, addr: str, state: str = "Established", timeout: float = 30) -> None:
        """Wait (bounded) until neighbor ``addr`` is in ``state``; ``state="!Established"`` waits for down."""
        if state.startswith("!"):
            unwanted = state[1:]
            wait_until(lambda: self.peer_state(addr) != unwanted, timeout=timeout,
                       what=f"{self.name}: {addr} to leave {unwanted}")  # fmt: skip
        else:
            wait_until(lambda: self.peer_state(addr) == state, timeout=timeout,
                       what=f"{self.name}: {addr} to reach {state}")  # fmt: skip

    def best_path(self, prefix: str, family: str | None = None) -> dict[str, Any] | None:
        """The selected (valid *and* best) BGP path for ``prefix``, or None.

        Note: a path can show up ``valid`` before best-path selection has run on it; waiting on
        ``bestpath`` avoids that race.
        """
        fam = family or ("ipv6" if ":" in prefix else "ipv4")
        paths = self.routes(fam).get("routes", {}).get(prefix, [])
        return next((p for p in paths if p.get("valid") and p.get("bestpath")), None)

    def has_route(self, prefix: str, family: str | None = None) -> bool:
        """Whether the BGP table has a selected (valid, best) path for ``prefix``."""
        return self.best_path(prefix, family) is not None

    def kernel_routes(self, family: int = 4, proto: str | None = "bgp") -> list[dict[str, Any]]:
        """``ip -j -<family> route show proto bgp`` inside the namespace (what zebra installed)."""
        return self.ns.routes(family=family, proto=proto)

    # diagnostics -------------------------------------------------------------------------------

    def _tails(self, daemon: str | None = None, lines: int = 40) -> str:
        parts = []
        for d in [daemon] if daemon else self.daemons:
            for suffix in ("out", "log"):
                try:
                    path = self._path(f"{d}.{suffix}")
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                except (OSError, FrrError):
                    continue
                if text:
                    parts.append(f"--- {self.name} {d}.{suffix} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    def diagnostics(
        self, commands: Iterable[str] = ("show bgp summary", "show ip route", "show ipv6 route")
    ) -> str:
        """Human-readable state dump (vtysh output + log tails) for failure reports."""
        parts = [repr(self)]
        if self.running:
            for c in commands:
                try:
                    parts.append(f"--- {self.name}: {c} ---\n{self.vtysh(c)}")
                except Exception as exc:
                    parts.append(f"--- {self.name}: {c} failed: {exc}")
        parts.append(self._tails())
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Lab: a set of namespaces/routers cleaned up together
# --------------------------------------------------------------------------------------------------


class Lab:
    """Factory for namespaces, links and FRR routers that are all torn down by :meth:`cleanup`."""

    def __init__(self) -> None:
        self.namespaces: list[Netns] = []
        self.routers: list[Frr] = []

    def netns(self, label: str = "", **kw: Any) -> Netns:
        """Create and return a new namespace."""
        ns = Netns(label, **kw)
        self.namespaces.append(ns)
        return ns.create()

    def veth(self, a: Netns, b: Netns, addr_a: Addrs, addr_b: Addrs, **kw: Any) -> tuple[str, str]:
        """See :func:`veth`."""
        return veth(a, b, addr_a, addr_b, **kw)

    def frr(self, ns: Netns, config: str, name: str | None = None, *, start: bool = True, **kw: Any) -> Frr:
        """Create (and by default start) an :class:`Frr` in ``ns``."""
        router = Frr(ns, config, name or ns.label or ns.name, **kw)
        self.routers.append(router)
        if start:
            router.start()
        return router

    def cleanup(self) -> None:
        """Stop all routers, end processes, delete all namespaces; raise once at the end on failures."""
        errors = []
        for router in reversed(self.routers):
            try:
                router.stop()
            except Exception as exc:
                errors.append(f"router {router.name}: {exc}")
        self.routers.clear()
        for ns in reversed(self.namespaces):
            try:
                ns.delete()
            except Exception as exc:
                errors.append(f"namespace {ns.name}: {exc}")
        self.namespaces.clear()
        if errors:
            raise RuntimeError("netlab cleanup: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
