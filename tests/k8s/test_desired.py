"""desired_routes: table tests of every rule, and hypothesis properties (order independence, irrelevance)."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.annotations import (
    COMMUNITIES,
    LARGE_COMMUNITIES,
    LOCAL_PREF,
    MED,
    ServiceAttrs,
    service_attrs,
)
from bgpsvc.k8s.desired import (
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
    Snapshot,
    desired_routes,
    explain,
)
from bgpsvc.k8s.policy import LinkBandwidth, ServiceRange
from bgpsvc.k8s.reconcile import StepResult, reconcile_step
from bgpsvc.k8s.views import (
    Endpoint,
    EndpointSliceView,
    NodeView,
    ServiceView,
    endpointslice_from_dict,
    node_from_dict,
    service_from_dict,
)
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import ExtendedCommunity, Prefix

CLUSTER_V4 = ipaddress.ip_network("10.96.0.0/12")
CLUSTER_V6 = ipaddress.ip_network("fd00:10:96::/112")
EXT = ipaddress.ip_network("203.0.113.0/24")
EXT_SINGLE = ipaddress.ip_network("198.51.100.7/32")
EXT_V6 = ipaddress.ip_network("2001:db8:e::/64")
LB = ipaddress.ip_network("198.51.100.128/25")
LB_V6 = ipaddress.ip_network("2001:db8:1b::/64")
POLICY = AdvertisePolicy(
    service_cluster_ips=(CLUSTER_V4, CLUSTER_V6),
    service_external_ips=(EXT, EXT_SINGLE, EXT_V6),
    service_loadbalancer_ips=(LB, LB_V6),
    attributes={
        CLUSTER_IP: RouteAttrs(communities=(1,)),
        CLUSTER_RANGE: RouteAttrs(communities=(2,)),
        EXTERNAL_IP: RouteAttrs(communities=(3,)),
        LOADBALANCER_IP: RouteAttrs(communities=(4,)),
    },
)
P = Prefix.from_network
#: What every eligible node advertises whatever the Services are: every range but the single address.
RANGES = {
    P("10.96.0.0/12"),
    P("fd00:10:96::/112"),
    P("203.0.113.0/24"),
    P("2001:db8:e::/64"),
    P("198.51.100.128/25"),
    P("2001:db8:1b::/64"),
}


def svc(name: str, ips: tuple[str, ...], local: bool = True, **kw: Any) -> ServiceView:
    return ServiceView(
        "default", name, cluster_ips=ips, external_traffic_policy="Local" if local else "Cluster", **kw
    )


def eps(
    service: str,
    family: str,
    *endpoints: tuple[str, str, bool | None],
    name: str | None = None,
    serving: bool | None = None,
) -> EndpointSliceView:
    return EndpointSliceView(
        "default",
        name or f"{service}-{family}",
        service,
        family,
        tuple(Endpoint((addr,), node, ready, serving) for addr, node, ready in endpoints),
    )


def snap(*objs: object) -> Snapshot:
    services = {o.key: o for o in objs if isinstance(o, ServiceView)}
    slices = {o.key: o for o in objs if isinstance(o, EndpointSliceView)}
    nodes = {o.key: o for o in objs if isinstance(o, NodeView)}
    return Snapshot(services, slices, nodes)


def test_every_range_from_every_node_whatever_the_services() -> None:
    """Calico's model: each configured range is an aggregate from every eligible node, with no Service
    at all; a single-address range has no aggregate (it is host-routes-only by default)."""
    routes = desired_routes(snap(), "node-a", POLICY)
    assert routes == {
        P("10.96.0.0/12"): RouteAttrs(communities=(2,)),
        P("fd00:10:96::/112"): RouteAttrs(communities=(2,)),
        P("203.0.113.0/24"): RouteAttrs(communities=(3,)),
        P("2001:db8:e::/64"): RouteAttrs(communities=(3,)),
        P("198.51.100.128/25"): RouteAttrs(communities=(4,)),
        P("2001:db8:1b::/64"): RouteAttrs(communities=(4,)),
    }
    assert desired_routes(snap(), "node-b", POLICY) == routes


def test_local_service_host_route_only_where_ready_endpoints_are() -> None:
    s = snap(
        svc("web", ("10.96.0.10",)),
        eps(
            "web",
            "IPv4",
            ("10.244.1.5", "node-a", True),
            ("10.244.2.5", "node-b", None),
            ("10.244.3.5", "node-c", False),
        ),
    )
    assert P("10.96.0.10/32") in desired_routes(s, "node-a", POLICY)
    assert P("10.96.0.10/32") in desired_routes(s, "node-b", POLICY)  # ready unset means ready
    assert P("10.96.0.10/32") not in desired_routes(s, "node-c", POLICY)  # not ready
    assert P("10.96.0.10/32") not in desired_routes(s, "node-d", POLICY)  # no endpoint
    assert desired_routes(s, "node-a", POLICY)[P("10.96.0.10/32")] == RouteAttrs(communities=(1,))


def test_cluster_policy_service_adds_nothing_beyond_the_range() -> None:
    s = snap(svc("web", ("10.96.0.10",), local=False), eps("web", "IPv4", ("10.244.1.5", "node-a", True)))
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES


def test_dual_stack_is_decided_per_family() -> None:
    s = snap(
        svc("web", ("10.96.0.10", "fd00:10:96::a")),
        eps("web", "IPv4", ("10.244.1.5", "node-a", True)),
        eps("web", "IPv6", ("fd00:244::5", "node-b", True)),
    )
    a, b = desired_routes(s, "node-a", POLICY), desired_routes(s, "node-b", POLICY)
    assert P("10.96.0.10/32") in a and P("fd00:10:96::a/128") not in a
    assert P("fd00:10:96::a/128") in b and P("10.96.0.10/32") not in b


def test_multiple_slices_per_service_all_count() -> None:
    s = snap(
        svc("web", ("10.96.0.10",)),
        eps("web", "IPv4", ("10.244.1.5", "node-x", True), name="web-1"),
        eps("web", "IPv4", ("10.244.1.6", "node-a", True), name="web-2"),
    )
    assert explain(s, "node-a", POLICY)[P("10.96.0.10/32")][0].endpoints == ("10.244.1.6",)


def test_endpoint_moving_between_nodes() -> None:
    service = svc("web", ("10.96.0.10",))
    before = snap(service, eps("web", "IPv4", ("10.244.1.5", "node-a", True)))
    after = snap(service, eps("web", "IPv4", ("10.244.3.5", "node-c", True)))
    assert P("10.96.0.10/32") in desired_routes(before, "node-a", POLICY)
    assert P("10.96.0.10/32") not in desired_routes(after, "node-a", POLICY)
    assert P("10.96.0.10/32") in desired_routes(after, "node-c", POLICY)


def test_serving_policy_keeps_terminating_but_serving_endpoints() -> None:
    s = snap(svc("web", ("10.96.0.10",)), eps("web", "IPv4", ("10.244.1.5", "node-a", False), serving=True))
    assert P("10.96.0.10/32") not in desired_routes(s, "node-a", POLICY)
    serving = AdvertisePolicy(service_cluster_ips=(CLUSTER_V4,), endpoint_policy="serving")
    assert P("10.96.0.10/32") in desired_routes(s, "node-a", serving)


def test_external_and_lb_ips_inside_ranges() -> None:
    local = svc(
        "a",
        ("10.96.0.1",),
        external_ips=("203.0.113.5", "192.0.2.99"),
        type="LoadBalancer",
        lb_ips=("198.51.100.200",),
    )
    cluster = svc(
        "b",
        ("10.96.0.2",),
        local=False,
        external_ips=("203.0.113.6", "198.51.100.7"),
        type="LoadBalancer",
        lb_ips=("198.51.100.201",),
    )
    s = snap(local, cluster, eps("a", "IPv4", ("10.244.1.1", "node-a", True)))
    a = desired_routes(s, "node-a", POLICY)
    b = desired_routes(s, "node-b", POLICY)
    # Local: host routes only from endpoint nodes; an IP outside every range is never advertised.
    assert a[P("203.0.113.5/32")] == RouteAttrs(communities=(3,)) and P("203.0.113.5/32") not in b
    assert a[P("198.51.100.200/32")] == RouteAttrs(communities=(4,)) and P("198.51.100.200/32") not in b
    assert not any(p.network.overlaps(ipaddress.ip_network("192.0.2.99/32")) for p in a)
    # Cluster: the range entry as an aggregate, a single-address entry as a host route, from every node.
    for routes in (a, b):
        assert routes[P("203.0.113.0/24")] == RouteAttrs(communities=(3,))
        assert routes[P("198.51.100.7/32")] == RouteAttrs(communities=(3,))
        assert routes[P("198.51.100.128/25")] == RouteAttrs(communities=(4,))


def test_skipped_services() -> None:
    endpoints = [eps(n, "IPv4", ("10.244.1.1", "node-a", True)) for n in ("h", "x", "off")]
    s = snap(
        svc("h", (), headless=True),
        svc("x", ("10.96.0.3",), type="ExternalName"),
        svc("off", ("10.96.0.4",), advertise=False),
        *endpoints,
    )
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES


def test_exclusion_label_withdraws_everything_unless_disabled() -> None:
    node = NodeView("node-a", labels=(("node.kubernetes.io/exclude-from-external-load-balancers", ""),))
    s = snap(node, svc("web", ("10.96.0.10",)), eps("web", "IPv4", ("10.244.1.5", "node-a", True)))
    assert desired_routes(s, "node-a", POLICY) == {}
    ignore = AdvertisePolicy(service_cluster_ips=(CLUSTER_V4,), honour_exclude_label=False)
    assert P("10.96.0.10/32") in desired_routes(s, "node-a", ignore)


def test_shared_ip_advertised_once_and_withdrawn_when_none_needs_it() -> None:
    a = svc("a", ("10.96.0.1",), external_ips=("203.0.113.9",))
    b = svc("b", ("10.96.0.2",), external_ips=("203.0.113.9",))
    both = snap(
        a,
        b,
        eps("a", "IPv4", ("10.244.1.1", "node-a", True)),
        eps("b", "IPv4", ("10.244.1.2", "node-a", True)),
    )
    reasons = explain(both, "node-a", POLICY)[P("203.0.113.9/32")]
    assert [r.service for r in reasons] == [("default", "a"), ("default", "b")]
    only_b = snap(b, eps("b", "IPv4", ("10.244.1.2", "node-a", True)))
    assert P("203.0.113.9/32") in desired_routes(only_b, "node-a", POLICY)
    assert P("203.0.113.9/32") not in desired_routes(snap(), "node-a", POLICY)


def test_views_from_api_json() -> None:
    s = service_from_dict(
        {
            "metadata": {"namespace": "ns", "name": "web", "annotations": {"bgpsvc.io/advertise": "false"}},
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1", "fd00::1"],
                "externalTrafficPolicy": "Local",
                "externalIPs": ["203.0.113.1"],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.130"}, {"hostname": "x"}]}},
        }
    )
    assert s.cluster_ips == ("10.96.0.1", "fd00::1") and s.local and not s.advertise
    assert s.lb_ips == ("198.51.100.130",) and s.external_ips == ("203.0.113.1",)
    assert service_from_dict({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}).headless
    sl = endpointslice_from_dict(
        {
            "metadata": {
                "namespace": "ns",
                "name": "web-abc",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": ["10.244.0.5"],
                    "nodeName": "n1",
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                },
                {"addresses": ["10.244.0.6"], "conditions": {}},
            ],
        }
    )
    assert sl.service_name == "web" and sl.endpoints[0].ready is True and sl.endpoints[1].ready is None
    n = node_from_dict(
        {
            "metadata": {
                "name": "n1",
                "labels": {"rack": "r1"},
                "annotations": {"bgpsvc.io/local-as": "65001", "other": "x"},
            },
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "192.0.2.10"},
                    {"type": "Hostname", "address": "n1"},
                ]
            },
        }
    )
    assert n.label("rack") == "r1" and n.annotation("bgpsvc.io/local-as") == "65001"
    assert n.annotations == (("bgpsvc.io/local-as", "65001"),) and n.internal_ips == ("192.0.2.10",)


def _service_json(name: str, cluster_ips: list[str], families: list[str] | None, local: bool) -> Snapshot:
    spec: dict[str, object] = {
        "type": "LoadBalancer",
        "clusterIP": cluster_ips[0],
        "clusterIPs": cluster_ips,
        "externalTrafficPolicy": "Local" if local else "Cluster",
        "externalIPs": ["203.0.113.6", "2001:db8:e::6"],
    }
    if families is not None:
        spec["ipFamilies"] = families
    service = service_from_dict(
        {
            "metadata": {"namespace": "default", "name": name},
            "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.136"}, {"ip": "2001:db8:1b::6"}]}},
        }
    )
    slices = [
        endpointslice_from_dict(
            {
                "metadata": {
                    "namespace": "default",
                    "name": f"{name}-{family}",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": family,
                "endpoints": [{"addresses": [addr], "nodeName": "node-a", "conditions": {"ready": True}}],
            }
        )
        for family, addr in (("IPv4", "10.244.1.6"), ("IPv6", "fd00:244::6"))
    ]
    return snap(service, *slices)


V4_HOSTS = {P("203.0.113.6/32"), P("198.51.100.136/32")}
V6_HOSTS = {P("fd00:10:96::6/128"), P("2001:db8:e::6/128"), P("2001:db8:1b::6/128")}


def test_ipv6_only_local_service_advertises_no_ipv4_address() -> None:
    """IPv6-only Service, IPv4 external/LB IPs and an IPv4 slice with a ready endpoint here: kube-proxy
    programs nothing for IPv4, so no IPv4 host route; the IPv6 addresses go out from the IPv6 slice."""
    s = _service_json("v6", ["fd00:10:96::6"], ["IPv6"], local=True)
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES | V6_HOSTS
    without_v6_slice = Snapshot(s.services, {k: v for k, v in s.slices.items() if v.address_type == "IPv4"})
    assert set(desired_routes(without_v6_slice, "node-a", POLICY)) == RANGES


def test_ipv6_only_cluster_service_is_no_reason_for_an_ipv4_aggregate() -> None:
    s = _service_json("v6", ["fd00:10:96::6"], ["IPv6"], local=False)
    explained = explain(s, "node-b", POLICY)
    assert set(explained) == RANGES
    for prefix, reasons in explained.items():
        users = {r.service for r in reasons if r.service is not None}
        assert users == (
            {("default", "v6")} if prefix in {P("2001:db8:e::/64"), P("2001:db8:1b::/64")} else set()
        )


def test_families_are_inferred_from_cluster_ips_on_old_objects() -> None:
    s = _service_json("old", ["fd00:10:96::6"], None, local=True)
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES | V6_HOSTS
    dual = _service_json("old", ["10.96.0.6", "fd00:10:96::6"], None, local=True)
    assert set(desired_routes(dual, "node-a", POLICY)) == RANGES | V6_HOSTS | V4_HOSTS | {P("10.96.0.6/32")}


def test_ipv4_only_service_advertises_no_ipv6_address() -> None:
    s = _service_json("v4", ["10.96.0.6"], ["IPv4"], local=True)
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES | V4_HOSTS | {P("10.96.0.6/32")}


def test_fqdn_slices_never_count() -> None:
    s = snap(svc("web", ("10.96.0.10",)), eps("web", "FQDN", ("10.244.1.5", "node-a", True)))
    assert set(desired_routes(s, "node-a", POLICY)) == RANGES


def test_service_view_keeps_only_known_ip_families() -> None:
    def families(value: object) -> tuple[str, ...]:
        return service_from_dict({"metadata": {"name": "x"}, "spec": {"ipFamilies": value}}).ip_families

    assert families(["IPv6", "IPv4"]) == ("IPv6", "IPv4")
    assert families(["IPv6", "IPX", 4]) == ("IPv6",)
    assert families(None) == () and families("IPv4") == ()


# ----------------------------------------------------------------------------------------- properties

NODES = ["node-a", "node-b", "node-c"]
ips4 = st.integers(0, 255).map(lambda i: f"10.96.0.{i}")
ext4 = st.integers(0, 255).map(lambda i: f"203.0.113.{i}")
endpoint = st.tuples(
    st.integers(0, 255).map(lambda i: f"10.244.0.{i}"),
    st.sampled_from([*NODES, None]),
    st.sampled_from([True, False, None]),
)


@st.composite
def clusters(draw: st.DrawFn) -> list[object]:
    objs: list[object] = []
    for i in range(draw(st.integers(0, 8))):
        name = f"s{i}"
        objs.append(
            svc(
                name,
                tuple(draw(st.lists(ips4, max_size=2))),
                local=draw(st.booleans()),
                external_ips=tuple(draw(st.lists(ext4, max_size=2))),
            )
        )
        for j in range(draw(st.integers(0, 2))):
            objs.append(
                EndpointSliceView(
                    "default",
                    f"{name}-{j}",
                    name,
                    "IPv4",
                    tuple(
                        Endpoint((a,), node, ready) for a, node, ready in draw(st.lists(endpoint, max_size=4))
                    ),
                )
            )
    if draw(st.booleans()):
        objs.append(
            NodeView("node-a", labels=(("node.kubernetes.io/exclude-from-external-load-balancers", ""),))
        )
    return objs


@settings(max_examples=200, deadline=None)
@given(clusters(), st.randoms(use_true_random=False), st.sampled_from(NODES))
def test_result_does_not_depend_on_object_order(objs: list[object], rnd: random.Random, node: str) -> None:
    shuffled = list(objs)
    rnd.shuffle(shuffled)
    assert desired_routes(snap(*objs), node, POLICY) == desired_routes(snap(*shuffled), node, POLICY)
    assert explain(snap(*objs), node, POLICY) == explain(snap(*shuffled), node, POLICY)


@settings(max_examples=200, deadline=None)
@given(clusters(), st.sampled_from(NODES))
def test_adding_an_unrelated_object_changes_nothing(objs: list[object], node: str) -> None:
    base = desired_routes(snap(*objs), node, POLICY)
    unrelated = [
        svc("zz-outside", ("192.0.2.1",), external_ips=("192.0.2.2",)),  # IPs outside every range
        EndpointSliceView(
            "default", "orphan", "no-such-service", "IPv4", (Endpoint(("10.244.9.9",), node, True),)
        ),
        NodeView(
            "some-other-node", labels=(("node.kubernetes.io/exclude-from-external-load-balancers", ""),)
        ),
        EndpointSliceView("other-ns", "zz-0", "zz-outside", "IPv4", (Endpoint(("10.244.9.8",), node, True),)),
    ]
    assert desired_routes(snap(*objs, *unrelated), node, POLICY) == base


@settings(max_examples=200, deadline=None)
@given(clusters(), st.sampled_from(NODES))
def test_every_advertised_prefix_is_inside_a_configured_range(objs: list[object], node: str) -> None:
    ranges = [*POLICY.service_cluster_ips, *POLICY.service_external_ips, *POLICY.service_loadbalancer_ips]
    for prefix in desired_routes(snap(*objs), node, POLICY):
        assert any(prefix.network.subnet_of(r) for r in ranges if r.version == prefix.network.version)  # type: ignore[arg-type]


# ------------------------------------------------- reference implementation: the docstring's rules, slowly


def _family(ip: str) -> str:
    return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"


def _counts(ep: Endpoint, endpoint_policy: str) -> bool:
    ready = ep.ready is not False  # unset means ready
    if endpoint_policy == "serving":
        return ep.serving if ep.serving is not None else ready
    return ready


def _spec(policy: AdvertisePolicy, net: Any) -> tuple[bool, int, bool]:
    """(host routes only, a Cluster Service's prefix length, require a ready endpoint) of one range."""
    single = net.prefixlen == net.max_prefixlen
    for r in policy.ranges:
        if r.network == net:
            host_only = r.aggregation == "host-routes-only" or (r.aggregation is None and single)
            length = net.max_prefixlen if r.aggregation_length is None else r.aggregation_length
            return host_only, length, r.require_ready_endpoint
    return single, net.max_prefixlen, False


def _merge_annotations(s: Snapshot, users: set[Any], attrs: RouteAttrs) -> RouteAttrs:
    """Communities of every Service added; the first Service (by key) setting LOCAL_PREF/MED wins."""
    good = [
        a for u in sorted(users) if isinstance(a := service_attrs(s.services[u].annotations), ServiceAttrs)
    ]
    if not good:
        return attrs
    return replace(
        attrs,
        communities=tuple({*attrs.communities, *(c for g in good for c in g.communities)}),
        large_communities=tuple({*attrs.large_communities, *(c for g in good for c in g.large_communities)}),
        local_pref=next((g.local_pref for g in good if g.local_pref is not None), attrs.local_pref),
        med=next((g.med for g in good if g.med is not None), attrs.med),
    )


def reference(s: Snapshot, node: str, policy: AdvertisePolicy) -> dict[Prefix, RouteAttrs]:
    """desired_routes, written rule by rule with ipaddress and no caches, as an oracle."""
    me = s.nodes.get(("", node))
    if policy.honour_exclude_label and me is not None and me.label(EXCLUDE) is not None:
        return {}
    wanted: dict[Prefix, dict[str, set[Any]]] = {}  # prefix -> class -> Services (None: the range)
    weight: dict[tuple[Prefix, str], dict[Any, int]] = {}  # (prefix, class) -> Service -> endpoints here

    def want(prefix: Prefix, cls: str, user: Any) -> None:
        wanted.setdefault(prefix, {}).setdefault(cls, set()).add(user)

    classes = (
        (CLUSTER_IP, CLUSTER_RANGE, policy.service_cluster_ips, "cluster_ips"),
        (EXTERNAL_IP, EXTERNAL_IP, policy.service_external_ips, "external_ips"),
        (LOADBALANCER_IP, LOADBALANCER_IP, policy.service_loadbalancer_ips, "lb_ips"),
    )
    for _, range_cls, nets, _ in classes:
        for net in nets:
            if not _spec(policy, net)[0]:
                want(P(str(net)), range_cls, None)
                weight.setdefault((P(str(net)), range_cls), {})
    for service in s.services.values():
        if service.type == "ExternalName" or service.headless or not service.advertise:
            continue
        key = (service.namespace, service.name)
        families = set(service.ip_families) or {_family(ip) for ip in service.cluster_ips}
        slices = [
            sl
            for sl in s.slices.values()
            if sl.namespace == service.namespace and sl.service_name == service.name
        ]

        def here(family: str, slices: list[EndpointSliceView] = slices) -> set[str]:
            return {
                ep.addresses[0]
                for sl in slices
                if sl.address_type == family
                for ep in sl.endpoints
                if ep.node_name == node and ep.addresses and _counts(ep, policy.endpoint_policy)
            }

        def anywhere(family: str, slices: list[EndpointSliceView] = slices) -> bool:
            return any(
                ep.addresses and _counts(ep, policy.endpoint_policy)
                for sl in slices
                if sl.address_type == family
                for ep in sl.endpoints
            )

        for cls, range_cls, nets, attr in classes:
            for ip in getattr(service, attr):
                addr = ipaddress.ip_address(ip)
                inside = [n for n in nets if n.version == addr.version and addr in n]
                if _family(ip) not in families or not inside:
                    continue
                entry = max(inside, key=lambda n: n.prefixlen)
                host_only, length, need_ready = _spec(policy, entry)
                n = len(here(_family(ip)))
                if service.local:
                    if n:
                        host = P(f"{addr}/{addr.max_prefixlen}")
                        want(host, cls, key)
                        weight.setdefault((host, cls), {})[key] = n
                elif not host_only:
                    if cls != CLUSTER_IP:
                        want(P(str(entry)), cls, key)
                    weight.setdefault((P(str(entry)), range_cls), {})[key] = n
                elif not need_ready or anywhere(_family(ip)):
                    prefix = P(str(ipaddress.ip_network(f"{addr}/{length}", strict=False)))
                    want(prefix, cls, key)
                    weight.setdefault((prefix, cls), {})[key] = n
    order = (CLUSTER_IP, LOADBALANCER_IP, EXTERNAL_IP, CLUSTER_RANGE)
    lb = policy.link_bandwidth
    out = {}
    for prefix, by_class in wanted.items():
        cls = next(c for c in order if c in by_class)
        attrs = policy.attrs(cls)
        if None not in by_class[cls]:
            attrs = _merge_annotations(s, by_class[cls], attrs)
        if cls in lb.classes:
            bps = sum(weight[(prefix, cls)].values()) * lb.per_endpoint_mbps * 125_000
            community = ExtendedCommunity.link_bandwidth(lb.asn or 23456, bps, lb.transitive)
            attrs = replace(attrs, extended_communities=(*attrs.extended_communities, community))
        out[prefix] = attrs
    return out


EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
FAMILY_SETS = [(), ("IPv4",), ("IPv6",), ("IPv4", "IPv6"), ("IPv6", "IPv4")]
any_cluster_ip = st.one_of(
    ips4,
    st.integers(0, 255).map(lambda i: f"fd00:10:96::{i:x}"),
    st.just("192.0.2.1"),
    st.just("2001:db8::1"),
)
any_external_ip = st.one_of(
    ext4,
    st.just("198.51.100.7"),
    st.integers(0, 255).map(lambda i: f"2001:db8:e::{i:x}"),
    st.integers(128, 255).map(lambda i: f"198.51.100.{i}"),
    st.integers(0, 255).map(lambda i: f"2001:db8:1b::{i:x}"),
    st.just("192.0.2.99"),
)
EP_ADDRESSES = ["10.244.0.1", "10.244.0.2", "10.244.0.3", "fd00:244::1", "fd00:244::2"]
any_endpoint = st.builds(
    Endpoint,
    st.lists(st.sampled_from(EP_ADDRESSES), max_size=2).map(tuple),
    st.sampled_from([*NODES, None]),
    st.sampled_from([True, False, None]),
    st.sampled_from([True, False, None]),
)
ANNOTATION_SETS: list[tuple[tuple[str, str], ...]] = [
    (),
    ((COMMUNITIES, "64512:7, NO_EXPORT"),),
    ((LOCAL_PREF, "300"), (MED, "5")),
    ((COMMUNITIES, "64512:9"), (LOCAL_PREF, "150")),
    ((COMMUNITIES, "64512:8"), (LARGE_COMMUNITIES, "64512:1:2")),
    ((LOCAL_PREF, "high"),),  # bad: the class attributes alone
    ((COMMUNITIES, "1:2:3"), (MED, "9")),  # bad
]


@st.composite
def mixed_clusters(draw: st.DrawFn) -> list[object]:
    """Single-stack and dual-stack Services of either family, with slices of every addressType."""
    objs: list[object] = []
    for i in range(draw(st.integers(0, 6))):
        name = f"s{i}"
        objs.append(
            ServiceView(
                "default",
                name,
                type=draw(st.sampled_from(["ClusterIP", "LoadBalancer", "LoadBalancer", "ExternalName"])),
                cluster_ips=tuple(draw(st.lists(any_cluster_ip, max_size=2, unique=True))),
                external_ips=tuple(draw(st.lists(any_external_ip, max_size=3))),
                lb_ips=tuple(draw(st.lists(any_external_ip, max_size=2))),
                external_traffic_policy=draw(st.sampled_from(["Local", "Cluster"])),
                ip_families=draw(st.sampled_from(FAMILY_SETS)),
                advertise=draw(st.booleans()) or draw(st.booleans()),
                headless=draw(st.integers(0, 9)) == 0,
                annotations=draw(st.sampled_from(ANNOTATION_SETS)),
            )
        )
        for j in range(draw(st.integers(0, 3))):
            objs.append(
                EndpointSliceView(
                    "default",
                    f"{name}-{j}",
                    draw(st.sampled_from([name, name, "other", None])),
                    draw(st.sampled_from(["IPv4", "IPv6", "FQDN"])),
                    tuple(draw(st.lists(any_endpoint, max_size=4))),
                )
            )
    if draw(st.booleans()):
        objs.append(NodeView(draw(st.sampled_from(NODES)), labels=((EXCLUDE, ""),)))
    return objs


#: (range, the aggregation lengths a test may give it)
RANGE_LENGTHS = [
    (CLUSTER_V4, [None, 24, 30]),
    (CLUSTER_V6, [None, 120]),
    (EXT, [None, 28, 32]),
    (EXT_SINGLE, [None, 32]),
    (EXT_V6, [None, 96, 128]),
    (LB, [None, 26, 30]),
    (LB_V6, [None, 64, 120]),
]


def random_policy(pick: Any, endpoint_policy: str = "ready", honour: bool = True) -> AdvertisePolicy:
    """A policy with per-range settings, link bandwidth classes and attributes; ``pick(options)`` chooses
    (a hypothesis draw or a seeded ``random.Random.choice``)."""
    specs = []
    for net, lengths in RANGE_LENGTHS:
        mode = pick([None, "aggregate", "host-routes-only"])
        if mode == "host-routes-only" or (mode is None and net.prefixlen == net.max_prefixlen):
            specs.append(ServiceRange(net, mode, pick(lengths), pick([False, True])))
        elif pick([False, True]):
            specs.append(ServiceRange(net, mode))
    weighted = tuple(
        c for c in (CLUSTER_IP, EXTERNAL_IP, LOADBALANCER_IP, CLUSTER_RANGE) if pick([False, True])
    )
    return replace(
        POLICY,
        endpoint_policy=endpoint_policy,
        honour_exclude_label=honour,
        ranges=tuple(specs),
        link_bandwidth=LinkBandwidth(weighted, pick([1.0, 2.5]), pick([True, False]), pick([None, 64512])),
    )


@st.composite
def policies(draw: st.DrawFn) -> AdvertisePolicy:
    return random_policy(
        lambda options: draw(st.sampled_from(options)),
        draw(st.sampled_from(["ready", "serving"])),
        draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None)
@given(mixed_clusters(), st.sampled_from(NODES), policies())
def test_desired_routes_match_the_reference(objs: list[object], node: str, policy: AdvertisePolicy) -> None:
    s = snap(*objs)
    assert desired_routes(s, node, policy) == reference(s, node, policy)


def random_cluster(rng: random.Random) -> list[object]:
    """A seeded random cluster, of the shapes ``mixed_clusters`` draws."""

    def ips(pool: list[str], k: int) -> tuple[str, ...]:
        return tuple(rng.sample(pool, rng.randint(0, k)))

    cluster_pool = [f"10.96.0.{i}" for i in range(0, 16)] + ["fd00:10:96::1", "fd00:10:96::2", "192.0.2.1"]
    ext_pool = ["203.0.113.5", "203.0.113.6", "198.51.100.7", "198.51.100.130", "198.51.100.131",
                "2001:db8:e::5", "2001:db8:1b::9", "192.0.2.99"]  # fmt: skip
    objs: list[object] = []
    for i in range(rng.randint(1, 12)):
        name = f"s{i}"
        objs.append(
            ServiceView(
                "default",
                name,
                type=rng.choice(["ClusterIP", "LoadBalancer", "LoadBalancer"]),
                cluster_ips=ips(cluster_pool, 2),
                external_ips=ips(ext_pool, 2),
                lb_ips=ips(ext_pool, 2),
                external_traffic_policy=rng.choice(["Local", "Cluster"]),
                ip_families=rng.choice(FAMILY_SETS),
                advertise=rng.random() > 0.1,
                annotations=rng.choice(ANNOTATION_SETS),
            )
        )
        for j in range(rng.randint(0, 3)):
            endpoints = tuple(
                Endpoint(
                    (rng.choice(EP_ADDRESSES),),
                    rng.choice([*NODES, None]),
                    rng.choice([True, False, None]),
                    rng.choice([True, False, None]),
                )
                for _ in range(rng.randint(0, 5))
            )
            objs.append(
                EndpointSliceView("default", f"{name}-{j}", name, rng.choice(["IPv4", "IPv6"]), endpoints)
            )
    return objs


def test_a_seeded_random_cluster_gives_the_reference_answer_through_the_reconciler() -> None:
    """Fifty seeded clusters, each changed four times: the reconciler's steps (carrying their previous
    result) advertise exactly what the reference says, on every node."""
    for seed in range(50):
        rng = random.Random(seed)
        policy = random_policy(rng.choice, rng.choice(["ready", "serving"]))
        previous: dict[str, StepResult | None] = dict.fromkeys(NODES)
        for _ in range(4):
            s = snap(*random_cluster(rng))
            for node in NODES:
                result = reconcile_step(s, node, policy, previous[node], now=0.0)
                assert result.routes == reference(s, node, policy), f"seed {seed}, {node}"
                previous[node] = result


@settings(max_examples=200, deadline=None)
@given(mixed_clusters(), st.sampled_from(NODES), policies())
def test_every_prefix_is_inside_a_range_and_of_a_service_family(
    objs: list[object], node: str, policy: AdvertisePolicy
) -> None:
    s = snap(*objs)
    ranges = [*policy.service_cluster_ips, *policy.service_external_ips, *policy.service_loadbalancer_ips]
    for prefix, reasons in explain(s, node, policy).items():
        assert any(prefix.network.subnet_of(r) for r in ranges if r.version == prefix.network.version)  # type: ignore[arg-type]
        for reason in reasons:
            if reason.service is None:
                continue
            service = s.services[reason.service]
            families = service.ip_families or tuple({_family(ip) for ip in service.cluster_ips})
            assert ("IPv4" if prefix.network.version == 4 else "IPv6") in families
