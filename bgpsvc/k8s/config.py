"""The node speaker's Kubernetes settings: what only makes sense on a Kubernetes node.

Peers are ``bgpsvc.fsm.PeerConfig``; which nodes a peer applies to (its node selector), where the
router ID and local AS come from, and what to advertise live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..fsm import PeerConfig
from .desired import AdvertisePolicy
from .views import NodeView

Selector = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    """The ``kubernetes:`` section of a node speaker's configuration."""

    node_name: str
    kubeconfig: str | None = None
    policy: AdvertisePolicy = field(default_factory=AdvertisePolicy)
    #: Coalesce bursts of watch events for this long before reconciling (seconds).
    debounce: float = 0.01
    #: Node label or annotation whose value overrides the local AS on that node.
    local_as_key: str = "bgpsvc.io/local-as"
    #: Take the router ID from the node's InternalIP (when the config gives none).
    router_id_from_node: bool = False
    #: (peer address, port) -> node labels the peer applies to (all must match); absent: every node.
    node_selectors: Mapping[tuple[str, int], Selector] = field(default_factory=dict)
    #: Read bgpsvc.io custom resources (BGPPeer, BGPAdvertisement, BGPNodeConfig) and write status.
    custom_resources: bool = True
    #: The namespace of the Secrets BGPPeers reference (bgpsvc's own: RBAC grants only those).
    secret_namespace: str = "bgpsvc-system"
    #: Seconds between two writes of this node's BGPNodeStatus (0: do not write status).
    status_interval: float = 5.0

    def selector(self, peer: PeerConfig) -> Selector:
        """The node selector of ``peer`` (empty: every node)."""
        return self.node_selectors.get((peer.address, peer.port), ())

    def policy_for(self, local_as: int) -> AdvertisePolicy:
        """The policy with the node's AS in the Link Bandwidth community when the config names none."""
        lb = self.policy.link_bandwidth
        if lb.asn is not None or not lb.classes:
            return self.policy
        return replace(self.policy, link_bandwidth=replace(lb, asn=local_as))


def selects(selector: Selector, labels: Mapping[str, str]) -> bool:
    """Whether a node with ``labels`` matches ``selector`` (every pair equal)."""
    return all(labels.get(k) == v for k, v in selector)


def select_peers(
    peers: tuple[PeerConfig, ...], kube: KubernetesConfig, node: NodeView | None
) -> tuple[PeerConfig, ...]:
    """Peers whose node selector matches this node's labels."""
    labels = dict(node.labels) if node is not None else {}
    return tuple(p for p in peers if selects(kube.selector(p), labels))
