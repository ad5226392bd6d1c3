"""The node speaker on loopback: one config for a multi-rack cluster.

Peers carry node selectors; the peer set follows this node's labels live; the router ID comes from the
node's InternalIP and a node label overrides the local AS. Routers are library speakers on 127.0.0.x.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.app.config import parse_config
from bgpsvc.app.node import NodeSpeaker
from bgpsvc.fsm import SessionDown
from bgpsvc.lab.apiserver import ApiServer
from bgpsvc.wire import IPV4_UNICAST, Prefix
from tests.loopback import free_port, wait_for


def node(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "labels": labels},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.31"}]},
    }


def router(port: int, address: str, asn: int) -> Speaker:
    # Passive "top-of-rack router": accepts the node (any AS in 64512/65001 would be configured per test).
    return Speaker(
        SpeakerConfig(
            64500,
            f"192.0.2.{address.rsplit('.', 1)[1]}",
            listen=((address, port),),
            peers=(PeerConfig("127.0.0.1", asn, port=port, passive=True, families=(IPV4_UNICAST,)),),
        )
    )


def test_peers_follow_node_labels_and_the_as_comes_from_the_node(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        with ApiServer() as api:
            api.apply(node({"rack": "r1", "bgpsvc.io/local-as": "65001"}))
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
            cfg = parse_config(
                {
                    "local_as": 64512,
                    "listen": False,
                    "control": False,
                    "peers": [
                        {
                            "address": "127.0.0.2",
                            "peer_as": 64500,
                            "port": port,
                            "local_address": "127.0.0.1",
                            "connect_retry_time": 0.5,
                            "families": ["ipv4-unicast"],
                            "node_selector": {"rack": "r1"},
                        },
                        {
                            "address": "127.0.0.3",
                            "peer_as": 64500,
                            "port": port,
                            "local_address": "127.0.0.1",
                            "connect_retry_time": 0.5,
                            "families": ["ipv4-unicast"],
                            "node_selector": {"rack": "r2"},
                        },
                    ],
                    "kubernetes": {
                        "node_name": "node-1",
                        "kubeconfig": str(kubeconfig),
                        "service_cluster_ips": ["198.51.100.0/24"],
                    },
                },
                env={},
            )
            r1, r2 = router(port, "127.0.0.2", 65001), router(port, "127.0.0.3", 65001)
            await r1.start()
            await r2.start()
            downs: list[SessionDown] = []

            async def watch() -> None:
                async for ev in r1.events():
                    if isinstance(ev.event, SessionDown) and ev.event.was_established:
                        downs.append(ev.event)

            watcher = asyncio.create_task(watch())
            ns = NodeSpeaker(cfg, {})
            await ns.start()
            try:
                assert ns.speaker is not None
                assert ns.speaker.config.router_id == "192.0.2.31"  # from the Node's InternalIP
                assert ns.speaker.config.local_as == 65001  # from the node label
                assert [p.address for p in ns.speaker.config.peers] == ["127.0.0.2"]
                await r1.wait_established(15)
                range_ = Prefix.from_network("198.51.100.0/24")
                await wait_for(
                    lambda: r1.drivers[0].peer.session.received.get(IPV4_UNICAST) == {range_}, 10, "range"
                )
                assert not r2.drivers[0].peer.session.established
                await wait_for(
                    lambda: ns.status().speaker.peers[0].prefixes_by_class == {"cluster-range": 1},
                    5,
                    "per-class count for the peer",
                )

                # The node moves to rack 2: rack 1's router gets Cease/Peer De-configured, rack 2 peers.
                api.apply(node({"rack": "r2", "bgpsvc.io/local-as": "65001"}))
                await r2.wait_established(15)
                await wait_for(lambda: downs, 10, "rack 1 session closed")
                assert downs[0].reason.notification is not None
                assert (downs[0].reason.notification.code, downs[0].reason.notification.subcode) == (6, 3)
                await wait_for(
                    lambda: r2.drivers[0].peer.session.received.get(IPV4_UNICAST) == {range_}, 10, "range"
                )
                assert [p.address for p in ns.speaker.config.peers] == ["127.0.0.3"]
            finally:
                await ns.stop()
                watcher.cancel()
                await r1.stop(0)
                await r2.stop(0)

    asyncio.run(main())
