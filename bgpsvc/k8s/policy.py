"""What a node speaker advertises, as configured: ranges (and how each is advertised), endpoint policy,
per-class attributes, link bandwidth weighting and flap damping.

The dataclasses are the one source of fields, defaults and validation; each field's ``metadata["doc"]``
documents it (the YAML loader reads them, ``docs/config.md`` is generated from them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..fsm.config import doc
from ..rib import RouteAttrs

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CLUSTER_RANGE = "cluster-range"
CLUSTER_IP = "cluster-ip"
EXTERNAL_IP = "external-ip"
LOADBALANCER_IP = "loadbalancer-ip"
#: When classes want the same prefix, the attributes of the more specific class win.
CLASS_PRIORITY = (CLUSTER_IP, LOADBALANCER_IP, EXTERNAL_IP, CLUSTER_RANGE)

AGGREGATE = "aggregate"
HOST_ROUTES_ONLY = "host-routes-only"
AGGREGATIONS = (AGGREGATE, HOST_ROUTES_ONLY)
#: One Mbit/s in bytes per second: the link bandwidth community carries bytes/s (RFC 10005 §2).
MBPS = 125_000.0


@dataclass(frozen=True, slots=True)
class ServiceRange:
    """One configured range of Service addresses and how it is advertised (Calico's
    ``serviceLoadBalancerAggregation``, MetalLB's ``aggregationLength``)."""

    network: IPNetwork = field(metadata=doc("the range, as a CIDR (key: cidr)"))
    aggregation: str | None = field(
        default=None,
        metadata=doc(
            "aggregate: the whole range from every eligible node, whatever the Services are; "
            "host-routes-only: only routes for the Services' own addresses. Default: aggregate, or "
            "host-routes-only for a single address"
        ),
    )
    aggregation_length: int | None = field(
        default=None,
        metadata=doc(
            "host-routes-only: a Cluster-policy Service's address is advertised as the prefix of this "
            "length that contains it (MetalLB aggregationLength / aggregationLengthV6); Local "
            "Services always get host routes. Default: a host route",
            bounds=(0, 128),
        ),
    )
    require_ready_endpoint: bool = field(
        default=False,
        metadata=doc(
            "host-routes-only: a Cluster-policy Service's address is advertised only while the "
            "Service has a ready endpoint of that family somewhere in the cluster"
        ),
    )

    def __post_init__(self) -> None:
        if self.aggregation is not None and self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: must be {AGGREGATE} or {HOST_ROUTES_ONLY}")
        host_only = self.host_routes_only
        if self.aggregation_length is not None:
            if not host_only:
                raise ValueError(f"aggregation_length: only with aggregation: {HOST_ROUTES_ONLY}")
            if not self.network.prefixlen <= self.aggregation_length <= self.network.max_prefixlen:
                raise ValueError(
                    f"aggregation_length: must be {self.network.prefixlen}..{self.network.max_prefixlen} "
                    f"for {self.network} (never wider than the range)"
                )
        if self.require_ready_endpoint and not host_only:
            raise ValueError(f"require_ready_endpoint: only with aggregation: {HOST_ROUTES_ONLY}")

    @property
    def host_routes_only(self) -> bool:
        """No whole-range aggregate (a single-address range never has one)."""
        if self.aggregation is None:
            return self.network.prefixlen == self.network.max_prefixlen
        return self.aggregation == HOST_ROUTES_ONLY

    @property
    def length(self) -> int:
        """Prefix length of a Cluster-policy Service's route in a host-routes-only range."""
        return self.network.max_prefixlen if self.aggregation_length is None else self.aggregation_length


@dataclass(frozen=True, slots=True)
class LinkBandwidth:
    """Weighted ECMP: the Link Bandwidth extended community (RFC 10005) on the routes of chosen classes,
    proportional to this node's ready endpoints of the Service(s) and address family behind each route."""

    classes: tuple[str, ...] = field(
        default=(),
        metadata=doc("route classes that carry the community (default: none, i.e. off)"),
    )
    per_endpoint_mbps: float = field(
        default=1.0,
        metadata=doc("bandwidth per ready local endpoint, in Mbit/s (FRR's own reference is 1 Mbit/s)"),
    )
    transitive: bool = field(
        default=True,
        metadata=doc("send the transitive form (type 0x00, FRR's default); false: non-transitive (0x40)"),
    )
    asn: int | None = field(
        default=None,
        metadata=doc("AS in the community's global administrator (default: the node's local AS)", kind="asn"),
    )

    def __post_init__(self) -> None:
        unknown = set(self.classes) - set(CLASS_PRIORITY)
        if unknown:
            raise ValueError(
                f"classes: unknown route class {sorted(unknown)[0]!r} (use {', '.join(CLASS_PRIORITY)})"
            )
        if not 0 < self.per_endpoint_mbps * MBPS < 3.4e38:
            raise ValueError("per_endpoint_mbps: must be > 0 and fit an IEEE single float in bytes/s")

    def bytes_per_second(self, endpoints: int) -> float:
        """The community's value for ``endpoints`` ready local endpoints."""
        return endpoints * self.per_endpoint_mbps * MBPS


@dataclass(frozen=True, slots=True)
class Damping:
    """Flap damping of endpoint-driven routes (ExaBGP healthcheck's rise/fall, per prefix)."""

    rise: float = field(
        default=0.0,
        metadata=doc("seconds a route must be wanted (endpoints ready) before it is advertised"),
    )
    fall: float = field(
        default=0.0,
        metadata=doc("seconds a route must be unwanted before it is withdrawn (0: at once)"),
    )
    min_update_interval: float = field(
        default=0.0,
        metadata=doc("minimum seconds between two UPDATEs for the same prefix"),
    )

    def __post_init__(self) -> None:
        for name in ("rise", "fall", "min_update_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")

    @property
    def active(self) -> bool:
        """Any damping at all (all zero: routes follow the cluster at once)."""
        return bool(self.rise or self.fall or self.min_update_interval)


NO_DAMPING = Damping()


@dataclass(frozen=True, slots=True)
class AdvertisePolicy:
    """Which ranges to advertise and how, how to judge endpoints, per-class BGP attributes, weighting
    and damping."""

    service_cluster_ips: tuple[IPNetwork, ...] = field(
        default=(),
        metadata=doc("Service cluster IP ranges (CIDRs), each advertised from every eligible node"),
    )
    service_external_ips: tuple[IPNetwork, ...] = field(
        default=(), metadata=doc("ranges of Service externalIPs that may be advertised")
    )
    service_loadbalancer_ips: tuple[IPNetwork, ...] = field(
        default=(), metadata=doc("ranges of LoadBalancer ingress IPs that may be advertised")
    )
    endpoint_policy: str = field(
        default="ready",
        metadata=doc("which endpoints count: ready, or serving (also terminating-but-serving ones)"),
    )
    honour_exclude_label: bool = field(
        default=True,
        metadata=doc(
            "a node labelled node.kubernetes.io/exclude-from-external-load-balancers advertises nothing"
        ),
    )
    attributes: Mapping[str, RouteAttrs] = field(
        default_factory=dict, metadata=doc("BGP attributes per route class")
    )
    ranges: tuple[ServiceRange, ...] = field(
        default=(),
        metadata=doc(
            "per-range settings (aggregation, length, ready-endpoint rule) of ranges listed above; "
            "a range without an entry uses the defaults"
        ),
    )
    link_bandwidth: LinkBandwidth = field(
        default_factory=LinkBandwidth, metadata=doc("weighted ECMP with the Link Bandwidth community")
    )
    damping: Damping = field(default=NO_DAMPING, metadata=doc("flap damping of endpoint-driven routes"))

    def __post_init__(self) -> None:
        if self.endpoint_policy not in ("ready", "serving"):
            raise ValueError("endpoint_policy: must be 'ready' or 'serving'")
        unknown = set(self.attributes) - set(CLASS_PRIORITY)
        if unknown:
            raise ValueError(
                f"attributes: unknown route class {sorted(unknown)[0]!r} (use {', '.join(CLASS_PRIORITY)})"
            )
        listed = {*self.service_cluster_ips, *self.service_external_ips, *self.service_loadbalancer_ips}
        for spec in self.ranges:
            if spec.network not in listed:
                raise ValueError(f"ranges: {spec.network} is not one of the configured ranges")

    def attrs(self, route_class: str) -> RouteAttrs:
        """Attributes for a route class."""
        return self.attributes.get(route_class) or _DEFAULT

    def range_spec(self, network: IPNetwork) -> ServiceRange:
        """The settings of one configured range (defaults when it has no entry in ``ranges``)."""
        for spec in self.ranges:
            if spec.network == network:
                return spec
        return ServiceRange(network)


_DEFAULT = RouteAttrs()
