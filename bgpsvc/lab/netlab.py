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

from typing import Any

from .frr import Frr, frr_available, frr_version, require_root_and_frr
from .namespaces import (
    Netns,
    Terminated,
    cleanup_all,
    drop_traffic,
    link_set,
    live_namespaces,
    sweep_stale_namespaces,
    veth,
)
from .procs import (
    ALLOWED_NETWORKS,
    FRR_BIN_DIR,
    IP,
    TC,
    VTYSH,
    AbortWait,
    Addrs,
    CommandError,
    DaemonDied,
    FrrError,
    check_address,
    wait_until,
)

__all__ = [
    "ALLOWED_NETWORKS",
    "FRR_BIN_DIR",
    "IP",
    "TC",
    "VTYSH",
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
