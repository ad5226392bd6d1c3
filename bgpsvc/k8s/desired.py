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
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from operator import attrgetter

from ..rib import RouteAttrs
from ..wire import Prefix
from .addresses import Range, containing, parse_ip, ranges_of
from .annotations import ServiceAttrs, service_attrs
from .policy import (
    CLASS_PRIORITY,
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
)
from .reasons import Problem, Reason, attributes, reason_order, route_class, routes_from
from .views import EXCLUDE_LB_LABEL, EndpointSliceView, Key, NodeView, ServiceView, endpoint_counts

__all__ = [
    "CLASS_PRIORITY",
    "CLUSTER_IP",
    "CLUSTER_RANGE",
    "EXTERNAL_IP",
    "LOADBALANCER_IP",
    "AdvertisePolicy",
    "Contribution",
    "Evaluation",
    "Problem",
    "Reason",
    "Snapshot",
    "contribution",
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
    anywhere: AbstractSet[tuple[Key, str]]
    #: The classes with ranges, for Local Services; those where a Cluster-policy Service's address can
    #: need a route or a weight, for the others.
    for_local: tuple[_Class, ...] = ()
    for_cluster: tuple[_Class, ...] = ()

    @classmethod
    def build(cls, snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> Context:
        """Precompute the per-snapshot parts."""
        needs_anywhere = any(s.require_ready_endpoint for s in policy.ranges)
        return cls.of(
            policy,
            node,
            local_endpoints(snapshot, node, policy.endpoint_policy),
            ready_anywhere(snapshot, policy.endpoint_policy) if needs_anywhere else frozenset(),
        )

    @classmethod
    def of(
        cls,
        policy: AdvertisePolicy,
        node: str,
        local: Mapping[tuple[Key, str], tuple[str, ...]],
        anywhere: AbstractSet[tuple[Key, str]],
    ) -> Context:
        """A context from the policy and given endpoint facts (the incremental reconcile's, per Service)."""
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
        return cls(
            policy,
            node,
            tuple(classes),
            local,
            anywhere,
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


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one Service adds to a node's routes: ``evaluate`` sums them; the incremental reconcile keeps
    one per Service and swaps it when the Service or its EndpointSlices change."""

    reasons: tuple[tuple[Prefix, Reason], ...] = ()
    #: (prefix, weighted class, this Service's local endpoints behind it), once per route.
    counts: tuple[tuple[Prefix, str, int], ...] = ()
    problem: Problem | None = None
    #: Its annotation attributes, when they parse.
    attrs: ServiceAttrs | None = None


def contribution(ctx: Context, key: Key, svc: ServiceView, weighted: AbstractSet[str]) -> Contribution | None:
    """The routes one Service calls for on this node (the module docstring's rules); None: nothing."""
    if svc.type == "ExternalName" or svc.headless or not svc.advertise:
        return None  # service_skip, inline: this runs once per Service per full reconcile
    problem: Problem | None = None
    extra: ServiceAttrs | None = None
    if svc.annotations:
        parsed = service_attrs(svc.annotations)
        if isinstance(parsed, str):
            problem = Problem(key, parsed)
        else:
            extra = parsed
    families: tuple[str, ...] | None = None
    reasons: list[tuple[Prefix, Reason]] = []
    counts: dict[tuple[Prefix, str], int] = {}
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
                reasons.append((prefix, reason))
            w_cls = reason.route_class if reason is not None else CLUSTER_RANGE
            if w_cls in weighted and (prefix, w_cls) not in counts:
                counts[(prefix, w_cls)] = n  # a Service's endpoints count once per route
    if not reasons and not counts and problem is None and extra is None:
        return None
    return Contribution(tuple(reasons), tuple((p, c, n) for (p, c), n in counts.items()), problem, extra)


def range_reasons(ctx: Context, weighted: AbstractSet[str]) -> Iterator[tuple[Prefix, Reason, bool]]:
    """Each aggregate range's own reason, and whether its route carries a weight."""
    for name, ranges, _ in ctx.classes:
        for r in ranges:
            if not r[4].host_routes_only:
                agg_cls = CLUSTER_RANGE if name == CLUSTER_IP else name
                yield Prefix.from_network(r[3]), Reason(agg_cls), agg_cls in weighted


def evaluate(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> Evaluation:
    """Every prefix ``node`` advertises, with reasons (sorted), attributes, weights and problems."""
    if not node_eligible(snapshot, node, policy):
        return Evaluation({}, {})
    ctx = Context.build(snapshot, node, policy)
    weighted = frozenset(policy.link_bandwidth.classes)
    reasons: dict[Prefix, set[Reason]] = {}
    counts: dict[tuple[Prefix, str], int] = {}
    for prefix, reason, weighed in range_reasons(ctx, weighted):
        reasons.setdefault(prefix, set()).add(reason)
        if weighed:
            counts.setdefault((prefix, reason.route_class), 0)
    problems: list[Problem] = []
    svc_attrs: dict[Key, ServiceAttrs] = {}
    for key, svc in snapshot.services.items():
        c = contribution(ctx, key, svc, weighted)
        if c is None:
            continue
        if c.attrs is not None:
            svc_attrs[key] = c.attrs
        if c.problem is not None:
            problems.append(c.problem)
        for prefix, reason in c.reasons:
            reasons.setdefault(prefix, set()).add(reason)
        for prefix, w_cls, n in c.counts:
            counts[(prefix, w_cls)] = counts.get((prefix, w_cls), 0) + n
    explained = {p: tuple(sorted(r, key=reason_order)) for p, r in reasons.items()}
    routes, weights = attributes(policy, explained, counts, svc_attrs)
    return Evaluation(explained, routes, weights, tuple(sorted(problems)))


def explain(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, tuple[Reason, ...]]:
    """Every prefix this node advertises, with the reasons (sorted), for ``bgpsvc plan``."""
    return dict(evaluate(snapshot, node, policy).reasons)


def desired_routes(snapshot: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, RouteAttrs]:
    """The whole set of routes ``node`` advertises, with their attributes."""
    return dict(evaluate(snapshot, node, policy).routes)
