"""What one node advertises: a pure function of a cluster snapshot, the node's name and the policy.

Rules (the product's contract, see README and docs/traffic.md):

- Every configured range (cluster, external and LoadBalancer) is advertised as an aggregate from every
  eligible node, whatever the Services are -- unless the range is ``host-routes-only`` (a single-address
  range is, by default). Calico's model; ``serviceLoadBalancerAggregation`` is the anchor.
- A Service with ``externalTrafficPolicy: Local`` gets a host route (/32, /128) per address inside a
  configured range, from this node only if one of its EndpointSlices of the address's family has an
  endpoint on this node that is ready (``ready`` true or unset) -- or, with endpoint policy
  ``serving``, still serving while terminating. Dual-stack is decided per family.
- A Cluster-policy Service's address in an aggregate range is covered by the aggregate (its external and
  LoadBalancer addresses are listed as reasons of the aggregate). In a host-routes-only range it gets a
  route of its own from every eligible node: the host route, or the prefix of the range's
  ``aggregation_length`` containing it (MetalLB's ``aggregationLength``); with
  ``require_ready_endpoint``, only while the Service has a ready endpoint of that family somewhere in
  the cluster (failover to another site without a catching aggregate).
- Headless and ExternalName services, and services annotated ``bgpsvc.io/advertise: "false"``, are
  skipped. A node labelled ``node.kubernetes.io/exclude-from-external-load-balancers`` advertises
  nothing (unless that is turned off).
- Address families: a Service has the families of its ``spec.ipFamilies`` (on objects written before
  that field existed: the families of its ``clusterIPs``; none at all without a cluster IP). Only
  addresses of those families are advertised and only EndpointSlices whose ``addressType`` is one of
  them count: kube-proxy programs nothing for a family the Service does not have.
- A prefix wanted by several services is advertised once; it goes when none wants it. The attributes
  are the winning class's (``CLASS_PRIORITY``), with the Services' annotation attributes merged over
  them when only Services (no whole range) want the prefix, and -- for the classes configured -- a
  Link Bandwidth community proportional to this node's ready endpoints behind the prefix (a whole
  range: those of its Cluster-policy Services; Local Services have their own host routes).
- Only addresses inside the configured ranges are ever advertised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter

from ..rib import RouteAttrs
from ..wire import AS_TRANS, ExtendedCommunity, Prefix
from .addresses import Range, containing, parse_ip, ranges_of
from .annotations import ServiceAttrs, combined, service_attrs
from .policy import (
    CLASS_PRIORITY,
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
)
from .views import EXCLUDE_LB_LABEL, EndpointSliceView, Key, NodeView, ServiceView, endpoint_counts

__all__ = [
    "CLASS_PRIORITY",
    "CLUSTER_IP",
    "CLUSTER_RANGE",
    "EXTERNAL_IP",
    "LOADBALANCER_IP",
    "AdvertisePolicy",
    "Evaluation",
    "Problem",
    "Reason",
    "Snapshot",
    "desired_routes",
    "evaluate",
    "explain",
    "local_endpoints",
    "node_eligible",
    "reason_order",
    "route_class",
    "routes_from",
    "service_families",
]


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


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """A Service whose annotations could not be used (it is advertised with the class attributes)."""

    service: Key
    text: str

    def __str__(self) -> str:
        return f"{self.service[0]}/{self.service[1]}: {self.text}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything ``node`` advertises for one snapshot: reasons, attributes, weights and problems."""

    reasons: Mapping[Prefix, tuple[Reason, ...]]
    routes: Mapping[Prefix, RouteAttrs]
    #: Ready local endpoints behind each prefix that carries a Link Bandwidth community.
    weights: Mapping[Prefix, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


#: (route class, its configured ranges, the Service's addresses of that class)
_Class = tuple[str, tuple[Range, ...], Callable[[ServiceView], tuple[str, ...]]]


def local_endpoints(snapshot: Snapshot, node: str, policy: str) -> dict[tuple[Key, str], tuple[str, ...]]:
    """(Service, address family) -> this node's endpoints that count, in one pass.

    An endpoint is named by its first address (EndpointSlice API: consumers may use only the first), so
    the tuple's length is the number of endpoints: the weight of a Link Bandwidth community.
    """
    found: dict[tuple[Key, str], set[str]] = {}
    for s in snapshot.slices.values():
        if not s.service_name:
            continue
        key: tuple[Key, str] | None = None
        for ep in s.endpoints:
            if ep.node_name == node and ep.addresses and endpoint_counts(ep.ready, ep.serving, policy):
                if key is None:
                    key = ((s.namespace, s.service_name), s.address_type)
                found.setdefault(key, set()).add(ep.addresses[0])
    return {k: tuple(sorted(v)) for k, v in found.items()}


def ready_anywhere(snapshot: Snapshot, policy: str) -> frozenset[tuple[Key, str]]:
    """(Service, address family) pairs with a counting endpoint on any node (the slices' summaries)."""
    return frozenset(
        ((s.namespace, s.service_name), s.address_type)
        for s in snapshot.slices.values()
        if s.service_name and s.ready_anywhere(policy)
    )


def node_eligible(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> bool:
    """False when the node carries the exclusion label (and the policy honours it)."""
    view = snapshot.nodes.get(("", node))
    return not (policy.honour_exclude_label and view is not None and view.label(EXCLUDE_LB_LABEL) is not None)


def service_families(svc: ServiceView) -> tuple[str, ...]:
    """The address families a Service has: ``spec.ipFamilies``, else those of its cluster IPs."""
    if svc.ip_families:
        return svc.ip_families
    return tuple(p[3] for ip in svc.cluster_ips if (p := parse_ip(ip)) is not None)


# Why an address of a Service is not advertised (``bgpsvc plan``); see ``whynot``.
SKIP_FAMILY = "family not in the Service's ipFamilies"
SKIP_OUTSIDE = "outside every configured range"
SKIP_NO_LOCAL = "no ready endpoint of that family on this node"
SKIP_NO_ENDPOINT = "no ready endpoint of that family in the cluster"
SKIP_INVALID = "not an IP address"


@dataclass(frozen=True, slots=True)
class Context:
    """What one evaluation needs besides the Services: ranges per class, endpoints, the policy."""

    policy: AdvertisePolicy
    node: str
    #: (class, its ranges, the Service's addresses of that class) for every class
    classes: tuple[_Class, ...]
    local: Mapping[tuple[Key, str], tuple[str, ...]]
    anywhere: frozenset[tuple[Key, str]]
    #: The classes with ranges, for Local Services; those where a Cluster-policy Service's address can
    #: need a route or a weight, for the others.
    for_local: tuple[_Class, ...] = ()
    for_cluster: tuple[_Class, ...] = ()

    @classmethod
    def build(cls, snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> Context:
        """Precompute the per-snapshot parts."""
        classes: list[_Class] = []
        for_cluster: list[_Class] = []
        for name, nets, attr in (
            (CLUSTER_IP, policy.service_cluster_ips, "cluster_ips"),
            (EXTERNAL_IP, policy.service_external_ips, "external_ips"),
            (LOADBALANCER_IP, policy.service_loadbalancer_ips, "lb_ips"),
        ):
            entry = (name, ranges_of(nets, policy), attrgetter(attr))
            classes.append(entry)
            # Cluster-policy cluster IPs in aggregate ranges add nothing unless the aggregate is weighted:
            # skipping them keeps a 100k-Service reconcile from parsing every cluster IP for nothing.
            if entry[1] and (
                name != CLUSTER_IP
                or CLUSTER_RANGE in policy.link_bandwidth.classes
                or any(r[4].host_routes_only for r in entry[1])
            ):
                for_cluster.append(entry)
        needs_anywhere = any(s.require_ready_endpoint for s in policy.ranges)
        return cls(
            policy,
            node,
            tuple(classes),
            local_endpoints(snapshot, node, policy.endpoint_policy),
            ready_anywhere(snapshot, policy.endpoint_policy) if needs_anywhere else frozenset(),
            tuple(c for c in classes if c[1]),
            tuple(for_cluster),
        )


def service_skip(svc: ServiceView) -> str | None:
    """Why a whole Service is never advertised, or None."""
    if svc.type == "ExternalName":
        return "ExternalName"
    if svc.headless:
        return "headless"
    if not svc.advertise:
        return "opted out (bgpsvc.io/advertise: false)"
    return None


#: A decision for one address: (prefix, reason or None when only the weight counts, local endpoints).
Decision = tuple[Prefix, Reason | None, int]


def decide(
    ctx: Context,
    cls: str,
    ranges: tuple[Range, ...],
    svc: ServiceView,
    ip: str,
    *,
    key: Key,
    families: tuple[str, ...],
) -> Decision | str:
    """The route one address of a Service calls for (the module docstring's rules), or why none."""
    parsed = parse_ip(ip)
    if parsed is None:
        return SKIP_INVALID
    if parsed[3] not in families:
        return SKIP_FAMILY  # kube-proxy programs nothing for a family the Service does not have
    entry = containing(parsed, ranges)
    if entry is None:
        return SKIP_OUTSIDE
    # Only slices of the address's family count, and that family is one of the Service's.
    eps = ctx.local.get((key, parsed[3]), ())
    if svc.local:
        if not eps:
            return SKIP_NO_LOCAL
        return parsed[2], Reason(cls, key, eps), len(eps)
    spec = entry[4]
    if not spec.host_routes_only:
        aggregate = Prefix.from_network(entry[3])
        # The aggregate covers it: a cluster IP adds only its weight; external/LB IPs are named reasons.
        return aggregate, (None if cls == CLUSTER_IP else Reason(cls, key)), len(eps)
    if spec.require_ready_endpoint and (key, parsed[3]) not in ctx.anywhere:
        return SKIP_NO_ENDPOINT
    if spec.length == entry[3].max_prefixlen:
        return parsed[2], Reason(cls, key), len(eps)
    net = ipaddress.ip_network((ip, spec.length), strict=False)
    return Prefix.from_network(net), Reason(cls, key), len(eps)


def evaluate(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> Evaluation:
    """Every prefix ``node`` advertises, with reasons (sorted), attributes, weights and problems."""
    if not node_eligible(snapshot, node, policy):
        return Evaluation({}, {})
    ctx = Context.build(snapshot, node, policy)
    weighted = set(policy.link_bandwidth.classes)
    reasons: dict[Prefix, set[Reason]] = {}
    counts: dict[tuple[Prefix, str], int] = {}
    for name, ranges, _ in ctx.classes:
        for r in ranges:
            if not r[4].host_routes_only:
                agg_cls = CLUSTER_RANGE if name == CLUSTER_IP else name
                prefix = Prefix.from_network(r[3])
                reasons.setdefault(prefix, set()).add(Reason(agg_cls))
                if agg_cls in weighted:
                    counts.setdefault((prefix, agg_cls), 0)
    problems: list[Problem] = []
    annotated = False
    for key, svc in snapshot.services.items():
        if svc.type == "ExternalName" or svc.headless or not svc.advertise:
            continue  # service_skip, inline: this loop runs once per Service per reconcile
        if svc.annotations:
            parsed = service_attrs(svc.annotations)
            annotated = annotated or parsed is not None
            if isinstance(parsed, str):
                problems.append(Problem(key, parsed))
        families: tuple[str, ...] | None = None
        seen: set[tuple[Prefix, str]] | None = set() if weighted else None
        for cls, ranges, addresses in (
            ctx.for_local if svc.external_traffic_policy == "Local" else ctx.for_cluster
        ):
            ips = addresses(svc)
            if not ips:
                continue
            if families is None:
                families = svc.ip_families or service_families(svc)
            for ip in ips:
                d = decide(ctx, cls, ranges, svc, ip, key=key, families=families)
                if isinstance(d, str):
                    continue
                prefix, reason, n = d
                if reason is not None:
                    reasons.setdefault(prefix, set()).add(reason)
                w_cls = reason.route_class if reason is not None else CLUSTER_RANGE
                if seen is not None and w_cls in weighted and (prefix, w_cls) not in seen:
                    seen.add((prefix, w_cls))  # a Service's endpoints count once per route
                    counts[(prefix, w_cls)] = counts.get((prefix, w_cls), 0) + n
    explained = {p: tuple(sorted(r, key=reason_order)) for p, r in reasons.items()}
    routes, weights = _attributes(snapshot, policy, explained, counts, annotated)
    return Evaluation(explained, routes, weights, tuple(sorted(problems)))


def reason_order(r: Reason) -> tuple[str, Key, tuple[str, ...]]:
    """Sort key of reasons: a range's own reason (no Service) first within its class."""
    return (r.route_class, r.service or ("", ""), r.endpoints)


def _attributes(
    snapshot: Snapshot,
    policy: AdvertisePolicy,
    explained: Mapping[Prefix, tuple[Reason, ...]],
    counts: Mapping[tuple[Prefix, str], int],
    annotated: bool,
) -> tuple[dict[Prefix, RouteAttrs], dict[Prefix, int]]:
    """Each prefix's attributes: class, Service annotations, Link Bandwidth (RFC 10005)."""
    if not annotated and not counts:
        return routes_from(explained, policy), {}
    lb = policy.link_bandwidth
    asn = lb.asn if lb.asn is not None else AS_TRANS
    built: dict[tuple[str, ServiceAttrs | None, int | None], RouteAttrs] = {}
    routes: dict[Prefix, RouteAttrs] = {}
    weights: dict[Prefix, int] = {}
    for prefix, reasons in explained.items():
        cls = route_class(reasons)
        extra = _service_attrs(snapshot, reasons, cls) if annotated else None
        count = counts.get((prefix, cls))
        if count is not None:
            weights[prefix] = count
        key = (cls, extra, count)
        attrs = built.get(key)
        if attrs is None:
            attrs = policy.attrs(cls)
            if extra is not None:
                attrs = extra.merge(attrs)
            if count is not None:
                community = ExtendedCommunity.link_bandwidth(asn, lb.bytes_per_second(count), lb.transitive)
                attrs = replace(attrs, extended_communities=(*attrs.extended_communities, community))
            built[key] = attrs
        routes[prefix] = attrs
    return routes, weights


def _service_attrs(snapshot: Snapshot, reasons: tuple[Reason, ...], cls: str) -> ServiceAttrs | None:
    """The annotation attributes of the Services behind a prefix (None for a whole range's aggregate)."""
    parts = []
    for r in reasons:
        if r.route_class != cls:
            continue
        if r.service is None:
            return None  # the range's own aggregate carries the class attributes alone
        svc = snapshot.services.get(r.service)
        value = service_attrs(svc.annotations) if svc is not None and svc.annotations else None
        if isinstance(value, ServiceAttrs):
            parts.append(value)
    return combined(parts)


def explain(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, tuple[Reason, ...]]:
    """Every prefix this node advertises, with the reasons (sorted), for ``bgpsvc plan``."""
    return dict(evaluate(snapshot, node, policy).reasons)


def route_class(reasons: tuple[Reason, ...]) -> str:
    """The class whose attributes a prefix gets when several want it."""
    classes = {r.route_class for r in reasons}
    return next(c for c in CLASS_PRIORITY if c in classes)


def routes_from(
    explained: Mapping[Prefix, tuple[Reason, ...]], policy: AdvertisePolicy
) -> dict[Prefix, RouteAttrs]:
    """Class attributes for each explained prefix (no annotations or weights: see ``evaluate``)."""
    return {prefix: policy.attrs(route_class(reasons)) for prefix, reasons in explained.items()}


def desired_routes(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, RouteAttrs]:
    """The whole set of routes ``node`` advertises, with their attributes."""
    return dict(evaluate(snapshot, node, policy).routes)
