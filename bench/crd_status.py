"""Status writes of 1,000 node speakers against the lab API server: does coalescing keep the load bounded?

Every simulated node runs the real status path of a node speaker minus BGP: ``NodeStatusBuilder`` builds
its BGPNodeStatus ``status`` from typed ``PeerStatus`` values once a second (``STATUS_POLL``, as the node
speaker does) and a real ``NodeStatusWriter`` (official client, merge patch of ``/status``, create on
404) writes it through ``Coalescer``. The sessions are synthetic: each node has ``--peers`` peers; every
second each session flaps with probability ``--flap`` (Established -> Active, back up the next second)
and each node's advertised prefix count changes with probability ``--churn``. The lab API server serves
the CRDs from deploy/manifests/01-crds.yaml on loopback and counts the requests it answers.

Printed: status writes per second measured at the server (PATCH /status; the one-off creates apart),
the bound ``nodes / interval``, what a write on every change would have cost (the status changes the
builders saw), and the smallest gap between two writes of one node (at issue) (must be >= the interval).

    .venv/bin/python bench/crd_status.py --nodes 1000 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from bgpsvc.fsm import PeerStatus
from bgpsvc.k8s.informer import load_api_client
from bgpsvc.k8s.nodestatus import NodeStatusBuilder
from bgpsvc.k8s.statuswriter import Coalescer, NodeStatusWriter
from bgpsvc.lab import ApiServer

CRDS = Path(__file__).resolve().parent.parent / "deploy" / "manifests" / "01-crds.yaml"


def peer(i: int) -> PeerStatus:
    return PeerStatus(
        name=f"tor-{i}", address=f"192.0.2.{i + 1}", peer_as=64500, local_as=64512, state="Established",
        uptime=100.0, last_down=None, prefixes_sent=10, prefixes_received={"ipv4-unicast": 0},
        messages_sent=0, messages_received=0, updates_sent=0, updates_received=0, hold_time=90,
        families=("ipv4-unicast",), graceful_shutdown=False, unroutable=0,
        prefixes_by_class={"ipv4-unicast": 10},
    )  # fmt: skip


class TimedCoalescer(Coalescer):
    """The real coalescer, noting when it let each write go."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.times: list[float] = []

    def take(self, now: float) -> object:
        value = super().take(now)
        if value is not None:
            self.times.append(now)
        return value


class TimedWriter(NodeStatusWriter):
    """The real writer with a ``TimedCoalescer``."""

    def __init__(self, api: Any, node: str, interval: float) -> None:
        super().__init__(api, node, interval)
        self.coalescer = self._coalescer = TimedCoalescer(interval)


class SimNode:
    """One node: its sessions (synthetic), its status builder and its real writer."""

    def __init__(self, name: str, api: Any, peers: int, interval: float, rng: random.Random) -> None:
        self.builder = NodeStatusBuilder(name)
        self.writer = TimedWriter(api, name, interval)
        self.peers = [peer(i) for i in range(peers)]
        self.rng = rng
        self.changes = 0
        self.last: object = None

    def tick(self, now: float, flap: float, churn: float) -> None:
        for i, p in enumerate(self.peers):
            if p.state != "Established":
                self.peers[i] = replace(p, state="Established", uptime=0.0)
            elif self.rng.random() < flap:
                self.peers[i] = replace(
                    p, state="Active", uptime=None, last_down="hold timer expired", flaps=p.flaps + 1
                )
        if self.rng.random() < churn:
            n = self.rng.randint(5, 15)
            self.peers = [replace(p, prefixes_by_class={"ipv4-unicast": n}) for p in self.peers]
        status = self.builder.build(
            "192.0.2.11", local_as=64512, peers=self.peers, sources={}, problems=(), now=now
        )
        if status != self.last:
            self.changes += 1
            self.last = status
        self.writer.offer(status)


async def simulate(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(args.threads))
    with ApiServer(manifests=[CRDS], bookmark_interval=60.0) as lab:
        kubeconfig = lab.write_kubeconfig(Path("/tmp") / f"bgpsvc-bench-{lab.port}.kubeconfig")
        clients = [load_api_client(str(kubeconfig)) for _ in range(args.clients)]
        for c in clients:
            c.configuration.connection_pool_maxsize = args.threads
            c.rest_client.pool_manager.connection_pool_kw["maxsize"] = args.threads
        rng = random.Random(args.seed)
        nodes = [
            SimNode(
                f"node-{i:04d}",
                clients[i % len(clients)],
                args.peers,
                args.interval,
                random.Random(rng.random()),
            )
            for i in range(args.nodes)
        ]
        tasks = [asyncio.create_task(n.writer.run()) for n in nodes]
        # Start-up: every node creates its object and writes its first status (not part of the figure).
        for n in nodes:
            n.tick(time.time(), 0.0, 0.0)
        t0 = time.monotonic()
        while sum(n.writer.writes for n in nodes) < args.nodes and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.2)
        took = time.monotonic() - t0
        print(f"start-up: {args.nodes} BGPNodeStatus objects created and written in {took:.1f} s")
        base = {k: lab.stats().get(k, 0) for k in ("patch", "create")}
        writes0 = sum(n.writer.writes for n in nodes)
        changes0 = sum(n.changes for n in nodes)
        start = time.monotonic()
        second = 0
        while time.monotonic() - start < args.duration:
            second += 1
            now = time.time()
            for n in nodes:
                n.tick(now, args.flap, args.churn)
            await asyncio.sleep(max(0.0, start + second - time.monotonic()))
        elapsed = time.monotonic() - start
        stats = lab.stats()
        patches = stats.get("patch", 0) - base["patch"]
        creates = stats.get("create", 0) - base["create"]
        writes = sum(n.writer.writes for n in nodes) - writes0
        changes = sum(n.changes for n in nodes) - changes0
        failures = sum(n.writer.failures for n in nodes)
        gaps = [b - a for n in nodes for a, b in itertools.pairwise(n.writer.coalescer.times)]
        for t in tasks:
            t.cancel()
        # Writes already handed to threads finish against a stopping server: not worth a warning each.
        logging.getLogger("bgpsvc.k8s.status").setLevel(logging.ERROR)
        for c in clients:
            c.close()
    print(
        f"{args.nodes} nodes x {args.peers} peers, {elapsed:.0f} s, flap p={args.flap}/s per session, "
        f"churn p={args.churn}/s per node, interval {args.interval:g} s"
    )
    print(
        f"  status changes seen by the builders: {changes} ({changes / elapsed:.1f}/s): writes if uncoalesced"
    )
    print(
        f"  status writes at the API server:     {patches} PATCH ({patches / elapsed:.1f}/s), "
        f"{creates} creates"
    )
    print(f"  bound nodes/interval:                {args.nodes / args.interval:.1f}/s")
    print(f"  writes acknowledged by the writers:  {writes}, failed: {failures}")
    if gaps:
        gap = min(gaps)
        print(f"  smallest gap between two writes of a node (at issue): {gap:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--peers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between writes of one node")
    ap.add_argument("--flap", type=float, default=0.02, help="per session per second")
    ap.add_argument("--churn", type=float, default=0.05, help="prefix-count change per node per second")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--clients", type=int, default=4, help="ApiClients shared by the simulated nodes")
    ap.add_argument("--seed", type=int, default=1)
    asyncio.run(simulate(ap.parse_args()))


if __name__ == "__main__":
    main()
