"""``bgpsvc demo``: the product working end to end on one machine, no root needed.

A simulated cluster (``examples/demo/cluster.yaml``) is served by the in-repo list/watch API server. One
bgpsvc node speaker per node reads it through the official Kubernetes client and peers over BGP with an
embedded route collector playing the top-of-rack router. The demo prints the router's view (each
prefix and the nodes it is reachable through), then walks through a few cluster changes and keeps
printing the view whenever it changes. Everything listens on 127.0.0.x.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .aio import PeerConfig, Speaker, SpeakerConfig
from .config import parse_config
from .lab.apiserver import ApiServer
from .node import NodeSpeaker
from .wire import IPV4_UNICAST, IPV6_UNICAST

ROUTER = "127.0.0.1"
NODES = {"node-1": "127.0.0.11", "node-2": "127.0.0.12", "node-3": "127.0.0.13"}
MANIFESTS = Path(__file__).resolve().parent.parent / "examples" / "demo" / "cluster.yaml"
View = dict[str, list[str]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ROUTER, 0))
        return int(s.getsockname()[1])


def router_view(collector: Speaker) -> View:
    """Prefix -> the nodes the router has it from."""
    by_addr = {addr: name for name, addr in NODES.items()}
    view: dict[str, set[str]] = {}
    for runner in collector.runners:
        if runner.rib_in is None or not runner.session.established:
            continue
        for table in runner.rib_in.routes.values():
            for prefix in table:
                view.setdefault(str(prefix), set()).add(by_addr.get(runner.peer.address, runner.peer.address))
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
        self.last: View | None = None

    async def start(self) -> None:
        """API server, collector, then one node speaker per node."""
        self.api.start()
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
                    },
                },
                env={},
            )
            node = NodeSpeaker(cfg, {})
            await node.start()
            self.nodes.append(node)
        await self.collector.wait_established(30)

    async def settle(self, title: str, timeout: float = 10.0) -> View:
        """Wait until the router's view stops changing (bounded), print it if it changed."""
        deadline = time.monotonic() + timeout
        stable_since = time.monotonic()
        view = router_view(self.collector)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = router_view(self.collector)
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
) -> int:
    """Run the demo; ``duration`` None means until Ctrl-C."""
    logging.getLogger("bgpsvc").setLevel(logging.WARNING)
    demo = Demo(manifests, out)
    out("bgpsvc demo: 3 node speakers (AS 64512) peer with a route collector (AS 64500) on loopback;")
    out(f"the cluster is {manifests} served by the in-repo Kubernetes list/watch API server.")
    out("Service range 198.51.100.0/24 + 2001:db8:96::/112 from every node; eTP=Local services only from")
    out("nodes with ready endpoints; LoadBalancer IPs from 203.0.113.0/24.")
    try:
        await demo.start()
        await demo.settle("initial state (web is Local: node-1 and node-2 have ready IPv4 endpoints)")
        await demo.scenario(pause)
        out("\n(watching for changes" + (f" for {duration:.0f} s" if duration else "; Ctrl-C to stop") + ")")
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            await demo.settle("changed", timeout=1.0)
    finally:
        await demo.stop()
    return 0


def main(duration: float | None, pause: float) -> int:
    """Entry point for ``bgpsvc demo``."""
    try:
        return asyncio.run(run_demo(duration, pause=pause))
    except KeyboardInterrupt:
        return 0
