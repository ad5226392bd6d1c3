"""Lab network namespaces and links (veth, link state, traffic drops), and their cleanup backstops."""

from __future__ import annotations

import atexit
import ipaddress
import json as jsonlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .procs import (
    _NS_RE,
    DEFAULT_CMD_TIMEOUT,
    IFNAMSIZ,
    IP,
    NS_PREFIX,
    TC,
    Addrs,
    CommandError,
    _as_argv,
    _counter,
    _end_process,
    _lock,
    _pid_alive,
    _run,
    _split_addrs,
    check_address,
)

if TYPE_CHECKING:
    from .frr import Frr

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
