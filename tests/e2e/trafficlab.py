"""The end-to-end traffic lab: a client sending HTTP requests through an FRR top-of-rack router to three
Kubernetes nodes, each running a bgpsvc node speaker and web servers for the Services it serves.

::

                                   list/watch API server 203.0.113.254:6443 (socket in the tor namespace)
    client 203.0.113.2/28 ---- 203.0.113.1/28  tor  192.0.2.1/28  ---- 192.0.2.11/28 node-1
                                   FRR AS 64500     192.0.2.17/28 ---- 192.0.2.27/28 node-2
                                   multipath 8      192.0.2.33/28 ---- 192.0.2.43/28 node-3  (bgpsvc AS 64512)

* Only documentation ranges carry traffic. Service cluster IPs live in 198.51.100.0/24, which every
  node advertises (the Cluster-service path: ECMP over all nodes); ``LOCAL_IP`` belongs to an
  ``externalTrafficPolicy: Local`` Service, advertised as a /32 only by nodes with a ready endpoint.
* The router hashes flows on L4 (``fib_multipath_hash_policy=1``), so each new client connection (new
  source port) picks its node on its own.
* A node "serves" a service IP when the IP is on its ``lo`` and an :mod:`httpnode` process bound to it
  answers with the node's name: this plays kube-proxy's role. Every node serves ``CLUSTER_IP``; the
  Local service's IP follows its endpoints (added before the endpoint appears in the API, removed after
  the router has stopped sending it traffic, as a pod's lifecycle would).
* RFC 8326 on the router needs no policy: FRR 8.4 itself sets LOCAL_PREF 0 on a path received from
  an eBGP peer with the GRACEFUL_SHUTDOWN community (``bgp_update()`` in ``bgpd/bgp_route.c``: "If we
  receive the graceful-shutdown community from an eBGP peer we must lower local-preference"), so a
  draining node drops out of the ECMP set while its session is still up. The drain test checks this
  (community and LOCAL_PREF 0 on the draining node's path) rather than configuring a route-map.
* Each speaker can be restarted (SIGUSR1 or SIGKILL, then ``start()`` again): the router is a graceful
  restart helper (``bgp graceful-restart``) and keeps forwarding on the stale paths meanwhile.
* ``second_site``: those nodes form another cluster with its own API server (``API_B_ADDR``), so two
  groups of speakers ("sites") can advertise the same LoadBalancer IP. ``kube_extra[i]`` adds settings
  to node ``i``'s ``kubernetes:`` section (``kube_extra[0]``: every node's).
* ``TrafficLab(bfd=True)``: BFD between the router (``neighbor X bfd profile fast``, bfdd) and every
  speaker, 100 ms x 3; ``hold_time=`` sets the speakers' BGP hold time (the router proposes 180 s, so
  ours is the one negotiated). ``fail_node(i, how)`` is a hard failure of a node: its link goes silent
  (``"link"``, tc, no carrier change) or its processes are frozen with SIGSTOP (``"freeze"``);
  ``recover_node`` undoes it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.netlab import Frr, Lab, Netns, drop_traffic, wait_until
from tests.integration.speaker import BgpsvcProcess
from tests.integration.test_frr_speaker import frr_config, router_v4, speaker_v4
from tests.integration.test_k8s_nodes import NsApiServer, node_obj

HERE = Path(__file__).resolve().parent
N = 3
ROUTER_AS, NODE_AS = 64500, 64512
CLIENT_ADDR, TOR_CLIENT_ADDR = "203.0.113.2", "203.0.113.1"
API_ADDR, API_PORT = "203.0.113.254", 6443
API_B_ADDR = "203.0.113.253"  # the second site's API server
RANGE = "198.51.100.0/24"
LOCAL_IP = "198.51.100.10"  # Service shop/local: externalTrafficPolicy Local
CLUSTER_IP = "198.51.100.20"  # Service shop/cluster: externalTrafficPolicy Cluster
HTTP_PORT = 80
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
BFD_MS, BFD_MULT = 100, 3  # the router's and the speakers' BFD: 100 ms x 3, a 300 ms detection time
FRR_BFD = f"""bfd
 profile fast
  receive-interval {BFD_MS}
  transmit-interval {BFD_MS}
  detect-multiplier {BFD_MULT}
 !
!
"""


def node_name(i: int) -> str:
    return f"node-{i}"


def service(name: str, ip: str, local: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "externalTrafficPolicy": "Local" if local else "Cluster",
        },
    }


def endpoint_slice(
    service_name: str, nodes: Iterable[int] | Mapping[int, int], ready: bool = True
) -> dict[str, Any]:
    """The Service's EndpointSlice: one endpoint on each of ``nodes``, or ``nodes[n]`` endpoints on node
    ``n`` (a mapping), all ``ready`` or all not."""
    counts = nodes if isinstance(nodes, Mapping) else dict.fromkeys(nodes, 1)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "shop",
            "name": f"{service_name}-abc12",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.{n}.{5 + k}"], "nodeName": node_name(n), "conditions": {"ready": ready}}
            for n in sorted(counts)
            for k in range(counts[n])
        ],
    }


class SlowListApiServer(NsApiServer):
    """The lab API server, optionally answering Service and EndpointSlice *lists* after ``list_delay``
    seconds: a large cluster's API server, where listing every EndpointSlice takes far longer than
    getting one Node by name. Watches and the Node list are not delayed."""

    def __init__(self, netns: str, host: str, port: int, list_delay: float = 0.0) -> None:
        super().__init__(netns, host, port)
        self.list_delay = list_delay

    def _list(self, res: Any, ns: str | None, q: Mapping[str, str]) -> dict[str, Any]:
        if self.list_delay and res.plural in ("services", "endpointslices"):
            time.sleep(self.list_delay)
        return super()._list(res, ns, q)


# --------------------------------------------------------------------------------------------------
# client traffic
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Req:
    """One request as the client saw it."""

    t: float  # CLOCK_MONOTONIC at the start
    target: str
    ok: bool
    what: str  # the answering node, or the failure reason
    ms: float


def summarize(label: str, reqs: list[Req]) -> str:
    """``label: 300 sent, 0 failed, slowest 3 ms; node-1 101, node-2 98, node-3 101`` (plus failure
    reasons). The slowest request shows a stall that did not fail, e.g. a SYN answered by an ICMP
    error and retransmitted a second later."""
    split = Counter(r.what for r in reqs if r.ok)
    fails = Counter(r.what for r in reqs if not r.ok)
    text = f"{label}: {len(reqs)} sent, {sum(fails.values())} failed"
    if reqs:
        text += f", slowest {max(r.ms for r in reqs):.0f} ms"
    text += "; " + (", ".join(f"{n} {split[n]}" for n in sorted(split)) or "no answers")
    if fails:
        text += "; failures: " + ", ".join(f"{k} x{v}" for k, v in sorted(fails.items()))
    return text


class Traffic:
    """The :mod:`loadgen` client process in the client namespace, and its request log."""

    def __init__(
        self,
        ns: Netns,
        path: Path,
        targets: Iterable[str],
        *,
        interval: float = 0.005,
        timeout: float = 1.5,
        count: int = 0,
        duration: float = 240,
    ) -> None:
        self.ns = ns
        self.path = path
        self.argv = [
            sys.executable, str(HERE / "loadgen.py"),
            "--out", str(path),
            "--targets", ",".join(targets),
            "--port", str(HTTP_PORT),
            "--interval", str(interval),
            "--timeout", str(timeout),
            "--count", str(count),
            "--duration", str(duration),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Traffic:
        self.proc = self.ns.popen(self.argv, stdin=subprocess.DEVNULL)
        started = lambda: self.path.exists() and self.path.read_text().startswith("# started")  # noqa: E731
        wait_until(started, timeout=20, what="load generator started")
        return self

    def wait(self, timeout: float) -> list[Req]:
        """Wait for a ``count``-bounded run to finish; its requests."""
        assert self.proc is not None
        self.proc.wait(timeout=timeout)
        return self.records()

    def stop(self) -> list[Req]:
        """End the client (SIGTERM by PID; it finishes the request in hand) and return every request."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.records()

    def records(self) -> list[Req]:
        out = []
        with contextlib.suppress(FileNotFoundError), self.path.open() as f:
            for line in f:
                parts = line.split()
                if len(parts) != 5 or line.startswith("#"):
                    continue  # comments, or a line still being written
                out.append(Req(float(parts[0]), parts[1], parts[2] == "ok", parts[3], float(parts[4])))
        return out


def between(reqs: list[Req], t0: float, t1: float = float("inf"), target: str | None = None) -> list[Req]:
    return [r for r in reqs if t0 <= r.t < t1 and (target is None or r.target == target)]


def converged_at(reqs: list[Req], target: str, nodes: set[str], since: float) -> float | None:
    """Start time of the first request to ``target`` after ``since`` from which on every request was
    answered by ``nodes`` only (None if the tail never settles, or is empty)."""
    tail = [r for r in reqs if r.target == target and r.t >= since]
    at = None
    for r in tail:
        if r.ok and r.what in nodes:
            if at is None:
                at = r.t
        else:
            at = None
    return at


@dataclass(frozen=True, slots=True)
class FibChange:
    """One change to the router's kernel route for a service prefix."""

    t: float  # CLOCK_MONOTONIC (converted from ``ip -ts``'s wall-clock stamp)
    text: str

    def __str__(self) -> str:
        return self.text


class FibWatch:
    """``ip -ts -4 monitor route`` in the router namespace: every kernel route change, as it happens
    (polling could miss a withdrawal that is undone within milliseconds)."""

    def __init__(self, ns: Netns, path: Path, match: tuple[str, ...] = ("198.51.100.",)) -> None:
        self.ns = ns
        self.path = path
        self.match = match  # address prefixes (text) of the routes recorded
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FibWatch:
        with self.path.open("wb") as out:
            self.proc = self.ns.popen(
                ["ip", "-ts", "-4", "monitor", "route"], stdout=out, stdin=subprocess.DEVNULL
            )
        time.sleep(0.2)  # let it subscribe before the caller changes anything
        return self

    def stop(self) -> list[FibChange]:
        """Stop (by PID) and return the changes to routes in the service range."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        wall_to_mono = time.monotonic() - time.time()
        entries: list[list[str]] = []
        for line in self.path.read_text(errors="replace").splitlines():
            if line.startswith("["):
                entries.append([line.strip()])
            elif entries:  # a multipath route's "nexthop via ..." lines
                entries[-1].append(line.strip())
        changes = []
        for lines in entries:
            stamp, _, rest = lines[0][1:].partition("] ")
            if any(m in rest for m in self.match):
                t = datetime.fromisoformat(stamp).timestamp() + wall_to_mono
                changes.append(FibChange(t, " | ".join([rest, *lines[1:]])))
        return changes


def ecmp_resets(
    reqs: list[Req], changes: list[FibChange], slack: float = 0.02
) -> tuple[list[Req], list[Req]]:
    """Split the failed requests into (ECMP rehash resets, every other failure).

    The router hashes flows statelessly: when a service route's next-hop set changes, a connection
    whose SYN went out before the change and whose next segment after it can land on another node,
    which answers with a RST. Such a failure is a connection reset whose lifetime contains a kernel
    route change (``slack``: ``ip monitor`` stamps a change a little after the kernel made it, never
    before). Anything else - a timeout, an unreachable, a refused connection, a reset with no route
    change in flight - is a real loss.
    """
    resets, other = [], []
    for r in reqs:
        if r.ok:
            continue
        end = r.t + r.ms / 1000
        if r.what == "ECONNRESET" and any(r.t <= c.t <= end + slack for c in changes):
            resets.append(r)
        else:
            other.append(r)
    return resets, other


# --------------------------------------------------------------------------------------------------
# the lab
# --------------------------------------------------------------------------------------------------


class TrafficLab:
    """Client, FRR top-of-rack, three bgpsvc nodes with web servers, and the list/watch API server."""

    def __init__(
        self,
        lab: Lab,
        frr_factory: Callable[..., Frr],
        tmp: Path,
        *,
        drain_time: float = 3,
        list_delay: float = 0.0,
        second_site: Iterable[int] = (),
        bfd: bool = False,
        hold_time: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.drain_time = drain_time
        self.second_site = frozenset(second_site)
        self.kube_extra: dict[int, dict[str, Any]] = {}
        self.bfd = bfd
        self.hold_time = hold_time
        self.tor = lab.netns("tor")
        self.tor.sysctl(
            {
                "net.ipv4.fib_multipath_hash_policy": 1,  # L4: one flow, one path; new flows spread
                "net.ipv4.conf.all.rp_filter": 0,
                "net.ipv4.conf.default.rp_filter": 0,
            }
        )
        self.client = lab.netns("client", forwarding=False)
        lab.veth(self.client, self.tor, f"{CLIENT_ADDR}/28", f"{TOR_CLIENT_ADDR}/28")
        self.client.ip("route", "add", "default", "via", TOR_CLIENT_ADDR)
        self.nodes: list[Netns] = []
        self.node_links: list[str] = []  # each node's end of its link to the router
        for i in range(1, N + 1):
            ns = lab.netns(f"node{i}")
            _, if_node = lab.veth(self.tor, ns, f"{router_v4(i)}/28", f"{speaker_v4(i)}/28")
            self.node_links.append(if_node)
            # The client and the API server are behind the router; nothing else is routed (no default),
            # so a packet for a service IP the node does not serve gets an ICMP error at once.
            ns.ip("route", "add", "203.0.113.0/24", "via", router_v4(i))
            self.nodes.append(ns)
        self.tor.ip("addr", "add", f"{API_ADDR}/32", "dev", "lo")
        self.api = SlowListApiServer(self.tor.name, API_ADDR, API_PORT, list_delay).start()
        self.api_b: SlowListApiServer | None = None
        if self.second_site:
            self.tor.ip("addr", "add", f"{API_B_ADDR}/32", "dev", "lo")
            self.api_b = SlowListApiServer(self.tor.name, API_B_ADDR, API_PORT).start()
        for i in range(1, N + 1):
            self.site_api(i).apply(node_obj(i))
        self.kubeconfig = self.api.write_kubeconfig(tmp / "kubeconfig")
        self.kubeconfig_b = self.api_b.write_kubeconfig(tmp / "kubeconfig-b") if self.api_b else None
        neighbors = [(speaker_v4(i), NODE_AS) for i in range(1, N + 1)]
        if bfd:
            conf = FRR_BFD + frr_config(ROUTER_AS, neighbors, " neighbor {addr} bfd profile fast")
            self.frr = frr_factory(self.tor, conf, "tor", daemons=("zebra", "bgpd", "bfdd"))
        else:
            self.frr = frr_factory(self.tor, frr_config(ROUTER_AS, neighbors), "tor")
        self.speakers: list[BgpsvcProcess] = []
        self.servers: dict[tuple[int, str], subprocess.Popen[bytes]] = {}
        self._traffic: list[Traffic] = []

    # -- Kubernetes side ----------------------------------------------------------------------------

    def site_api(self, i: int) -> SlowListApiServer:
        """The API server of node ``i``'s cluster."""
        if i in self.second_site:
            assert self.api_b is not None
            return self.api_b
        return self.api

    def apply_services(self, local_endpoints: Iterable[int]) -> None:
        self.api.apply(service("local", LOCAL_IP, local=True))
        self.api.apply(service("cluster", CLUSTER_IP, local=False))
        self.api.apply(endpoint_slice("cluster", [1, 2]))
        self.set_local_endpoints(local_endpoints)

    def set_local_endpoints(self, nodes: Iterable[int]) -> None:
        self.api.apply(endpoint_slice("local", nodes))

    def label_node(self, i: int, exclude: bool) -> None:
        self.api.apply(node_obj(i, {EXCLUDE_LABEL: ""} if exclude else None))

    # -- the nodes' data plane (kube-proxy's part) --------------------------------------------------

    def serve(self, i: int, ip: str) -> None:
        """Node ``i`` starts accepting traffic for ``ip``: address on lo, web server bound to it."""
        ns = self.nodes[i - 1]
        ns.add_address("lo", f"{ip}/32")
        ready = self.tmp / f"web-{i}-{ip}.ready"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, str(HERE / "httpnode.py"), node_name(i), ip, str(HTTP_PORT), str(ready)]
        proc = ns.popen(argv, stdin=subprocess.DEVNULL)
        self.servers[(i, ip)] = proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"web server {node_name(i)} {ip} exited with {proc.returncode}")
            return ready.exists()

        wait_until(up, timeout=20, interval=0.05, what=f"web server on {node_name(i)} for {ip}")

    def unserve(self, i: int, ip: str) -> None:
        """Node ``i`` stops serving ``ip`` (server ended by PID, address removed)."""
        proc = self.servers.pop((i, ip))
        proc.terminate()
        proc.wait(timeout=10)
        self.nodes[i - 1].ip("addr", "del", f"{ip}/32", "dev", "lo")

    # -- speakers -----------------------------------------------------------------------------------

    def speaker_config(self, i: int) -> dict[str, Any]:
        config = self._speaker_config(i)
        peer = config["peers"][0]
        if self.bfd:
            peer["bfd"] = {"min_rx_ms": BFD_MS, "min_tx_ms": BFD_MS, "multiplier": BFD_MULT}
        if self.hold_time is not None:
            peer["hold_time"] = self.hold_time
        return config

    def _speaker_config(self, i: int) -> dict[str, Any]:
        return {
            "local_as": NODE_AS,
            "listen": False,
            "drain_time": self.drain_time,
            "graceful_restart": {"restart_time": 120},
            "log_level": "debug",
            "peers": [
                {
                    "address": router_v4(i),
                    "peer_as": ROUTER_AS,
                    "connect_retry_time": 1,
                    "families": ["ipv4-unicast"],
                }
            ],
            "kubernetes": {
                "node_name": node_name(i),
                "kubeconfig": str(self.kubeconfig_b if i in self.second_site else self.kubeconfig),
                "service_cluster_ips": [RANGE],
                **self.kube_extra.get(0, {}),
                **self.kube_extra.get(i, {}),
            },
        }

    def start_speakers(self) -> None:
        """Start the three speakers (in parallel: each takes a second or two to import and start)."""
        self.speakers = [
            BgpsvcProcess(ns, self.speaker_config(i), node_name(i)) for i, ns in enumerate(self.nodes, 1)
        ]
        with ThreadPoolExecutor(len(self.speakers)) as pool:
            list(pool.map(BgpsvcProcess.start, self.speakers))
        for i in range(1, N + 1):
            self.frr.wait_state(speaker_v4(i), timeout=30)

    def speaker(self, i: int) -> BgpsvcProcess:
        return self.speakers[i - 1]

    # -- hard failures ------------------------------------------------------------------------------

    def _node_procs(self, i: int) -> list[subprocess.Popen[bytes]]:
        procs = [p for (n, _), p in self.servers.items() if n == i]
        sp = self.speaker(i).proc
        return [*procs, sp] if sp is not None else procs

    def fail_node(self, i: int, how: str) -> None:
        """Node ``i`` fails hard: its link drops everything (``"link"``) or its processes (speaker, web
        servers) stop dead with SIGSTOP (``"freeze"``; the kernel still answers, nothing else does)."""
        if how == "link":
            drop_traffic(self.nodes[i - 1], self.node_links[i - 1], True)
        elif how == "freeze":
            for proc in self._node_procs(i):
                proc.send_signal(signal.SIGSTOP)
        else:
            raise ValueError(f"unknown failure {how!r} (link or freeze)")

    def recover_node(self, i: int, how: str) -> None:
        """Undo ``fail_node``."""
        if how == "link":
            drop_traffic(self.nodes[i - 1], self.node_links[i - 1], False)
        else:
            for proc in self._node_procs(i):
                proc.send_signal(signal.SIGCONT)

    # -- the router's view --------------------------------------------------------------------------

    def via(self, prefix: str) -> set[int]:
        """Nodes the router's kernel forwards ``prefix`` to (what zebra installed)."""
        want = ipaddress.ip_network(prefix)
        r = next((r for r in self.frr.kernel_routes(4) if ipaddress.ip_network(r["dst"]) == want), None)
        if r is None:
            return set()
        gws = {nh["gateway"] for nh in r["nexthops"]} if "nexthops" in r else {r["gateway"]}
        return {i for i in range(1, N + 1) if speaker_v4(i) in gws}

    def converge(self, prefix: str, nodes: set[int], timeout: float = 20) -> float:
        """Wait until the router forwards ``prefix`` to exactly ``nodes``; seconds waited."""
        t0 = time.monotonic()
        try:
            wait_until(
                lambda: self.via(prefix) == nodes,
                timeout=timeout,
                interval=0.05,
                what=f"{prefix} via nodes {sorted(nodes)}",
            )
        except TimeoutError as exc:
            self.dump()
            raise TimeoutError(f"{exc} (now via {sorted(self.via(prefix))})") from exc
        return time.monotonic() - t0

    def weights(self, prefix: str) -> dict[int, int]:
        """Node -> the kernel's next-hop weight for ``prefix`` (1 each for a plain ECMP route)."""
        want = ipaddress.ip_network(prefix)
        r = next((r for r in self.frr.kernel_routes(4) if ipaddress.ip_network(r["dst"]) == want), None)
        if r is None:
            return {}
        hops = r.get("nexthops") or [r]
        by_gw = {nh.get("gateway"): int(nh.get("weight", 1)) for nh in hops}
        return {i: by_gw[speaker_v4(i)] for i in range(1, N + 1) if speaker_v4(i) in by_gw}

    def updates_received(self, i: int) -> int:
        """UPDATE messages the router has received from node ``i`` (all sessions)."""
        return int(self.neighbor(i).get("messageStats", {}).get("updatesRecv", 0))

    def paths(self, prefix: str) -> list[dict[str, Any]]:
        return list(self.frr.json(f"show bgp ipv4 unicast {prefix}").get("paths") or [])

    def path_from(self, prefix: str, i: int) -> dict[str, Any] | None:
        return next((p for p in self.paths(prefix) if p.get("peer", {}).get("peerId") == speaker_v4(i)), None)

    def neighbor(self, i: int) -> dict[str, Any]:
        return self.frr.neighbor(speaker_v4(i))

    def restart_complete(self, i: int, established_before: int) -> bool:
        """FRR has a new session with node ``i``, got its End-of-RIB, and holds no stale path of it."""
        nb = self.neighbor(i)
        if nb.get("bgpState") != "Established" or nb.get("connectionsEstablished", 0) <= established_before:
            return False
        gr = nb.get("gracefulRestartInfo", {})
        if not gr.get("endOfRibRecv", {}).get("ipv4Unicast"):
            return False
        routes = self.frr.routes("ipv4").get("routes", {})
        return not any(
            p.get("stale") and p.get("peerId") == speaker_v4(i) for ps in routes.values() for p in ps
        )

    def watch_fib(self, name: str, match: tuple[str, ...] = ("198.51.100.",)) -> FibWatch:
        """Start recording every change to the router's kernel routes for the service range (or for
        routes whose text contains one of ``match``)."""
        return FibWatch(self.tor, self.tmp / f"fib-{name}.log", match).start()

    def dump(self) -> None:
        for sp in self.speakers:
            with contextlib.suppress(Exception):
                print(f"--- {sp.name} status: {sp.status()}")
            print(f"--- {sp.name} log:\n{sp.log_tail(30)}")
        with contextlib.suppress(Exception):
            print(self.frr.vtysh("show bgp ipv4 unicast"))

    # -- traffic ------------------------------------------------------------------------------------

    def traffic(self, name: str, targets: Iterable[str], **kw: Any) -> Traffic:
        t = Traffic(self.client, self.tmp / f"traffic-{name}.log", targets, **kw)
        self._traffic.append(t)
        return t.start()

    def burst(self, name: str, target: str, count: int) -> list[Req]:
        """``count`` requests to ``target`` (one after the other) and their outcome."""
        return self.traffic(name, [target], count=count, interval=0.001).wait(timeout=120)

    def stop(self) -> None:
        """Teardown: end the client, the speakers (no drain), the API server and the web servers."""
        for t in self._traffic:
            t.stop()
        for proc in [*(sp.proc for sp in self.speakers if sp.proc is not None), *self.servers.values()]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen node (fail_node "freeze") must hear SIGTERM
        running = [sp.proc for sp in self.speakers if sp.proc is not None and sp.proc.poll() is None]
        for proc in running:
            proc.terminate()
        time.sleep(0.1)
        for proc in running:
            if proc.poll() is None:
                proc.terminate()  # the second SIGTERM skips the drain
        for proc in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.api.stop()
        if self.api_b is not None:
            self.api_b.stop()
        for proc in self.servers.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        if not os.environ.get("NETLAB_KEEP"):
            for sp in self.speakers:
                shutil.rmtree(sp.dir, ignore_errors=True)
