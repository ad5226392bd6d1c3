"""``bgpsvc demo``: the product working end to end on one machine, no root needed.

A simulated cluster (``bgpsvc/app/data/demo-cluster.yaml``) is served by the in-repo list/watch API
server. One bgpsvc node speaker per node reads it through the official Kubernetes client and peers
over BGP with an embedded route collector playing the top-of-rack router. The demo prints the
router's view (each prefix and the nodes it is reachable through), then walks through a few cluster
changes and keeps printing the view whenever it changes. Everything listens on 127.0.0.x.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..aio import PeerConfig, Speaker, SpeakerConfig
from ..lab.apiserver import ApiServer
from ..wire import IPV4_UNICAST, IPV6_UNICAST
from .config import parse_config
from .democrd import CRDS, CrdScenario
from .node import NodeSpeaker

ROUTER = "127.0.0.1"
NODES = {"node-1": "127.0.0.11", "node-2": "127.0.0.12", "node-3": "127.0.0.13"}
#: The demo cluster ships inside the package, so ``bgpsvc demo`` works from an installed wheel.
MANIFESTS = Path(__file__).resolve().parent / "data" / "demo-cluster.yaml"
View = dict[str, list[str]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ROUTER, 0))
        return int(s.getsockname()[1])


def router_view(collector: Speaker) -> View:
    """Prefix -> the nodes the router has it from."""
    by_addr = {addr: name for name, addr in NODES.items()}
    view: dict[str, set[str]] = {}
    for driver in collector.drivers:
        peer, address = driver.peer, driver.config.address
        if peer.rib_in is None or not peer.established:
            continue
        for table in peer.rib_in.routes.values():
            for prefix in table:
                view.setdefault(str(prefix), set()).add(by_addr.get(address, address))
    key = lambda p: (ipaddress.ip_network(p).version, ipaddress.ip_network(p))  # noqa: E731
    return {p: sorted(view[p]) for p in sorted(view, key=key)}


def render(view: View, title: str) -> str:
    """A table of the router's view."""
    lines = [f"\n== {time.strftime('%H:%M:%S')}  {title}", f"   {'prefix':<26} reachable via"]
    lines += [
        f"   {p:<26} {', '.join(nodes)}{'   (ECMP)' if len(nodes) > 1 else ''}" for p, nodes in view.items()
    ]
    if not view:
        lines.append("   (no routes)")
    return "\n".join(lines)


class Demo:
    """The simulated cluster, its node speakers and the collector."""

    def __init__(self, manifests: Path, out: Callable[[str], None] = print) -> None:
        self.manifests = manifests
        self.out = out
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bgpsvc-demo-"))
        self.api = ApiServer(bookmark_interval=2.0)
        self.collector = Speaker(
            SpeakerConfig(
                64500,
                "192.0.2.1",
                listen=((ROUTER, self.port),),
                peers=tuple(
                    PeerConfig(
                        addr,
                        64512,
                        port=self.port,
                        passive=True,
                        store_routes=True,
                        name=name,
                        families=(IPV4_UNICAST, IPV6_UNICAST),
                    )
                    for name, addr in NODES.items()
                ),
            )
        )
        self.nodes: list[NodeSpeaker] = []
        self.nodes_ns: list[tuple[str, Any, str, str]] = []
        self.last: View | None = None

    async def start(self) -> None:
        """API server, collector, then one node speaker per node."""
        self.api.start()
        self.api.load_manifests(CRDS)
        self.api.load_yaml(self.manifests)
        kubeconfig = self.api.write_kubeconfig(self.dir / "kubeconfig")
        await self.collector.start()
        for name, addr in NODES.items():
            cfg = parse_config(
                {
                    "local_as": 64512,
                    "listen": False,
                    "control": False,
                    "drain_time": 0,
                    "peers": [
                        {
                            "address": ROUTER,
                            "peer_as": 64500,
                            "port": self.port,
                            "local_address": addr,
                            "connect_retry_time": 0.5,
                        }
                    ],
                    "kubernetes": {
                        "node_name": name,
                        "kubeconfig": str(kubeconfig),
                        "service_cluster_ips": ["198.51.100.0/24", "2001:db8:96::/112"],
                        "service_loadbalancer_ips": ["203.0.113.0/24"],
                        "status_interval": 1,
                    },
                },
                env={},
            )
            node = NodeSpeaker(cfg, {})
            await node.start()
            self.nodes.append(node)
        await self.collector.wait_established(30)

    def view(self) -> View:
        """The router's view: the collector's Adj-RIB-In."""
        return router_view(self.collector)

    async def settle(self, title: str, timeout: float = 10.0) -> View:
        """Wait until the router's view stops changing (bounded), print it if it changed."""
        deadline = time.monotonic() + timeout
        stable_since = time.monotonic()
        view = self.view()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = self.view()
            if now != view:
                view, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since > 0.5 and view != self.last:
                break
        if view != self.last:
            self.out(render(view, title))
            self.last = view
        return view

    def step(self, text: str) -> None:
        """Narrate a change."""
        self.out(f"\n-> {text}")

    async def scenario(self, pause: float = 1.0) -> None:
        """A few changes a cluster goes through."""
        docs = {
            (d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(self.manifests.read_text()) if d
        }
        web_v4 = docs[("EndpointSlice", "web-v4-x81k2")]
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                "web's endpoint on node-2 is rescheduled to node-3 (and becomes ready there)",
                lambda: self.api.apply(
                    {
                        **web_v4,
                        "endpoints": [
                            {
                                "addresses": ["10.244.1.10"],
                                "nodeName": "node-1",
                                "conditions": {"ready": True},
                            },
                            {
                                "addresses": ["10.244.3.11"],
                                "nodeName": "node-3",
                                "conditions": {"ready": True},
                            },
                        ],
                    }
                ),
            ),
            (
                "node-1 is labelled node.kubernetes.io/exclude-from-external-load-balancers (drain)",
                lambda: self.api.apply(_labelled(docs[("Node", "node-1")], True)),
            ),
            (
                "the label is removed again",
                lambda: self.api.apply(_labelled(docs[("Node", "node-1")], False)),
            ),
            ("Service shop/web is deleted", lambda: self.api.delete("Service", "shop", "web")),
        ]
        for text, action in steps:
            await asyncio.sleep(pause)
            self.step(text)
            action()
            await self.settle(text)

    async def stop(self) -> None:
        """Everything down, gracefully."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.stop()
        await self.collector.stop(0)
        self.api.stop()


class FrrDemo(Demo):
    """The same cluster with FRR as the router in network namespaces; the view is its kernel's ECMP routes.

    Needs root and FRR. Namespace ``router`` runs FRR (multipath, kernel install) and the API server
    (203.0.113.254:6443); namespaces ``node-1..3`` each run a ``bgpsvc run`` process. Documentation
    addresses only; everything is removed on exit.
    """

    def __init__(self, manifests: Path, out: Callable[[str], None] = print) -> None:
        super().__init__(manifests, out)
        from ..lab import netlab  # noqa: PLC0415 - only this mode needs namespaces

        self.netlab = netlab
        self.lab = netlab.Lab()
        self.router_ns = self.lab.netns("router")
        self.frr: Any = None
        self.procs: list[Any] = []
        self.gateway_names: dict[str, str] = {}

    async def start(self) -> None:
        """Namespaces, veths, FRR, the API server in the router namespace, then the node speakers."""
        from ..lab.netns import in_netns  # noqa: PLC0415

        nl = self.netlab
        names = list(NODES)
        for i, name in enumerate(names, 1):
            ns = self.lab.netns(f"node{i}")
            router_ip, node_ip = f"192.0.2.{16 * (i - 1) + 1}", f"192.0.2.{16 * (i - 1) + 11}"
            self.lab.veth(self.router_ns, ns, [f"{router_ip}/28"], [f"{node_ip}/28"])
            ns.ip("route", "add", "203.0.113.254/32", "via", router_ip)
            self.gateway_names[node_ip] = name
            self.nodes_ns.append((name, ns, router_ip, node_ip))
        self.router_ns.ip("addr", "add", "203.0.113.254/32", "dev", "lo")
        api = self.api

        def serve() -> None:
            api.host, api._port = "203.0.113.254", 6443
            api.start()

        in_netns(self.router_ns.name, serve)
        self.api.load_yaml(self.manifests)
        kubeconfig = self.api.write_kubeconfig(self.dir / "kubeconfig")
        neighbors = "\n".join(
            f" neighbor {node_ip} remote-as 64512\n neighbor {node_ip} timers connect 1"
            for _, _, _, node_ip in self.nodes_ns
        )
        config = (
            "router bgp 64500\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n"
            f"{neighbors}\n address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\nexit\n"
        )
        self.frr = nl.Frr(self.router_ns, config, "tor")
        self.frr.start()
        for name, ns, router_ip, _ in self.nodes_ns:
            cfg = {
                "local_as": 64512,
                "listen": False,
                "control": False,
                "drain_time": 0,
                "log_level": "warning",
                "peers": [
                    {
                        "address": router_ip,
                        "peer_as": 64500,
                        "connect_retry_time": 0.5,
                        "families": ["ipv4-unicast"],
                    }
                ],
                "kubernetes": {
                    "node_name": name,
                    "kubeconfig": str(kubeconfig),
                    "service_cluster_ips": ["198.51.100.0/24"],
                    "service_loadbalancer_ips": ["203.0.113.0/24"],
                },
            }
            path = self.dir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            self.procs.append(
                ns.popen(
                    [sys.executable, "-m", "bgpsvc", "run", "-c", str(path)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for _, _, _, node_ip in self.nodes_ns:
            await asyncio.to_thread(self.frr.wait_state, node_ip, "Established", 30)

    def view(self) -> View:
        """FRR's kernel routing table in the router namespace (ECMP next hops per prefix)."""
        out: View = {}
        for r in self.frr.kernel_routes(4):
            hops = [nh["gateway"] for nh in r.get("nexthops", [])] or [r.get("gateway", "")]
            dst = str(ipaddress.ip_network(r["dst"]))
            out[dst] = sorted(self.gateway_names.get(h, h) for h in hops)
        return {p: out[p] for p in sorted(out, key=ipaddress.ip_network)}

    async def stop(self) -> None:
        """Speakers by PID, FRR, the API server, the namespaces."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        if self.frr is not None:
            with contextlib.suppress(Exception):
                self.frr.stop()
        self.api.stop()
        self.lab.cleanup()


def _labelled(node: dict[str, Any], excluded: bool) -> dict[str, Any]:
    labels = dict(node["metadata"].get("labels") or {})
    if excluded:
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    else:
        labels.pop("node.kubernetes.io/exclude-from-external-load-balancers", None)
    return {**node, "metadata": {**node["metadata"], "labels": labels}}


async def run_demo(
    duration: float | None,
    manifests: Path = MANIFESTS,
    pause: float = 2.0,
    out: Callable[[str], None] = print,
    frr: bool = False,
) -> int:
    """Run the demo; ``duration`` None means until Ctrl-C; ``frr`` uses FRR in namespaces (root)."""
    logging.getLogger("bgpsvc").setLevel(logging.WARNING)
    demo: Demo
    if frr:
        demo = FrrDemo(manifests, out)
        out("bgpsvc demo (FRR mode): 3 node speakers in network namespaces peer with FRR (AS 64500);")
        out(
            "the view is FRR's kernel routing table, with its ECMP next hops, in the router namespace (IPv4);"
        )
    else:
        demo = Demo(manifests, out)
        out("bgpsvc demo: 3 node speakers (AS 64512) peer with a route collector (AS 64500) on loopback;")
    out(f"the cluster is {manifests} served by the in-repo Kubernetes list/watch API server.")
    out("Service range 198.51.100.0/24 + 2001:db8:96::/112 from every node; eTP=Local services only from")
    out("nodes with ready endpoints; LoadBalancer IPs from 203.0.113.0/24.")
    try:
        await demo.start()
        await demo.settle("initial state (web is Local: node-1 and node-2 have ready IPv4 endpoints)")
        await demo.scenario(pause)
        if not frr:
            crd = CrdScenario(demo.api, NODES, out)
            try:
                await crd.run(pause)
            finally:
                await crd.stop()
        out(
            "\n(watching for changes"
            + (f" for {duration:g} s" if duration is not None else "; Ctrl-C to stop")
            + ")"
        )
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            await demo.settle("changed", timeout=1.0)
    finally:
        await demo.stop()
    return 0


def frr_usable() -> bool:
    """Root, FRR and iproute2 are here (the FRR mode's needs)."""
    return os.geteuid() == 0 and Path("/usr/lib/frr/bgpd").exists() and shutil.which("ip") is not None


def main(duration: float | None, pause: float, mode: str = "auto") -> int:
    """Entry point for ``bgpsvc demo``: ``mode`` is loopback, frr, or auto (FRR when root and installed)."""
    use_frr = mode == "frr" or (mode == "auto" and frr_usable())
    if mode == "frr" and not frr_usable():
        print("bgpsvc demo --frr needs root, FRR (/usr/lib/frr/bgpd) and iproute2", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_demo(duration, pause=pause, frr=use_frr))
    except KeyboardInterrupt:
        return 0
