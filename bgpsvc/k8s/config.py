"""The node speaker's Kubernetes settings: what only makes sense on a Kubernetes node.

Peers are ``bgpsvc.fsm.PeerConfig``; which nodes a peer applies to (its node selector), where the
router ID and local AS come from, and what to advertise live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..fsm import PeerConfig
from ..fsm.config import doc
from .desired import AdvertisePolicy
from .views import NodeView

Selector = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    """The ``kubernetes:`` section of a node speaker's configuration."""

    node_name: str = field(
        metadata=doc("this node's Node name (default: the NODE_NAME environment variable)")
    )
    kubeconfig: str | None = field(
        default=None,
        metadata=doc("kubeconfig file (default: KUBECONFIG; in a pod without one: the service account)"),
    )
    #: What to advertise: the ``kubernetes:`` keys of ``AdvertisePolicy`` (read flat, beside these).
    policy: AdvertisePolicy = field(default_factory=AdvertisePolicy)
    debounce: float = field(
        default=0.01, metadata=doc("seconds to coalesce a burst of watch events before reconciling")
    )
    full_resync: float = field(
        default=300.0,
        metadata=doc(
            "seconds between full recomputes of the desired routes (watch events recompute only the "
            "Services they touch; the full one is the safety net and checks them)"
        ),
    )
    local_as_key: str = field(
        default="bgpsvc.io/local-as",
        metadata=doc("node label or annotation whose value overrides local_as on that node"),
    )
    #: Take the router ID from the node's InternalIP (the config gives no router_id).
    router_id_from_node: bool = False
    #: (peer address, port) -> node labels the peer applies to (``peers[].node_selector``).
    node_selectors: Mapping[tuple[str, int], Selector] = field(default_factory=dict)
    custom_resources: bool = field(
        default=True,
        metadata=doc(
            "read the bgpsvc.io custom resources (BGPPeer, BGPAdvertisement, BGPNodeConfig) and write "
            "this node's BGPNodeStatus; false: the file alone configures the speaker"
        ),
    )
    secret_namespace: str = field(
        default="bgpsvc-system",
        metadata=doc(
            "namespace of the Secrets BGPPeers name in passwordSecretRef (default: POD_NAMESPACE, "
            "bgpsvc's own namespace; RBAC lets the speaker read only the Secrets the chart lists)"
        ),
    )
    status_interval: float = field(
        default=5.0,
        metadata=doc("at most one BGPNodeStatus write per this many seconds (0: write no status)"),
    )
    lease_poll: float = field(
        default=30.0,
        metadata=doc(
            "seconds between a follower's reads of the Lease bgpsvc-conditions (+-20%): the speaker that "
            "holds it watches every Node and writes conditions; a dead holder is replaced within about "
            "this + 15 s. Each follower costs one GET per this many seconds (5,000 nodes at 30 s: 167/s)"
        ),
    )

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
