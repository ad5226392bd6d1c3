"""What one node advertises: a pure function of a cluster snapshot, the node's name and the policy.

Rules (the product's contract, see README):

- Service cluster IP ranges are advertised from every eligible node (ECMP across the cluster).
- A Service with ``externalTrafficPolicy: Local`` gets a host route (/32, /128) per cluster IP, from
  this node only if one of its EndpointSlices of the IP's family has an endpoint on this node that is
  ready (``ready`` true or unset) -- or, with endpoint policy ``serving``, still serving while
  terminating. Dual-stack is decided per family.
- External IPs and LoadBalancer ingress IPs inside the configured ranges: host routes from endpoint
  nodes for Local services; for Cluster services the configured range entry that contains the IP (an
  aggregate) from every node, or the host route when the entry is a single address.
- Headless and ExternalName services, and services annotated ``bgpsvc.io/advertise: "false"``, are
  skipped. A node labelled ``node.kubernetes.io/exclude-from-external-load-balancers`` advertises
  nothing (unless that is turned off).
- Address families: a Service has the families of its ``spec.ipFamilies`` (on objects written before
  that field existed: the families of its ``clusterIPs``; none at all without a cluster IP). Only
  addresses of those families are advertised -- cluster, external and LoadBalancer IPs, Local and
  Cluster policy alike -- and only EndpointSlices whose ``addressType`` is one of them count: kube-proxy
  programs nothing for a family the Service does not have, so such an address would be a black hole
  (an IPv6-only Service with an IPv4 external IP and an IPv4 slice advertises no IPv4 route).
- A prefix wanted by several services is advertised once; it goes when none wants it.
- Only addresses inside the configured ranges are ever advertised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..fsm.config import doc
from ..rib import RouteAttrs
from ..wire import Prefix
from .views import EXCLUDE_LB_LABEL, EndpointSliceView, Key, NodeView, ServiceView

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CLUSTER_RANGE = "cluster-range"
CLUSTER_IP = "cluster-ip"
EXTERNAL_IP = "external-ip"
LOADBALANCER_IP = "loadbalancer-ip"
#: When classes want the same prefix, the attributes of the more specific class win.
CLASS_PRIORITY = (CLUSTER_IP, LOADBALANCER_IP, EXTERNAL_IP, CLUSTER_RANGE)


@dataclass(frozen=True, slots=True)
class AdvertisePolicy:
    """Which ranges to advertise, how to judge endpoints, and per-class BGP attributes."""

    service_cluster_ips: tuple[IPNetwork, ...] = field(
        default=(),
        metadata=doc(
            "the Service CIDRs (kube-apiserver --service-cluster-ip-range), advertised from every node "
            "(ECMP); also from BGPSVC_ADVERTISE_CLUSTER_IPS or CALICO_ADVERTISE_CLUSTER_IPS (comma-separated)"
        ),
    )
    service_external_ips: tuple[IPNetwork, ...] = field(
        default=(),
        metadata=doc("ranges Service externalIPs may come from; only addresses inside are advertised"),
    )
    service_loadbalancer_ips: tuple[IPNetwork, ...] = field(
        default=(),
        metadata=doc(
            "ranges LoadBalancer ingress IPs (assigned by an IP allocator, not by bgpsvc) may come "
            "from; only addresses inside are advertised"
        ),
    )
    endpoint_policy: str = field(
        default="ready",
        metadata=doc(
            "'ready', or 'serving': also keep terminating endpoints that still serve (Local services)"
        ),
    )
    honour_exclude_label: bool = field(
        default=True,
        metadata=doc(
            "a node labelled node.kubernetes.io/exclude-from-external-load-balancers advertises nothing"
        ),
    )
    attributes: Mapping[str, RouteAttrs] = field(
        default_factory=dict,
        metadata=doc(
            "route attributes per route class: cluster-range, cluster-ip, external-ip, loadbalancer-ip"
        ),
    )

    def __post_init__(self) -> None:
        if self.endpoint_policy not in ("ready", "serving"):
            raise ValueError("endpoint_policy: must be 'ready' or 'serving'")
        unknown = set(self.attributes) - set(CLASS_PRIORITY)
        if unknown:
            raise ValueError(
                f"attributes: unknown route class {sorted(unknown)[0]!r} (use {', '.join(CLASS_PRIORITY)})"
            )

    def attrs(self, route_class: str) -> RouteAttrs:
        """Attributes for a route class."""
        return self.attributes.get(route_class) or _DEFAULT


_DEFAULT = RouteAttrs()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent view of the cluster at one moment."""

    services: Mapping[Key, ServiceView] = field(default_factory=dict)
    slices: Mapping[Key, EndpointSliceView] = field(default_factory=dict)
    nodes: Mapping[Key, NodeView] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, order=True)
class Reason:
    """Why a prefix is advertised: its class, the Service (if any) and the local endpoints that justify it."""

    route_class: str
    service: Key | None = None
    endpoints: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.service is None:
            return self.route_class
        text = f"{self.route_class} {self.service[0]}/{self.service[1]}"
        return f"{text} (endpoints {', '.join(self.endpoints)})" if self.endpoints else text


_FAMILY = {4: "IPv4", 6: "IPv6"}  # IP version -> Service ipFamilies / EndpointSlice addressType
_Range = tuple[int, int, int, IPNetwork]  # (version, network as int, prefix length, network)
_Parsed = tuple[int, int, Prefix, str]  # (version, address as int, host prefix, family name)
_IP_CACHE: dict[str, _Parsed | None] = {}
#: Bound on the parse cache: 256k addresses is several times the Service IPs of a very large cluster
#: (a few MB); cleared wholesale when full, so churn cannot grow it without limit.
_IP_CACHE_MAX = 1 << 18


def _parse(ip: str) -> _Parsed | None:
    """(version, address as int, host prefix, family), cached: the same IPs are seen every reconcile."""
    hit = _IP_CACHE.get(ip, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    try:
        addr = ipaddress.ip_address(ip)
        val: _Parsed | None = (addr.version, int(addr), Prefix.host(addr), _FAMILY[addr.version])
    except ValueError:
        val = None
    if len(_IP_CACHE) >= _IP_CACHE_MAX:
        _IP_CACHE.clear()
    _IP_CACHE[ip] = val
    return val


def _ranges(nets: Iterable[IPNetwork]) -> tuple[_Range, ...]:
    # Longest first, so the first match is the most specific entry.
    return tuple(
        sorted(((n.version, int(n.network_address), n.prefixlen, n) for n in nets), key=lambda r: -r[2])
    )


def _containing(parsed: _Parsed, ranges: tuple[_Range, ...]) -> IPNetwork | None:
    version, value = parsed[0], parsed[1]
    for r_version, r_net, r_len, net in ranges:
        bits = 32 if r_version == 4 else 128
        if r_version == version and (value >> (bits - r_len)) == (r_net >> (bits - r_len)):
            return net
    return None


def _endpoint_ok(ep_ready: bool | None, ep_serving: bool | None, policy: str) -> bool:
    # EndpointConditions: a nil "ready" means ready; a nil "serving" defers to "ready".
    ready = ep_ready is not False
    if policy == "serving":
        return ep_serving if ep_serving is not None else ready
    return ready


def local_endpoints(snapshot: Snapshot, node: str, policy: str) -> dict[tuple[Key, str], tuple[str, ...]]:
    """(Service, address family) -> addresses of this node's endpoints that count, in one pass."""
    found: dict[tuple[Key, str], set[str]] = {}
    for s in snapshot.slices.values():
        if not s.service_name:
            continue
        key: tuple[Key, str] | None = None
        for ep in s.endpoints:
            if ep.node_name == node and _endpoint_ok(ep.ready, ep.serving, policy):
                if key is None:
                    key = ((s.namespace, s.service_name), s.address_type)
                found.setdefault(key, set()).update(ep.addresses)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def node_eligible(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> bool:
    """False when the node carries the exclusion label (and the policy honours it)."""
    view = snapshot.nodes.get(("", node))
    return not (policy.honour_exclude_label and view is not None and view.label(EXCLUDE_LB_LABEL) is not None)


def service_families(svc: ServiceView) -> tuple[str, ...]:
    """The address families a Service has: ``spec.ipFamilies``, else those of its cluster IPs."""
    if svc.ip_families:
        return svc.ip_families
    return tuple(p[3] for ip in svc.cluster_ips if (p := _parse(ip)) is not None)


def explain(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, tuple[Reason, ...]]:
    """Every prefix this node advertises, with the reasons (sorted), for ``bgpsvc plan``."""
    if not node_eligible(snapshot, node, policy):
        return {}
    reasons: dict[Prefix, set[Reason]] = {}
    for net in policy.service_cluster_ips:
        reasons.setdefault(Prefix.from_network(net), set()).add(Reason(CLUSTER_RANGE))
    cluster_ranges = _ranges(policy.service_cluster_ips)
    external_ranges = _ranges(policy.service_external_ips)
    lb_ranges = _ranges(policy.service_loadbalancer_ips)
    local = local_endpoints(snapshot, node, policy.endpoint_policy)
    for key, svc in snapshot.services.items():
        if svc.type == "ExternalName" or svc.headless or not svc.advertise:
            continue
        families = svc.ip_families or service_families(svc)
        # A Cluster-policy Service's cluster IP is covered by the cluster range: no route of its own.
        if svc.local and svc.cluster_ips and cluster_ranges:
            _want(
                reasons,
                CLUSTER_IP,
                key,
                svc,
                ips=svc.cluster_ips,
                ranges=cluster_ranges,
                families=families,
                local=local,
            )
        if svc.external_ips and external_ranges:
            _want(
                reasons,
                EXTERNAL_IP,
                key,
                svc,
                ips=svc.external_ips,
                ranges=external_ranges,
                families=families,
                local=local,
            )
        if svc.lb_ips and lb_ranges:
            _want(
                reasons,
                LOADBALANCER_IP,
                key,
                svc,
                ips=svc.lb_ips,
                ranges=lb_ranges,
                families=families,
                local=local,
            )
    return {p: tuple(sorted(r)) for p, r in reasons.items()}


def _want(
    reasons: dict[Prefix, set[Reason]],
    cls: str,
    key: Key,
    svc: ServiceView,
    *,
    ips: tuple[str, ...],
    ranges: tuple[_Range, ...],
    families: tuple[str, ...],
    local: Mapping[tuple[Key, str], tuple[str, ...]],
) -> None:
    """Add the routes one class of a Service's addresses calls for (the module docstring's rules)."""
    for ip in ips:
        parsed = _parse(ip)
        if parsed is None or parsed[3] not in families:
            continue  # kube-proxy programs nothing for a family the Service does not have
        entry = _containing(parsed, ranges)
        if entry is None:
            continue
        if svc.local:
            # Only slices of the address's family count, and that family is one of the Service's.
            eps = local.get((key, parsed[3]))
            if not eps:
                continue
            prefix, reason = parsed[2], Reason(cls, key, eps)
        elif entry.prefixlen == entry.max_prefixlen:
            prefix, reason = parsed[2], Reason(cls, key)
        else:
            prefix, reason = Prefix.from_network(entry), Reason(cls, key)
        reasons.setdefault(prefix, set()).add(reason)


def route_class(reasons: tuple[Reason, ...]) -> str:
    """The class whose attributes a prefix gets when several want it."""
    classes = {r.route_class for r in reasons}
    return next(c for c in CLASS_PRIORITY if c in classes)


def routes_from(
    explained: Mapping[Prefix, tuple[Reason, ...]], policy: AdvertisePolicy
) -> dict[Prefix, RouteAttrs]:
    """Attributes for each explained prefix."""
    return {prefix: policy.attrs(route_class(reasons)) for prefix, reasons in explained.items()}


def desired_routes(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, RouteAttrs]:
    """The whole set of routes ``node`` advertises, with per-class attributes."""
    return routes_from(explain(snapshot, node, policy), policy)
