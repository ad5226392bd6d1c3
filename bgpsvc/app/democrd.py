"""The demo's custom-resource part (``bgpsvc demo``, loopback mode): configuration by CRDs, live.

After the cluster scenario, a second router (``router-2``, a route collector on 127.0.0.2, AS 64501) is
added by writing a ``BGPPeer`` that selects node-1; the session comes up without a restart. A
``BGPAdvertisement`` then takes over from the file's ranges and tags the service range with a community,
and editing that community changes the router's view at once. Last, node-1's ``BGPNodeStatus`` as the
speaker wrote it. The API server is the demo's lab server (passed in; this module does not import it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..aio import PeerConfig, Speaker, SpeakerConfig
from ..wire import IPV4_UNICAST, IPV6_UNICAST, Communities, community_str

ROUTER2 = "127.0.0.2"
#: bgpsvc's CRDs, shipped in the package so the demo works from an installed wheel.
CRDS = Path(__file__).resolve().parent / "data" / "crds.yaml"
API = "bgpsvc.io/v1alpha1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ROUTER2, 0))
        return int(s.getsockname()[1])


def advertisement(community: str) -> dict[str, Any]:
    """The demo's BGPAdvertisement: the file's ranges, the service range tagged with ``community``."""
    return {
        "apiVersion": API,
        "kind": "BGPAdvertisement",
        "metadata": {"name": "services"},
        "spec": {
            "serviceClusterIPs": ["198.51.100.0/24", "2001:db8:96::/112"],
            "serviceLoadBalancerIPs": ["203.0.113.0/24"],
            "attributes": [{"routeClasses": ["ClusterRange"], "communities": [community]}],
        },
    }


class CrdScenario:
    """router-2, the custom resources the demo writes, and what it prints."""

    def __init__(self, api: Any, nodes: dict[str, str], out: Callable[[str], None]) -> None:
        self.api = api
        self.out = out
        self.node1 = nodes["node-1"]
        self.port = _free_port()
        self.router = Speaker(
            SpeakerConfig(
                64501,
                "192.0.2.2",
                listen=((ROUTER2, self.port),),
                peers=(
                    PeerConfig(
                        self.node1,
                        64512,
                        port=self.port,
                        passive=True,
                        store_routes=True,
                        name="node-1",
                        families=(IPV4_UNICAST, IPV6_UNICAST),
                    ),
                ),
            )
        )

    def view(self) -> dict[str, str]:
        """router-2's table: prefix -> communities."""
        out: dict[str, str] = {}
        for d in self.router.drivers:
            if d.peer.rib_in is None or not d.peer.established:
                continue
            for table in d.peer.rib_in.routes.values():
                for prefix, route in table.items():
                    comms = next((a.values for a in route.attributes if isinstance(a, Communities)), ())
                    out[str(prefix)] = " ".join(community_str(c) for c in comms) or "-"
        return {p: out[p] for p in sorted(out, key=lambda p: (ipaddress.ip_network(p).version, p))}

    def render(self, title: str) -> None:
        """Print router-2's table."""
        lines = [f"\n## {time.strftime('%H:%M:%S')}  {title}", f"   {'prefix':<26} from     communities"]
        lines += [f"   {p:<26} node-1   {c}" for p, c in self.view().items()] or ["   (no routes)"]
        self.out("\n".join(lines))

    async def until(self, pred: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait (bounded) for ``pred``."""
        deadline = time.monotonic() + timeout
        while not pred() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def run(self, pause: float) -> None:
        """The steps, each printed with router-2's view."""
        await self.router.start()
        self.out("\n-> custom resources: a BGPPeer for router-2 (127.0.0.2, AS 64501) selecting node-1")
        self.api.apply(
            {
                "apiVersion": API,
                "kind": "BGPPeer",
                "metadata": {"name": "router-2"},
                "spec": {
                    "address": ROUTER2,
                    "peerASN": 64501,
                    "port": self.port,
                    "sourceAddress": self.node1,
                    "connectRetryTime": 1,
                    "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": "node-1"}},
                },
            }
        )
        await self.router.wait_established(15)
        await self.until(lambda: "198.51.100.0/24" in self.view())
        self.render("router-2's view: the session came up, no restart")
        for comm, text in (
            ("64512:100", "a BGPAdvertisement tags the service range"),
            ("64512:200", "edited"),
        ):
            await asyncio.sleep(pause)
            self.out(f"\n-> BGPAdvertisement 'services': community {comm} on the service range ({text})")
            self.api.apply(advertisement(comm))
            await self.until(lambda c=comm: self.view().get("198.51.100.0/24") == c)  # type: ignore[misc]
            self.render(f"router-2's view: 198.51.100.0/24 now carries {comm}")
        await self.until(
            lambda: any("router-2" in ln and "Established" in ln for ln in self.node_status().splitlines())
        )
        self.out("\n-> kubectl get bgpnodestatus node-1 -o yaml (status, as node-1's speaker wrote it)")
        self.out(self.node_status())

    def node_status(self) -> str:
        """node-1's BGPNodeStatus, one line per peer."""
        obj = self.api.get("BGPNodeStatus", None, "node-1") or {}
        st = obj.get("status") or {}
        lines = [f"   routerID: {st.get('routerID')}  localASN: {st.get('localASN')}"]
        for p in st.get("peers", []):
            routes = ", ".join(
                f"{r['family']} {r['advertised']} sent/{r['received']} rcvd" for r in p["routes"]
            )
            lines.append(
                f"   {p['name']:<10} {p['source']:<16} {p['state']:<12} since {p['since']}  {routes}"
            )
        return "\n".join(lines)

    async def stop(self) -> None:
        """router-2 down."""
        await self.router.stop(0)
