"""Why a prefix is advertised (``Reason``), which class wins, and the attributes that follow.

Split from ``desired`` so that the full evaluation and the incremental reconcile build a prefix's
attributes with the same code: class attributes, Service annotations merged over them, and a Link
Bandwidth community (RFC 10005 -- draft-ietf-idr-link-bandwidth) for the weighted classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..rib import RouteAttrs
from ..wire import AS_TRANS, ExtendedCommunity, Prefix
from .annotations import ServiceAttrs, combined
from .policy import CLASS_PRIORITY, AdvertisePolicy
from .views import Key

__all__ = [
    "AttrsCache",
    "Problem",
    "Reason",
    "attributes",
    "reason_order",
    "route_attrs",
    "route_class",
    "routes_from",
    "service_extra",
]


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


def reason_order(r: Reason) -> tuple[str, Key, tuple[str, ...]]:
    """Sort key of reasons: a range's own reason (no Service) first within its class."""
    return (r.route_class, r.service or ("", ""), r.endpoints)


#: (class, annotation attributes, weight) -> the attributes built for them, shared by equal routes.
AttrsCache = dict[tuple[str, ServiceAttrs | None, int | None], RouteAttrs]


def route_attrs(
    policy: AdvertisePolicy, cls: str, extra: ServiceAttrs | None, count: int | None, built: AttrsCache
) -> RouteAttrs:
    """One prefix's attributes: its class's, Service annotations over them, Link Bandwidth (RFC 10005)."""
    key = (cls, extra, count)
    attrs = built.get(key)
    if attrs is None:
        attrs = policy.attrs(cls)
        if extra is not None:
            attrs = extra.merge(attrs)
        if count is not None:
            lb = policy.link_bandwidth
            asn = lb.asn if lb.asn is not None else AS_TRANS
            community = ExtendedCommunity.link_bandwidth(asn, lb.bytes_per_second(count), lb.transitive)
            attrs = replace(attrs, extended_communities=(*attrs.extended_communities, community))
        built[key] = attrs
    return attrs


def attributes(
    policy: AdvertisePolicy,
    explained: Mapping[Prefix, tuple[Reason, ...]],
    counts: Mapping[tuple[Prefix, str], int],
    svc_attrs: Mapping[Key, ServiceAttrs],
) -> tuple[dict[Prefix, RouteAttrs], dict[Prefix, int]]:
    """Each prefix's attributes (``route_attrs``) and weight."""
    if not svc_attrs and not counts:
        return routes_from(explained, policy), {}
    built: AttrsCache = {}
    routes: dict[Prefix, RouteAttrs] = {}
    weights: dict[Prefix, int] = {}
    for prefix, reasons in explained.items():
        cls = route_class(reasons)
        extra = service_extra(reasons, cls, svc_attrs) if svc_attrs else None
        count = counts.get((prefix, cls))
        if count is not None:
            weights[prefix] = count
        routes[prefix] = route_attrs(policy, cls, extra, count, built)
    return routes, weights


def service_extra(
    reasons: Iterable[Reason], cls: str, svc_attrs: Mapping[Key, ServiceAttrs]
) -> ServiceAttrs | None:
    """The annotation attributes of the Services behind a prefix, in reason order (None for a whole
    range's aggregate)."""
    parts = []
    for r in reasons:
        if r.route_class != cls:
            continue
        if r.service is None:
            return None  # the range's own aggregate carries the class attributes alone
        value = svc_attrs.get(r.service)
        if value is not None:
            parts.append(value)
    return combined(parts)


def route_class(reasons: tuple[Reason, ...]) -> str:
    """The class whose attributes a prefix gets when several want it."""
    classes = {r.route_class for r in reasons}
    return next(c for c in CLASS_PRIORITY if c in classes)


def routes_from(
    explained: Mapping[Prefix, tuple[Reason, ...]], policy: AdvertisePolicy
) -> dict[Prefix, RouteAttrs]:
    """Class attributes for each explained prefix (no annotations or weights: see ``evaluate``)."""
    return {prefix: policy.attrs(route_class(reasons)) for prefix, reasons in explained.items()}
