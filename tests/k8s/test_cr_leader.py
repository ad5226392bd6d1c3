"""Two node speakers with custom resources on, against the lab API server: only the one holding the Lease
watches every Node and writes objects' conditions; when it stops, it releases the Lease and the other takes
the work over. Each speaker still applies the BGPPeers that select its own node, leader or not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from prometheus_client import CollectorRegistry

from bgpsvc.app.config import parse_config
from bgpsvc.app.metrics import StatusCollector
from bgpsvc.app.node import NodeSpeaker
from bgpsvc.k8s import lease
from bgpsvc.k8s.crwatch import ALL_NODES
from bgpsvc.k8s.informer import load_api_client
from bgpsvc.lab.apiserver import ApiServer
from tests.loopback import wait_for

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "manifests" / "01-crds.yaml"
GROUP, VERSION, NS = "bgpsvc.io", "v1alpha1", "bgpsvc-system"


def node(name: str, rack: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"rack": rack}},
        "status": {"addresses": [{"type": "InternalIP", "address": f"192.0.2.{name[-1]}"}]},
    }


def peer(name: str, rack: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BGPPeer",
        "metadata": {"name": name},
        "spec": {
            "address": "127.0.0.9",
            "peerASN": 64500,
            "port": 1,
            "families": ["ipv4-unicast"],
            "nodeSelector": {"matchLabels": {"rack": rack}},
        },
    }


def test_one_speaker_watches_every_node_and_hands_over_when_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("LEASE_DURATION", 2.0), ("RENEW_EVERY", 0.2), ("RENEW_DEADLINE", 1.0)):
        monkeypatch.setattr(lease, name, value)

    async def main() -> None:
        with ApiServer(manifests=[CRDS]) as api:
            api.apply(node("node-1", "r1"))
            api.apply(node("node-2", "r2"))
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
            client = load_api_client(str(kubeconfig))
            co = k8s.CustomObjectsApi(client)
            # r2 only has node-2; r3 has no node at all.
            for name, rack in (("tor-r2", "r2"), ("tor-r3", "r3")):
                co.create_cluster_custom_object(GROUP, VERSION, "bgppeers", peer(name, rack))

            def speaker(name: str) -> NodeSpeaker:
                kube = {"node_name": name, "kubeconfig": str(kubeconfig), "secret_namespace": NS}
                cfg = parse_config(
                    {
                        "local_as": 64512,
                        "listen": False,
                        "control": False,
                        "drain_time": 0,
                        "kubernetes": {**kube, "status_interval": 0.2, "lease_poll": 0.2},
                    },
                    env={},
                )
                return NodeSpeaker(cfg, {})

            def selected(name: str) -> tuple[str, str] | None:
                obj = co.get_cluster_custom_object(GROUP, VERSION, "bgppeers", name)
                for c in (obj.get("status") or {}).get("conditions") or []:
                    if c["type"] == "NodesSelected":
                        return c["status"], c["reason"]
                return None

            speakers = {n: speaker(n) for n in ("node-1", "node-2")}
            for s in speakers.values():
                await s.start()
            try:

                def watching() -> list[str]:
                    return [
                        n
                        for n, s in speakers.items()
                        if s.cluster is not None and ALL_NODES in s.cluster.watch.informers
                    ]

                await wait_for(lambda: len(watching()) == 1, 10, "one speaker watching every Node")
                (first,) = watching()
                (second,) = set(speakers) - {first}
                rack = {"node-1": "r1", "node-2": "r2"}
                # Selected needs every Node: the leader's own Node does not match this selector.
                co.create_cluster_custom_object(GROUP, VERSION, "bgppeers", peer("tor-x", rack[second]))
                await wait_for(lambda: selected("tor-x") == ("True", "Selected"), 10, "tor-x Selected")
                await wait_for(lambda: selected("tor-r3") == ("False", "NoMatchingNode"), 10, "tor-r3")
                # Leader or not, each speaker runs the BGPPeers that select its node.
                sp2 = speakers["node-2"].speaker
                await wait_for(lambda: sp2 is not None and len(sp2.config.peers) == 1, 10, "node-2's peer")
                assert speakers["node-1"].speaker is not None
                assert len(speakers["node-1"].speaker.config.peers) == (second == "node-1")
                for _ in range(5):
                    await asyncio.sleep(0.1)
                    assert watching() == [first]
                # Operators see it in the status and the bgpsvc_conditions_leader gauge.
                assert speakers[first].k8s_status().conditions_leader is True
                assert speakers[second].k8s_status().conditions_leader is False
                for name, value in ((first, 1.0), (second, 0.0)):
                    registry = CollectorRegistry()
                    registry.register(StatusCollector(speakers[name].status))
                    assert registry.get_sample_value("bgpsvc_conditions_leader") == value

                # The leader stops (gracefully: it releases); the other takes over and keeps conditions
                # current: tor-r3 now selects the stopped node's rack, whose Node is still there.
                await speakers.pop(first).stop()
                await wait_for(lambda: watching() == [second], 10, f"{second} watching every Node")
                assert speakers[second].k8s_status().lease_transitions == 1
                obj = co.get_cluster_custom_object(GROUP, VERSION, "bgppeers", "tor-r3")
                obj["spec"]["nodeSelector"] = {"matchLabels": {"rack": rack[first]}}
                co.replace_cluster_custom_object(GROUP, VERSION, "bgppeers", "tor-r3", obj)
                await wait_for(lambda: selected("tor-r3") == ("True", "Selected"), 10, "tor-r3 Selected")
                held = k8s.CoordinationV1Api(client).read_namespaced_lease(lease.LEASE_NAME, NS)
                assert held.spec.holder_identity.startswith(f"{second}_")
                assert held.spec.lease_transitions == 1
            finally:
                for s in speakers.values():
                    await s.stop()
                client.close()

    asyncio.run(main())
