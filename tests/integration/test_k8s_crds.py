"""Custom resources against FRR (issue 12): BGPPeer, BGPAdvertisement and a peer's Secret changed live
while ``bgpsvc run`` node speakers keep running, in network namespaces.

Topology: ``router`` (FRR, AS 64500, the lab API server on 203.0.113.254:6443 with bgpsvc's CRDs) and
one veth to each of ``c1``, ``c2`` (node speakers ``node-1``, ``node-2``, AS 64512, no peers in their
files). Sessions keep running across unrelated changes: FRR's ``connectionsEstablished`` and
``connectionsDropped`` counters of a neighbour do not move.
The router's table is compared with what was configured.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .netlab import Frr, Lab, wait_until
from .speaker import BgpsvcProcess
from .test_frr_speaker import frr_config, router_v4, speaker_v4
from .test_k8s_nodes import API_ADDR, API_PORT, NsApiServer, node_obj

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "manifests" / "01-crds.yaml"
NS = "bgpsvc-system"
RANGE = "198.51.100.0/24"
API = "bgpsvc.io/v1alpha1"


def bgp_peer(i: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "BGPPeer",
        "metadata": {"name": f"tor-node-{i}"},
        "spec": {
            "address": router_v4(i),
            "peerASN": 64500,
            "connectRetryTime": 1,
            "families": ["ipv4-unicast"],
            "nodeSelector": {"matchLabels": {"bgpsvc.io/rack": f"r{i}"}},
            **spec,
        },
    }


def advert(community: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "BGPAdvertisement",
        "metadata": {"name": "services"},
        "spec": {"serviceClusterIPs": [RANGE], "attributes": [{"communities": [community]}]},
    }


def secret(password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": NS, "name": "tor-md5"},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


class Cluster:
    def __init__(self, lab: Lab, frr_factory: Callable[..., Frr], tmp: Path) -> None:
        self.router = lab.netns("router")
        self.nodes = []
        for i in (1, 2):
            ns = lab.netns(f"c{i}")
            lab.veth(self.router, ns, [f"{router_v4(i)}/28"], [f"{speaker_v4(i)}/28"])
            ns.ip("route", "add", f"{API_ADDR}/32", "via", router_v4(i))
            self.nodes.append(ns)
        self.router.ip("addr", "add", f"{API_ADDR}/32", "dev", "lo")
        self.api = NsApiServer(self.router.name, API_ADDR, API_PORT).start()
        self.api.load_manifests(CRDS)
        for i in (1, 2):
            self.api.apply(node_obj(i, {"bgpsvc.io/rack": f"r{i}"}))
        self.kubeconfig = self.api.write_kubeconfig(tmp / "kubeconfig")
        config = frr_config(64500, [(speaker_v4(1), 64512), (speaker_v4(2), 64512)])
        md5 = f" neighbor {speaker_v4(2)} password alpha\n"  # node 2's session uses TCP MD5
        self.frr = frr_factory(
            self.router, config.replace(" address-family ipv4", md5 + " address-family ipv4", 1), "tor"
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
                    "kubernetes": {
                        "node_name": f"node-{i}",
                        "kubeconfig": str(self.kubeconfig),
                        "secret_namespace": NS,
                        "status_interval": 1,
                    },
                },
                f"node-{i}",
            )
            self.speakers.append(sp)
            sp.start()

    def sessions(self, i: int) -> tuple[int, int]:
        """FRR's (connections established, dropped) for node ``i``: they move only on a reset."""
        n = self.frr.neighbor(speaker_v4(i))
        return int(n.get("connectionsEstablished", 0)), int(n.get("connectionsDropped", 0))

    def communities(self, i: int) -> str | None:
        # The table listing has no communities; the prefix's own view has them.
        paths = self.frr.json(f"show bgp ipv4 unicast {RANGE}").get("paths", [])
        for p in paths:
            hops = {h.get("ip") for h in p.get("nexthops", [])} | {(p.get("peer") or {}).get("peerId")}
            if speaker_v4(i) in hops:
                return str((p.get("community") or {}).get("string", ""))
        return None

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


def test_peers_advertisements_and_secrets_change_live(cluster: Cluster) -> None:
    frr, api = cluster.frr, cluster.api
    api.apply(bgp_peer(1))
    api.apply(advert("64512:100"))
    cluster.start_speakers()
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(
        lambda: cluster.communities(1) == "64512:100", timeout=20, what="range with 64512:100 from node 1"
    )
    one = cluster.sessions(1)

    # Add a peer (node 2, MD5 key from a Secret): its session comes up, node 1's keeps running.
    api.apply(secret("alpha"))
    api.apply(bgp_peer(2, passwordSecretRef={"name": "tor-md5"}))
    frr.wait_state(speaker_v4(2), timeout=30)
    wait_until(lambda: cluster.communities(2) == "64512:100", timeout=20, what="range from node 2")
    assert cluster.sessions(1) == one

    # Edit the advertisement: both routes change community, no session resets.
    two = cluster.sessions(2)
    api.apply(advert("64512:200"))
    wait_until(
        lambda: cluster.communities(1) == cluster.communities(2) == "64512:200", timeout=20, what="64512:200"
    )
    assert (cluster.sessions(1), cluster.sessions(2)) == (one, two)

    # Rotate node 2's key on both ends: that session re-keys (a new connection), node 1's does not.
    frr.configure(f"router bgp 64500\n neighbor {speaker_v4(2)} password beta\nexit\n")
    api.apply(secret("beta"))
    wait_until(lambda: cluster.sessions(2)[0] > two[0], timeout=60, what="node 2 re-keyed")
    frr.wait_state(speaker_v4(2), timeout=30)
    assert cluster.sessions(1) == one

    # The node status objects say what runs.
    def states() -> dict[str, str]:
        out = {}
        for i in (1, 2):
            st = (api.get("BGPNodeStatus", None, f"node-{i}") or {}).get("status") or {}
            out.update({f"node-{i}/{p['name']}": p["state"] for p in st.get("peers", [])})
        return out

    want = {"node-1/tor-node-1": "Established", "node-2/tor-node-2": "Established"}
    wait_until(lambda: states() == want, timeout=20, what=f"BGPNodeStatus {want}")

    # Delete the peer: node 2's session ends with Cease (peer de-configured); node 1 untouched.
    api.delete("BGPPeer", None, "tor-node-2")
    frr.wait_state(speaker_v4(2), "!Established", timeout=20)
    last = frr.neighbor(speaker_v4(2)).get("lastNotificationReason", "")
    assert "Cease" in str(last), last
    assert cluster.sessions(1) == one

    # Delete the advertisement: without any, the file's (empty) ranges apply: the range is withdrawn.
    api.delete("BGPAdvertisement", None, "services")
    wait_until(lambda: not frr.has_route(RANGE), timeout=20, what="range withdrawn")
    assert cluster.sessions(1) == one
    wait_until(
        lambda: states() == {"node-1/tor-node-1": "Established"}, timeout=20, what="status: node 2 gone"
    )
