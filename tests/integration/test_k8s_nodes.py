"""Kubernetes service advertisement end to end (issue 4): three node speakers, FRR as the top-of-rack
router (multipath, kernel install), and the in-repo list/watch API server.

Topology: ``router`` (FRR, AS 64500) joined by one veth to each of ``s1``..``s3`` (bgpsvc node speakers,
AS 64512, nodes ``node-1``..``node-3``). The API server listens in the router namespace on
203.0.113.254:6443; each node reaches it through its link to the router. The service cluster range is
198.51.100.0/24 (documentation space; these routes carry no traffic here).
"""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.lab.apiserver import ApiServer
from bgpsvc.lab.netns import in_netns

from .netlab import Frr, Lab, Netns, wait_until
from .speaker import BgpsvcProcess
from .test_frr_speaker import frr_config, router_v4, speaker_v4, speaker_v6

API_ADDR, API_PORT = "203.0.113.254", 6443
RANGE, WEB_IP = "198.51.100.0/24", "198.51.100.10"
N = 3


class NsApiServer(ApiServer):
    """The lab API server with its listening socket created inside a network namespace."""

    def __init__(self, netns: str, host: str, port: int) -> None:
        super().__init__(host, port, bookmark_interval=1.0)
        self.netns = netns

    def _serve(self) -> None:
        in_netns(self.netns, super()._serve)


def node_obj(i: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"node-{i}", "labels": labels or {}},
        "status": {"addresses": [{"type": "InternalIP", "address": speaker_v4(i)}]},
    }


WEB = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"namespace": "shop", "name": "web"},
    "spec": {
        "type": "ClusterIP",
        "clusterIP": WEB_IP,
        "clusterIPs": [WEB_IP],
        "externalTrafficPolicy": "Local",
    },
}


def web_slice(*nodes: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "shop",
            "name": "web-abc12",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.{n}.5"], "nodeName": f"node-{n}", "conditions": {"ready": True}}
            for n in nodes
        ],
    }


class Cluster:
    def __init__(self, lab: Lab, frr_factory: Callable[..., Frr], tmp: Path) -> None:
        self.router: Netns = lab.netns("router")
        self.nodes: list[Netns] = []
        for i in range(1, N + 1):
            ns = lab.netns(f"s{i}")
            lab.veth(self.router, ns, [f"{router_v4(i)}/28"], [f"{speaker_v4(i)}/28", f"{speaker_v6(i)}/64"])
            ns.ip("route", "add", f"{API_ADDR}/32", "via", router_v4(i))
            self.nodes.append(ns)
        self.router.ip("addr", "add", f"{API_ADDR}/32", "dev", "lo")
        self.api = NsApiServer(self.router.name, API_ADDR, API_PORT).start()
        for i in range(1, N + 1):
            self.api.apply(node_obj(i))
        self.kubeconfig = self.api.write_kubeconfig(tmp / "kubeconfig")
        self.frr = frr_factory(
            self.router, frr_config(64500, [(speaker_v4(i), 64512) for i in range(1, N + 1)]), "tor"
        )
        self.speakers: list[BgpsvcProcess] = []

    def start_speakers(self) -> None:
        for i, ns in enumerate(self.nodes, 1):
            sp = BgpsvcProcess(
                ns,
                {
                    "local_as": 64512,
                    "listen": False,
                    "drain_time": 1,
                    "peers": [
                        {
                            "address": router_v4(i),
                            "peer_as": 64500,
                            "connect_retry_time": 1,
                            "families": ["ipv4-unicast"],
                        }
                    ],
                    "kubernetes": {
                        "node_name": f"node-{i}",
                        "kubeconfig": str(self.kubeconfig),
                        "service_cluster_ips": [RANGE],
                    },
                },
                f"node-{i}",
            )
            self.speakers.append(sp)
            sp.start()
        for i in range(1, N + 1):
            self.frr.wait_state(speaker_v4(i), timeout=30)

    def gateways(self, prefix: str) -> set[str]:
        """Next hops FRR has installed in its namespace's kernel for ``prefix``."""
        # iproute2 prints host routes without the /32.
        want = ipaddress.ip_network(prefix)
        r = next((r for r in self.frr.kernel_routes(4) if ipaddress.ip_network(r["dst"]) == want), None)
        if r is None:
            return set()
        if "nexthops" in r:
            return {nh["gateway"] for nh in r["nexthops"]}
        return {r["gateway"]}

    def converge(self, prefix: str, nodes: set[int], timeout: float = 20) -> float:
        want = {speaker_v4(i) for i in nodes}
        t0 = time.monotonic()
        try:
            wait_until(
                lambda: self.gateways(prefix) == want,
                timeout=timeout,
                what=f"{prefix} via {sorted(want)} (now {sorted(self.gateways(prefix))})",
            )
        except TimeoutError:
            for sp in self.speakers:
                print(f"--- {sp.name} status: {sp.status()}\n{sp.log_tail(30)}")
            print(self.frr.vtysh("show bgp ipv4 unicast"))
            raise
        return time.monotonic() - t0

    def stop(self) -> None:
        for sp in self.speakers:
            sp.stop()
        self.api.stop()


@pytest.fixture
def cluster(lab: Lab, frr_factory: Callable[..., Frr], tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(lab, frr_factory, tmp_path)
    try:
        yield c
    finally:
        c.stop()


def test_service_advertisement_follows_the_cluster(cluster: Cluster) -> None:
    cluster.api.apply(WEB)
    cluster.api.apply(web_slice(1, 2))
    cluster.start_speakers()

    # The service range from all three nodes: a 3-way ECMP route in the router's kernel.
    t = cluster.converge(RANGE, {1, 2, 3})
    print(f"range via 3 nodes after {t:.2f} s")
    # The eTP=Local service as a /32 from the nodes with ready endpoints only.
    cluster.converge(f"{WEB_IP}/32", {1, 2})
    for sp in cluster.speakers:
        k8s = sp.status()["kubernetes"]
        assert k8s["synced"] and k8s["api_reachable"]

    # An endpoint moves from node 2 to node 3.
    t = cluster.converge(f"{WEB_IP}/32", {1, 3}) if cluster.api.apply(web_slice(1, 3)) else 0.0
    print(f"endpoint move converged in {t:.2f} s")

    # The exclusion label withdraws everything node 1 advertises.
    cluster.api.apply(node_obj(1, {"node.kubernetes.io/exclude-from-external-load-balancers": ""}))
    cluster.converge(RANGE, {2, 3})
    cluster.converge(f"{WEB_IP}/32", {3})
    cluster.api.apply(node_obj(1))
    cluster.converge(RANGE, {1, 2, 3})
    cluster.converge(f"{WEB_IP}/32", {1, 3})

    # The API server goes away: nothing is withdrawn, and status says the API is unreachable.
    before = {p: cluster.gateways(p) for p in (RANGE, f"{WEB_IP}/32")}
    cluster.api.pause()
    wait_until(
        lambda: all(not sp.status()["kubernetes"]["api_reachable"] for sp in cluster.speakers),
        timeout=30,
        what="speakers notice the API is gone",
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert {p: cluster.gateways(p) for p in before} == before
        time.sleep(0.5)
    cluster.api.resume()
    wait_until(
        lambda: all(sp.status()["kubernetes"]["api_reachable"] for sp in cluster.speakers),
        timeout=60,
        what="speakers reconnect to the API",
    )

    # Deleting the Service withdraws the /32 everywhere; the range stays.
    cluster.api.delete("Service", "shop", "web")
    cluster.converge(f"{WEB_IP}/32", set())
    assert cluster.gateways(RANGE) == {speaker_v4(i) for i in (1, 2, 3)}


def test_a_change_made_while_the_api_was_down_arrives_after_it_returns(cluster: Cluster) -> None:
    cluster.api.apply(WEB)
    cluster.api.apply(web_slice(1))
    cluster.start_speakers()
    cluster.converge(f"{WEB_IP}/32", {1})
    cluster.api.pause()
    # Writes while "down" land in the store; watchers see them only after the server is back.
    slice_ = copy.deepcopy(web_slice(2))
    cluster.api.apply(slice_)
    time.sleep(2)
    assert cluster.gateways(f"{WEB_IP}/32") == {speaker_v4(1)}
    cluster.api.resume()
    cluster.converge(f"{WEB_IP}/32", {2}, timeout=60)
