"""Frozen views of the Kubernetes objects bgpsvc reads: only the fields that decide routes.

Informers convert API JSON (``dict``) into these at the edge; nothing else in bgpsvc sees Kubernetes
objects. Field semantics follow the v1 Service, discovery.k8s.io/v1 EndpointSlice and v1 Node APIs.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ADVERTISE_ANNOTATION = "bgpsvc.io/advertise"
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
IP_FAMILIES = ("IPv4", "IPv6")  # the values of Service spec.ipFamilies and EndpointSlice addressType

Key = tuple[str, str]  # (namespace, name); nodes use ("", name)


def _ips(values: object) -> tuple[str, ...]:
    out = []
    if isinstance(values, list):
        for v in values:
            try:
                out.append(str(ipaddress.ip_address(str(v))))
            except ValueError:
                continue  # "None" for headless services, or garbage: not an address
    return tuple(out)


def _str(value: object) -> str:
    """``str(value)``, interned: namespaces, types, label keys and values and Service names recur across
    thousands of objects (10k Services: 100 namespaces, one EndpointSlice per Service naming it), and
    ``json`` gives each occurrence a string of its own. Interned strings are freed when unused."""
    return sys.intern(str(value))


#: Tuples from a small domain (``spec.ipFamilies``), shared by every view that has them.
_SHARED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(value: tuple[str, ...]) -> tuple[str, ...]:
    return _SHARED.setdefault(value, value) if len(_SHARED) < 64 else value


def _pairs(mapping: object) -> tuple[tuple[str, str], ...]:
    """A labels mapping as sorted (key, value) pairs of interned strings."""
    if not isinstance(mapping, Mapping):
        return ()
    return tuple(sorted((_str(k), _str(v)) for k, v in mapping.items()))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata") or {}
    return meta if isinstance(meta, Mapping) else {}


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A v1 Service, reduced to what decides its routes."""

    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    external_traffic_policy: str = "Cluster"
    #: ``spec.ipFamilies`` as written ("IPv4"/"IPv6"); empty on objects older than the field.
    ip_families: tuple[str, ...] = ()
    #: ``bgpsvc.io/advertise: "false"`` opts a Service out.
    advertise: bool = True
    headless: bool = False
    #: metadata.labels, sorted: a BGPAdvertisement's serviceSelector picks Services by them.
    labels: tuple[tuple[str, str], ...] = ()
    #: Its ``bgpsvc.io/`` annotations (per-Service attributes), sorted.
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> Key:
        """(namespace, name)."""
        return (self.namespace, self.name)

    @property
    def local(self) -> bool:
        """externalTrafficPolicy: Local."""
        return self.external_traffic_policy == "Local"


def service_from_dict(obj: Mapping[str, Any]) -> ServiceView:
    """Build a ``ServiceView`` from API JSON."""
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    headless = any(str(ip) == "None" for ip in cluster_ips)
    ingress = ((status.get("loadBalancer") or {}).get("ingress")) or []
    lb_ips = _ips([i.get("ip") for i in ingress if isinstance(i, Mapping) and i.get("ip")])
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        annotations = {}
    families = spec.get("ipFamilies")
    return ServiceView(
        namespace=_str(meta.get("namespace", "")),
        name=_str(meta.get("name", "")),
        type=_str(spec.get("type") or "ClusterIP"),
        cluster_ips=_ips(cluster_ips),
        external_ips=_ips(spec.get("externalIPs")),
        lb_ips=lb_ips,
        external_traffic_policy=_str(spec.get("externalTrafficPolicy") or "Cluster"),
        ip_families=_shared(tuple(f for f in families if f in IP_FAMILIES))
        if isinstance(families, list)
        else (),
        advertise=str(annotations.get(ADVERTISE_ANNOTATION, "true")).lower() != "false",
        headless=headless,
        labels=_pairs(meta.get("labels")),
        annotations=_bgpsvc_annotations(annotations),
    )


def _bgpsvc_annotations(annotations: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(annotations, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in annotations.items() if str(k).startswith("bgpsvc.io/")))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of an EndpointSlice; conditions as in the API (None = unset)."""

    addresses: tuple[str, ...]
    node_name: str | None = None
    ready: bool | None = None
    serving: bool | None = None


@dataclass(frozen=True, slots=True)
class EndpointSliceView:
    """A discovery.k8s.io/v1 EndpointSlice."""

    namespace: str
    name: str
    service_name: str | None
    address_type: str
    endpoints: tuple[Endpoint, ...] = ()
    #: Some endpoint of the slice, on any node, counts under endpoint policy "ready" / "serving". Kept
    #: at conversion time, before a node speaker drops the other nodes' endpoints; computed from
    #: ``endpoints`` when not given.
    any_ready: bool | None = None
    any_serving: bool | None = None

    def __post_init__(self) -> None:
        if self.any_ready is None:
            object.__setattr__(self, "any_ready", any(_counts(ep, "ready") for ep in self.endpoints))
        if self.any_serving is None:
            object.__setattr__(self, "any_serving", any(_counts(ep, "serving") for ep in self.endpoints))

    @property
    def key(self) -> Key:
        """(namespace, name)."""
        return (self.namespace, self.name)

    def ready_anywhere(self, policy: str) -> bool:
        """Some endpoint anywhere in the cluster counts under endpoint ``policy``."""
        return bool(self.any_serving if policy == "serving" else self.any_ready)


def endpoint_counts(ready: bool | None, serving: bool | None, policy: str) -> bool:
    """Whether an endpoint with these conditions counts under endpoint ``policy`` ("ready"/"serving").

    EndpointConditions: a nil ``ready`` means ready; a nil ``serving`` defers to ``ready``.
    """
    is_ready = ready is not False
    if policy == "serving":
        return serving if serving is not None else is_ready
    return is_ready


def _counts(ep: Endpoint, policy: str) -> bool:
    return bool(ep.addresses) and endpoint_counts(ep.ready, ep.serving, policy)


def _cond(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def endpointslice_from_dict(obj: Mapping[str, Any], node: str | None = None) -> EndpointSliceView:
    """Build an ``EndpointSliceView`` from API JSON.

    With ``node``, only that node's endpoints are kept: a node speaker never reads the others, and at
    100k endpoints they are most of its memory and of each reconcile's scan.
    """
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    eps = []
    any_ready = any_serving = False
    for ep in obj.get("endpoints") or []:
        if not isinstance(ep, Mapping):
            continue
        node_name = ep.get("nodeName")
        cond = ep.get("conditions") or {}
        if not isinstance(cond, Mapping):
            cond = {}
        ready, serving = _cond(cond.get("ready")), _cond(cond.get("serving"))
        if ep.get("addresses"):
            # The cluster-wide summary, before other nodes' endpoints are dropped.
            any_ready = any_ready or endpoint_counts(ready, serving, "ready")
            any_serving = any_serving or endpoint_counts(ready, serving, "serving")
        if node is not None and node_name != node:
            continue
        eps.append(
            Endpoint(
                addresses=tuple(str(a) for a in ep.get("addresses") or []),
                node_name=sys.intern(node_name) if isinstance(node_name, str) else None,
                ready=ready,
                serving=serving,
            )
        )
    service_name = labels.get(SERVICE_NAME_LABEL)
    return EndpointSliceView(
        namespace=_str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        service_name=_str(service_name) if isinstance(service_name, str) else service_name,
        address_type=_str(obj.get("addressType") or ""),
        endpoints=tuple(eps),
        any_ready=any_ready,
        any_serving=any_serving,
    )


@dataclass(frozen=True, slots=True)
class NodeView:
    """A v1 Node: its labels (for exclusion and peer selection), the AS override and its InternalIPs."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    internal_ips: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        """("", name)."""
        return ("", self.name)

    def label(self, key: str) -> str | None:
        """A label's value, or None."""
        for k, v in self.labels:
            if k == key:
                return v
        return None

    def annotation(self, key: str) -> str | None:
        """An annotation's value, or None."""
        for k, v in self.annotations:
            if k == key:
                return v
        return None


def node_from_dict(obj: Mapping[str, Any]) -> NodeView:
    """Build a ``NodeView`` from API JSON (only bgpsvc's annotations are kept)."""
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    addrs = ((obj.get("status") or {}).get("addresses")) or []
    internal = _ips(
        [a.get("address") for a in addrs if isinstance(a, Mapping) and a.get("type") == "InternalIP"]
    )
    return NodeView(
        name=str(meta.get("name", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        annotations=tuple(
            sorted((str(k), str(v)) for k, v in annotations.items() if str(k).startswith("bgpsvc.io/"))
        ),
        internal_ips=internal,
    )
