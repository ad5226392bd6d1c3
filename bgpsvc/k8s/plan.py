"""``bgpsvc plan``: read the cluster once and say what each node would advertise, and why."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s_client

from .desired import AdvertisePolicy, Snapshot, explain, node_eligible, route_class
from .informer import Informer, endpointslice_informer, node_informer, service_informer


def read_snapshot(api_client: k8s_client.ApiClient, timeout: float = 30.0) -> Snapshot:
    """One consistent list of Services, EndpointSlices and Nodes (through the informers' list path).

    ``timeout`` bounds the wait for all three lists: long enough for a large cluster's paginated lists,
    short enough that an operator running ``bgpsvc plan`` soon learns the API server is unreachable.
    """
    informers: list[Informer[Any]] = [
        service_informer(api_client),
        endpointslice_informer(api_client),
        node_informer(api_client),
    ]
    try:
        for inf in informers:
            inf.start()
        for inf in informers:
            if not inf.wait_synced(timeout):
                raise TimeoutError(f"could not list {inf.resource} within {timeout} s: {inf.last_error}")
        services, slices, nodes = (inf.snapshot() for inf in informers)
        return Snapshot(services, slices, nodes)
    finally:
        for inf in informers:
            inf.stop(timeout=2.0)  # stop() cuts the open request: returns in ms, 2 s bounds a stuck one


def plan(snapshot: Snapshot, nodes: list[str], policy: AdvertisePolicy) -> dict[str, Any]:
    """Per node: eligibility and every prefix with its class, attributes and reasons."""
    out: dict[str, Any] = {}
    for node in nodes:
        explained = explain(snapshot, node, policy)
        routes = []
        for prefix in sorted(explained, key=lambda p: (p.afi, p.packed, p.length)):
            reasons = explained[prefix]
            cls = route_class(reasons)
            routes.append(
                {
                    "prefix": str(prefix),
                    "class": cls,
                    "attributes": {k: v for k, v in _attrs(policy, cls).items() if v not in (None, (), [])},
                    "reasons": [
                        {
                            "class": r.route_class,
                            "service": f"{r.service[0]}/{r.service[1]}" if r.service else None,
                            "endpoints": list(r.endpoints),
                        }
                        for r in reasons
                    ],
                }
            )
        out[node] = {
            "eligible": node_eligible(snapshot, node, policy),
            "known": ("", node) in snapshot.nodes,
            "routes": routes,
        }
    return out


def _attrs(policy: AdvertisePolicy, cls: str) -> dict[str, Any]:
    a = policy.attrs(cls)
    return {
        "med": a.med,
        "local_pref": a.local_pref,
        "communities": list(a.communities),
        "large_communities": [":".join(map(str, c)) for c in a.large_communities],
    }
