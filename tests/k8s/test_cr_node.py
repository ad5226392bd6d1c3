"""The node speaker configured by custom resources, live, on loopback: the lab API server serves bgpsvc's
CRDs (deploy/manifests/01-crds.yaml) and the test writes BGPPeers, BGPAdvertisements and Secrets through
the official client, as an operator's kubectl would. Routers are library speakers on 127.0.0.x.

What it shows: a new BGPPeer connects and a second one leaves the first session alone; an edited
community is re-advertised on the running session; a BGPPeer whose Secret is missing, or whose node
selector matches no node, gets a condition saying so while the node keeps its last good configuration;
a deleted BGPPeer ends with Cease/Peer De-configured; the node's BGPNodeStatus follows the sessions,
through a flap.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.app.config import parse_config
from bgpsvc.app.node import NodeSpeaker
from bgpsvc.fsm import SessionDown
from bgpsvc.k8s.informer import load_api_client
from bgpsvc.lab.apiserver import ApiServer
from bgpsvc.wire import IPV4_UNICAST, Communities, Prefix, community
from tests.loopback import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "manifests" / "01-crds.yaml"
GROUP, VERSION = "bgpsvc.io", "v1alpha1"
RANGE = Prefix.from_network("198.51.100.0/24")
NS = "bgpsvc-system"


def router(port: int, address: str) -> Speaker:
    return Speaker(
        SpeakerConfig(
            64500,
            f"192.0.2.{address.rsplit('.', 1)[1]}",
            listen=((address, port),),
            peers=(
                PeerConfig(
                    "127.0.0.1", 64512, port=port, passive=True, store_routes=True, families=(IPV4_UNICAST,)
                ),
            ),
        )
    )


def bgp_peer(name: str, address: str, port: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BGPPeer",
        "metadata": {"name": name},
        "spec": {
            "address": address,
            "peerASN": 64500,
            "port": port,
            "sourceAddress": "127.0.0.1",
            "connectRetryTime": 1,
            "families": ["ipv4-unicast"],
            **spec,
        },
    }


def advert(*communities: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BGPAdvertisement",
        "metadata": {"name": "services"},
        "spec": {"serviceClusterIPs": [str(RANGE)], "attributes": [{"communities": list(communities)}]},
    }


def create_peer(co: Any, body: dict[str, Any]) -> None:
    co.create_cluster_custom_object(GROUP, VERSION, "bgppeers", body)


def received_communities(r: Speaker) -> tuple[int, ...] | None:
    rib = r.drivers[0].peer.rib_in
    route = rib.routes.get(IPV4_UNICAST, {}).get(RANGE) if rib is not None else None
    if route is None:
        return None
    return next((a.values for a in route.attributes if isinstance(a, Communities)), ())


def conditions(co: Any, name: str) -> dict[str, tuple[str, str]]:
    obj = co.get_cluster_custom_object(GROUP, VERSION, "bgppeers", name)
    return {c["type"]: (c["status"], c["reason"]) for c in (obj.get("status") or {}).get("conditions", [])}


def node_status(co: Any) -> dict[str, Any]:
    try:
        return dict(
            co.get_cluster_custom_object(GROUP, VERSION, "bgpnodestatuses", "node-1").get("status") or {}
        )
    except k8s.exceptions.ApiException:
        return {}


def peer_states(co: Any) -> dict[str, str]:
    return {p["name"]: p["state"] for p in node_status(co).get("peers", [])}


def test_custom_resources_configure_the_node_live_and_status_follows(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        with ApiServer(manifests=[CRDS]) as api:
            api.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": "node-1", "labels": {"rack": "r1"}},
                    "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.31"}]},
                }
            )
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
            client = load_api_client(str(kubeconfig))
            co = k8s.CustomObjectsApi(client)
            cfg = parse_config(
                {
                    "local_as": 64512,
                    "listen": False,
                    "control": False,
                    "drain_time": 0,
                    "kubernetes": {
                        "node_name": "node-1",
                        "kubeconfig": str(kubeconfig),
                        "secret_namespace": NS,
                        "status_interval": 0.2,
                    },
                },
                env={},
            )
            r1, r2 = router(port, "127.0.0.2"), router(port, "127.0.0.3")
            await r1.start()
            await r2.start()
            downs: list[SessionDown] = []

            async def watch(r: Speaker, into: list[SessionDown]) -> None:
                async for ev in r.events():
                    if isinstance(ev.event, SessionDown) and ev.event.was_established:
                        into.append(ev.event)

            downs2: list[SessionDown] = []
            watchers = [asyncio.create_task(watch(r1, downs)), asyncio.create_task(watch(r2, downs2))]
            ns = NodeSpeaker(cfg, {})
            await ns.start()
            try:
                assert ns.speaker is not None and ns.speaker.config.peers == ()

                # A BGPPeer and a BGPAdvertisement: the session comes up and carries the range.
                create_peer(co, bgp_peer("tor-a", "127.0.0.2", port))
                co.create_cluster_custom_object(GROUP, VERSION, "bgpadvertisements", advert("64512:100"))
                await r1.wait_established(10)
                await wait_for(
                    lambda: received_communities(r1) == (community("64512:100"),), 10, "range with 64512:100"
                )
                established_at = r1.drivers[0].peer.session.established_at

                # A second peer leaves the first session alone.
                create_peer(co, bgp_peer("tor-b", "127.0.0.3", port))
                await r2.wait_established(10)

                # Edit the community: re-advertised on the running session.
                obj = co.get_cluster_custom_object(GROUP, VERSION, "bgpadvertisements", "services")
                obj["spec"]["attributes"][0]["communities"] = ["64512:200"]
                co.replace_cluster_custom_object(GROUP, VERSION, "bgpadvertisements", "services", obj)
                await wait_for(lambda: received_communities(r1) == (community("64512:200"),), 10, "64512:200")
                assert r1.drivers[0].peer.session.established_at == established_at and downs == []

                # A peer whose Secret is missing: a condition, and no session attempt.
                create_peer(co, bgp_peer("tor-c", "127.0.0.4", port, passwordSecretRef={"name": "tor-c-md5"}))
                await wait_for(
                    lambda: conditions(co, "tor-c").get("Accepted") == ("False", "SecretNotFound"),
                    10,
                    "SecretNotFound",
                )
                assert [p.name for p in ns.speaker.config.peers] == ["tor-a", "tor-b"]
                assert conditions(co, "tor-a") == {
                    "Accepted": ("True", "Accepted"),
                    "NodesSelected": ("True", "Selected"),
                }

                # tor-b's selector now matches no node: reported, and the node keeps its session.
                obj = co.get_cluster_custom_object(GROUP, VERSION, "bgppeers", "tor-b")
                obj["spec"]["nodeSelector"] = {"matchLabels": {"rack": "rl"}}
                co.replace_cluster_custom_object(GROUP, VERSION, "bgppeers", "tor-b", obj)
                await wait_for(
                    lambda: conditions(co, "tor-b").get("NodesSelected") == ("False", "NoMatchingNode"),
                    10,
                    "NoMatchingNode",
                )
                assert r2.drivers[0].peer.established and downs2 == []
                await wait_for(
                    lambda: node_status(co).get("conditions", [{}])[0].get("status") == "False",
                    10,
                    "ConfigApplied False",
                )

                # The node status says what runs.
                await wait_for(
                    lambda: peer_states(co) == {"tor-a": "Established", "tor-b": "Established"}, 10, "status"
                )
                st = node_status(co)
                tor_a = next(p for p in st["peers"] if p["name"] == "tor-a")
                assert tor_a["source"] == "BGPPeer/tor-a" and tor_a["families"] == ["ipv4-unicast"]
                assert tor_a["routes"] == [{"family": "ipv4-unicast", "advertised": 1, "received": 0}]
                assert st["routerID"] == "192.0.2.31" and st["localASN"] == 64512

                # Deleting tor-b ends its session with Cease/Peer De-configured; tor-a untouched.
                co.delete_cluster_custom_object(GROUP, VERSION, "bgppeers", "tor-b")
                await wait_for(lambda: downs2, 10, "tor-b closed")
                assert downs2[0].reason.notification is not None
                assert (downs2[0].reason.notification.code, downs2[0].reason.notification.subcode) == (6, 3)
                assert r1.drivers[0].peer.session.established_at == established_at

                # A flap: the status follows the session down and up again.
                await r1.stop(0)
                await wait_for(
                    lambda: peer_states(co).get("tor-a") not in (None, "Established"), 15, "down in status"
                )
                r1 = router(port, "127.0.0.2")
                await r1.start()
                await r1.wait_established(15)
                await wait_for(lambda: peer_states(co) == {"tor-a": "Established"}, 15, "up again in status")
                assert next(p for p in node_status(co)["peers"])["flaps"] >= 1
            finally:
                await ns.stop()
                for w in watchers:
                    w.cancel()
                await r1.stop(0)
                await r2.stop(0)
                client.close()

    asyncio.run(main())
