"""``BGPAdvertisement``: what to advertise, from which nodes, for which Services, with which attributes.

``advertise_policy`` is the one mapping from a BGPAdvertisement spec onto ``AdvertisePolicy`` (ranges,
endpoint policy, per-class attributes): a new AdvertisePolicy option gets its CRD field here and nowhere
else. Each advertisement that selects a node becomes one ``PolicyEntry``; a node's entries form a
``PolicySet``. Its desired routes are the union of each entry's ``desired.evaluate`` over the Services its
``serviceSelector`` picks (class attributes, Service annotations, link bandwidth). When several entries
want one prefix, their reasons are joined and their attributes merged (``merge_attrs``): communities and
large communities united, the highest LOCAL_PREF, the lowest MED, the rest from the first entry by name,
so the result does not depend on list order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..rib import RouteAttrs
from ..wire import Prefix, community, large_community
from .desired import (
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
    Reason,
    Snapshot,
    evaluate,
    reason_order,
)
from .labels import LabelSelector, selector_from_dict
from .policy import AGGREGATE, HOST_ROUTES_ONLY, LinkBandwidth, ServiceRange
from .resources import ObjectStatus, _meta, status_from_dict

#: CRD route class names -> ``desired``'s.
ROUTE_CLASSES = {
    "ClusterRange": CLUSTER_RANGE,
    "ClusterIP": CLUSTER_IP,
    "ExternalIP": EXTERNAL_IP,
    "LoadBalancerIP": LOADBALANCER_IP,
}
ENDPOINT_POLICIES = {"Ready": "ready", "Serving": "serving"}
AGGREGATIONS = {"Aggregate": AGGREGATE, "HostRoutesOnly": HOST_ROUTES_ONLY}
#: CRD range field -> AdvertisePolicy field.
RANGE_FIELDS = {
    "serviceClusterIPs": "service_cluster_ips",
    "serviceExternalIPs": "service_external_ips",
    "serviceLoadBalancerIPs": "service_loadbalancer_ips",
}


@dataclass(frozen=True, slots=True)
class AdvertisementResource:
    """A ``BGPAdvertisement``: its policy and its two selectors (None: everything)."""

    name: str
    generation: int = 0
    status: ObjectStatus = field(default_factory=ObjectStatus)
    policy: AdvertisePolicy | None = None  # None: ``error`` says why
    service_selector: LabelSelector | None = None
    node_selector: LabelSelector | None = None
    error: str | None = None


def _cidrs(value: object, path: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a list of CIDRs")
    out = []
    for i, v in enumerate(value):
        try:
            out.append(ipaddress.ip_network(str(v)))
        except ValueError as exc:
            raise ValueError(f"{path}[{i}]: {exc}") from None
    return tuple(out)


def _attrs(entry: Mapping[str, Any], path: str) -> RouteAttrs:
    try:
        comms = tuple(community(str(c)) for c in entry.get("communities") or [])
    except ValueError as exc:
        raise ValueError(f"{path}.communities: {exc}") from None
    try:
        larges = tuple(large_community(str(c)) for c in entry.get("largeCommunities") or [])
    except ValueError as exc:
        raise ValueError(f"{path}.largeCommunities: {exc}") from None
    try:
        return RouteAttrs(
            local_pref=entry.get("localPreference"),
            med=entry.get("med"),
            communities=comms,
            large_communities=larges,
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}.{exc}") from None


def advertise_policy(spec: Mapping[str, Any], honour_exclude_label: bool = True) -> AdvertisePolicy:
    """The ``AdvertisePolicy`` a BGPAdvertisement spec describes; ``ValueError`` names the CRD field."""
    kw: dict[str, Any] = {"honour_exclude_label": honour_exclude_label}
    for cr, py in RANGE_FIELDS.items():
        if spec.get(cr) is not None:
            kw[py] = _cidrs(spec[cr], f"spec.{cr}")
    ep = spec.get("endpointPolicy", "Ready")
    if ep not in ENDPOINT_POLICIES:
        raise ValueError(f"spec.endpointPolicy: {ep!r} (use {' or '.join(ENDPOINT_POLICIES)})")
    kw["endpoint_policy"] = ENDPOINT_POLICIES[ep]
    attributes: dict[str, RouteAttrs] = {}
    entries = spec.get("attributes") or []
    if not isinstance(entries, list):
        raise ValueError("spec.attributes: expected a list")
    for i, entry in enumerate(entries):
        path = f"spec.attributes[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{path}: expected an object")
        classes = entry.get("routeClasses") or list(ROUTE_CLASSES)
        attrs = _attrs(entry, path)
        for cls in classes:
            if cls not in ROUTE_CLASSES:
                raise ValueError(f"{path}.routeClasses: {cls!r} (use {', '.join(ROUTE_CLASSES)})")
            if ROUTE_CLASSES[cls] in attributes:
                raise ValueError(f"{path}.routeClasses: {cls} has attributes twice")
            attributes[ROUTE_CLASSES[cls]] = attrs
    kw["attributes"] = attributes
    kw["ranges"] = _ranges(spec.get("ranges") or [])
    if spec.get("linkBandwidth") is not None:
        kw["link_bandwidth"] = _link_bandwidth(spec["linkBandwidth"])
    try:
        return AdvertisePolicy(**kw)
    except ValueError as exc:
        raise ValueError(f"spec.{exc}") from None


def _ranges(entries: object) -> tuple[ServiceRange, ...]:
    if not isinstance(entries, list):
        raise ValueError("spec.ranges: expected a list")
    out = []
    for i, e in enumerate(entries):
        path = f"spec.ranges[{i}]"
        if not isinstance(e, Mapping):
            raise ValueError(f"{path}: expected an object")
        agg = e.get("aggregation")
        if agg is not None and agg not in AGGREGATIONS:
            raise ValueError(f"{path}.aggregation: {agg!r} (use {' or '.join(AGGREGATIONS)})")
        try:
            out.append(
                ServiceRange(
                    ipaddress.ip_network(str(e.get("cidr"))),
                    None if agg is None else AGGREGATIONS[agg],
                    e.get("aggregationLength"),
                    bool(e.get("requireReadyEndpoint", False)),
                )
            )
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return tuple(out)


def _link_bandwidth(spec: object) -> LinkBandwidth:
    if not isinstance(spec, Mapping):
        raise ValueError("spec.linkBandwidth: expected an object")
    classes = []
    for c in spec.get("routeClasses") or []:
        if c not in ROUTE_CLASSES:
            raise ValueError(f"spec.linkBandwidth.routeClasses: {c!r} (use {', '.join(ROUTE_CLASSES)})")
        classes.append(ROUTE_CLASSES[c])
    try:
        return LinkBandwidth(
            tuple(classes), float(spec.get("perEndpointMbps", 1.0)), bool(spec.get("transitive", True))
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"spec.linkBandwidth.{exc}") from None


def advertisement_from_dict(obj: Mapping[str, Any]) -> AdvertisementResource:
    """Build an ``AdvertisementResource`` from a BGPAdvertisement; an unusable spec sets ``error``."""
    meta = _meta(obj)
    gen = meta.get("generation")
    base = AdvertisementResource(
        str(meta.get("name") or ""), gen if isinstance(gen, int) else 0, status_from_dict(obj)
    )
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return replace(base, error="spec: required")
    try:
        svc, nodes = spec.get("serviceSelector"), spec.get("nodeSelector")
        return replace(
            base,
            policy=advertise_policy(spec),
            service_selector=None if svc is None else selector_from_dict(svc, "spec.serviceSelector"),
            node_selector=None if nodes is None else selector_from_dict(nodes, "spec.nodeSelector"),
        )
    except ValueError as exc:
        return replace(base, error=str(exc))


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One advertisement as it applies on a node."""

    name: str
    policy: AdvertisePolicy
    services: LabelSelector | None = None


def merge_attrs(attrs: Iterable[RouteAttrs]) -> RouteAttrs:
    """Attributes of a prefix several advertisements want (see the module docstring)."""
    items = list(dict.fromkeys(attrs))
    first = items[0]
    if len(items) == 1:
        return first
    prefs = [a.local_pref for a in items if a.local_pref is not None]
    meds = [a.med for a in items if a.med is not None]
    return replace(
        first,
        local_pref=max(prefs) if prefs else None,
        med=min(meds) if meds else None,
        communities=tuple(c for a in items for c in a.communities),
        large_communities=tuple(c for a in items for c in a.large_communities),
    )


Explained = dict[Prefix, tuple[Reason, ...]]


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The advertisements that apply on one node, in name order."""

    entries: tuple[PolicyEntry, ...] = ()

    def explain(self, snapshot: Snapshot, node: str) -> tuple[Explained, dict[Prefix, RouteAttrs]]:
        """Every prefix with its reasons, and its (merged) attributes."""
        reasons: dict[Prefix, set[Reason]] = {}
        wanted: dict[Prefix, list[RouteAttrs]] = {}
        for entry in self.entries:
            snap = snapshot
            if entry.services is not None:
                sel = entry.services
                services = {k: v for k, v in snapshot.services.items() if sel.matches(dict(v.labels))}
                snap = Snapshot(services, snapshot.slices, snapshot.nodes)
            ev = evaluate(snap, node, entry.policy)
            for prefix, why in ev.reasons.items():
                reasons.setdefault(prefix, set()).update(why)
                wanted.setdefault(prefix, []).append(ev.routes[prefix])
        explained = {p: tuple(sorted(r, key=reason_order)) for p, r in reasons.items()}
        # One object per distinct merge: the Adj-RIB-Out packs prefixes that share attributes together.
        merged: dict[tuple[RouteAttrs, ...], RouteAttrs] = {}
        routes = {}
        for p, attrs in wanted.items():
            key = tuple(attrs)
            routes[p] = merged.get(key) or merged.setdefault(key, merge_attrs(attrs))
        return explained, routes
