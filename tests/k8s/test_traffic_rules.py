"""Issue 11 rules, one table test each: Link Bandwidth weights, per-range aggregation, the ready-endpoint
rule for host-routes-only ranges, aggregation length, per-Service annotation attributes."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace

import pytest

from bgpsvc.k8s.advertise import PolicyEntry, PolicySet
from bgpsvc.k8s.annotations import service_attrs
from bgpsvc.k8s.desired import (
    CLUSTER_IP,
    CLUSTER_RANGE,
    EXTERNAL_IP,
    LOADBALANCER_IP,
    AdvertisePolicy,
    desired_routes,
    evaluate,
    explain,
)
from bgpsvc.k8s.policy import Damping, LinkBandwidth, ServiceRange
from bgpsvc.k8s.reconcile import reconcile_step
from bgpsvc.k8s.views import Endpoint, EndpointSliceView, endpointslice_from_dict, service_from_dict
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import ExtendedCommunity

from .test_desired import CLUSTER_V4, EXT, LB, LB_V6, POLICY, P, snap, svc

WEIGHTED = replace(POLICY, link_bandwidth=LinkBandwidth((CLUSTER_IP, LOADBALANCER_IP), asn=64512))


def slice_of(service: str, counts: dict[str, int], family: str = "IPv4", name: str = "") -> EndpointSliceView:
    """A slice with ``counts[node]`` ready endpoints on each node."""
    endpoints = tuple(
        Endpoint((f"10.244.{n}.{k}",), node, True)
        for n, (node, count) in enumerate(sorted(counts.items()))
        for k in range(count)
    )
    return EndpointSliceView("default", name or f"{service}-x", service, family, endpoints)


def bandwidth(attrs: RouteAttrs) -> float | None:
    """The Link Bandwidth value (bytes/s) in ``attrs``, None without one."""
    values = [bw for c in attrs.extended_communities if (bw := c.bandwidth()) is not None]
    assert len(values) <= 1
    return values[0] if values else None


# ------------------------------------------------------------------------------- link bandwidth


def test_local_service_weight_follows_the_ready_endpoints_on_each_node() -> None:
    s = snap(svc("web", ("10.96.0.10",)), slice_of("web", {"node-a": 3, "node-b": 1}))
    a, b, c = (desired_routes(s, n, WEIGHTED) for n in ("node-a", "node-b", "node-c"))
    host = P("10.96.0.10/32")
    assert bandwidth(a[host]) == 3 * 125_000 and bandwidth(b[host]) == 125_000 and host not in c
    assert a[host].communities == (1,)  # the class attributes are kept
    assert bandwidth(a[P("10.96.0.0/12")]) is None  # cluster-range is not a weighted class here
    assert evaluate(s, "node-a", WEIGHTED).weights[host] == 3


def test_the_community_is_the_one_frr_reads() -> None:
    """FRR 8.4 ``ecommunity_linkbw_present``: type 0x00 (or 0x40), sub-type 0x04, 2-octet AS, IEEE float
    bytes/s; transitive is FRR's own default (``set extcommunity bandwidth``)."""
    s = snap(svc("web", ("10.96.0.10",)), slice_of("web", {"node-a": 3}))
    route = desired_routes(s, "node-a", WEIGHTED)[P("10.96.0.10/32")]
    assert route.extended_communities == (
        ExtendedCommunity(bytes([0x00, 0x04, 0xFC, 0x00]) + struct.pack(">f", 375e3)),
    )
    non_transitive = replace(
        WEIGHTED, link_bandwidth=replace(WEIGHTED.link_bandwidth, transitive=False, per_endpoint_mbps=8)
    )
    (ec,) = desired_routes(s, "node-a", non_transitive)[P("10.96.0.10/32")].extended_communities
    assert ec.value[:2] == b"\x40\x04" and not ec.transitive and ec.bandwidth() == 3 * 8 * 125_000
    four_octet = replace(WEIGHTED, link_bandwidth=replace(WEIGHTED.link_bandwidth, asn=4200000000))
    (ec,) = desired_routes(s, "node-a", four_octet)[P("10.96.0.10/32")].extended_communities
    assert ec.value[2:4] == (23456).to_bytes(2, "big")  # AS_TRANS stands in (RFC 6793 §9)


def test_weight_change_is_an_attribute_change_not_a_withdrawal() -> None:
    web = svc("web", ("10.96.0.10",))
    first = reconcile_step(snap(web, slice_of("web", {"node-a": 3})), "node-a", WEIGHTED, None)
    second = reconcile_step(snap(web, slice_of("web", {"node-a": 1})), "node-a", WEIGHTED, first)
    assert (second.stats.announced, second.stats.withdrawn, second.stats.changed) == (0, 0, 1)
    assert bandwidth(second.routes[P("10.96.0.10/32")]) == 125_000


def test_weights_per_family_and_per_service_sharing_an_address() -> None:
    dual = svc("dual", ("10.96.0.10", "fd00:10:96::a"), ip_families=("IPv4", "IPv6"))
    shared = svc("shared", ("10.96.0.11",), external_ips=("203.0.113.9",))
    other = svc("other", ("10.96.0.12",), external_ips=("203.0.113.9",))
    s = snap(
        dual,
        shared,
        other,
        slice_of("dual", {"node-a": 2}, "IPv4"),
        slice_of("dual", {"node-a": 5}, "IPv6", name="dual-6"),
        slice_of("shared", {"node-a": 1}),
        slice_of("other", {"node-a": 2}),
    )
    policy = replace(POLICY, link_bandwidth=LinkBandwidth((CLUSTER_IP, EXTERNAL_IP)))
    routes = desired_routes(s, "node-a", policy)
    assert bandwidth(routes[P("10.96.0.10/32")]) == 2 * 125_000
    assert bandwidth(routes[P("fd00:10:96::a/128")]) == 5 * 125_000
    assert bandwidth(routes[P("203.0.113.9/32")]) == 3 * 125_000  # both Services' endpoints behind it


def test_aggregates_weigh_their_cluster_policy_services_only() -> None:
    """The cluster range carries this node's endpoints of Cluster-policy Services (a node without any
    sends 0: FRR gives it its lowest weight); Local Services have their own host routes."""
    policy = replace(POLICY, link_bandwidth=LinkBandwidth((CLUSTER_RANGE, LOADBALANCER_IP)))
    s = snap(
        svc("c1", ("10.96.0.1",), local=False, lb_ips=("198.51.100.200",)),
        svc("c2", ("10.96.0.2",), local=False),
        svc("l1", ("10.96.0.3",)),
        slice_of("c1", {"node-a": 2, "node-b": 1}),
        slice_of("c2", {"node-a": 1}),
        slice_of("l1", {"node-a": 4}),
    )
    a, c = desired_routes(s, "node-a", policy), desired_routes(s, "node-c", policy)
    assert bandwidth(a[P("10.96.0.0/12")]) == 3 * 125_000
    assert bandwidth(c[P("10.96.0.0/12")]) == 0.0
    assert bandwidth(a[P("198.51.100.128/25")]) == 2 * 125_000  # c1's LoadBalancer IP
    assert bandwidth(a[P("10.96.0.3/32")]) is None  # cluster-ip is not weighted in this policy


def test_endpoints_are_counted_by_their_first_address_once() -> None:
    s = snap(
        svc("web", ("10.96.0.10",)),
        EndpointSliceView(
            "default",
            "web-1",
            "web",
            "IPv4",
            (
                Endpoint(("10.244.0.1", "10.244.0.9"), "node-a", True),
                Endpoint(("10.244.0.2",), "node-a", None),
            ),
        ),
        EndpointSliceView("default", "web-2", "web", "IPv4", (Endpoint(("10.244.0.1",), "node-a", True),)),
    )
    assert evaluate(s, "node-a", WEIGHTED).weights[P("10.96.0.10/32")] == 2


def test_link_bandwidth_config_is_checked() -> None:
    with pytest.raises(ValueError, match="classes: unknown route class 'cluster'"):
        LinkBandwidth(("cluster",))
    with pytest.raises(ValueError, match="per_endpoint_mbps"):
        LinkBandwidth((CLUSTER_IP,), per_endpoint_mbps=0)


# ---------------------------------------------------------------------------- per-range aggregation


def test_host_routes_only_range_gives_each_cluster_service_ip_its_host_route() -> None:
    policy = replace(POLICY, ranges=(ServiceRange(LB, "host-routes-only"),))
    s = snap(
        svc("c", ("10.96.0.1",), local=False, lb_ips=("198.51.100.200",)),
        svc("l", ("10.96.0.2",), lb_ips=("198.51.100.201",)),
        slice_of("l", {"node-a": 1}),
    )
    for node in ("node-a", "node-b"):
        routes = desired_routes(s, node, policy)
        assert P("198.51.100.128/25") not in routes
        assert routes[P("198.51.100.200/32")] == RouteAttrs(communities=(4,))
        assert (P("198.51.100.201/32") in routes) == (node == "node-a")  # Local: endpoint nodes only
    assert P("198.51.100.200/32") not in desired_routes(snap(), "node-a", policy)


def test_host_routes_only_cluster_range() -> None:
    policy = replace(POLICY, ranges=(ServiceRange(CLUSTER_V4, "host-routes-only"),))
    s = snap(svc("c", ("10.96.0.1",), local=False))
    routes = desired_routes(s, "node-b", policy)
    assert P("10.96.0.0/12") not in routes and routes[P("10.96.0.1/32")] == RouteAttrs(communities=(1,))


def test_aggregation_length_for_cluster_services_and_host_routes_for_local_ones() -> None:
    policy = replace(
        POLICY,
        ranges=(ServiceRange(EXT, "host-routes-only", 28), ServiceRange(LB_V6, "host-routes-only", 120)),
    )
    s = snap(
        svc(
            "c",
            ("10.96.0.1",),
            local=False,
            external_ips=("203.0.113.37",),
            lb_ips=("2001:db8:1b::1:5",),
            ip_families=("IPv4", "IPv6"),
        ),
        svc("l", ("10.96.0.2",), external_ips=("203.0.113.38",)),
        slice_of("l", {"node-a": 1}),
    )
    a = desired_routes(s, "node-a", policy)
    assert P("203.0.113.32/28") in a and P("203.0.113.37/32") not in a
    assert P("203.0.113.38/32") in a  # Local: always the host route
    assert P("2001:db8:1b::1:0/120") in a
    reasons = explain(s, "node-a", policy)[P("203.0.113.32/28")]
    assert [r.service for r in reasons] == [("default", "c")]


def test_range_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="aggregation: must be aggregate or host-routes-only"):
        ServiceRange(LB, "none")
    with pytest.raises(ValueError, match="aggregation_length: only with aggregation: host-routes-only"):
        ServiceRange(LB, aggregation_length=28)
    with pytest.raises(ValueError, match=r"aggregation_length: must be 25\.\.32"):
        ServiceRange(LB, "host-routes-only", 24)
    with pytest.raises(ValueError, match="require_ready_endpoint: only with"):
        ServiceRange(LB, "aggregate", require_ready_endpoint=True)
    with pytest.raises(ValueError, match=r"ranges: 192\.0\.2\.0/24 is not one of the configured ranges"):
        AdvertisePolicy(ranges=(ServiceRange(ipaddress.ip_network("192.0.2.0/24")),))
    assert ServiceRange(ipaddress.ip_network("192.0.2.7/32")).host_routes_only


# ------------------------------------------------------------------ a ready endpoint anywhere (failover)


def _slice_json(ready_node: str | None) -> dict[str, object]:
    endpoints = [
        {"addresses": ["10.244.9.1"], "nodeName": "node-x", "conditions": {"ready": ready_node == "node-x"}},
        {"addresses": ["10.244.9.2"], "nodeName": "node-y", "conditions": {"ready": ready_node == "node-y"}},
    ]
    return {
        "metadata": {"namespace": "default", "name": "g-1", "labels": {"kubernetes.io/service-name": "g"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
    }


def test_require_ready_endpoint_uses_the_cluster_wide_summary_kept_at_conversion() -> None:
    """A node speaker keeps only its own endpoints, but the slice remembers whether any endpoint anywhere
    was ready: the Cluster Service's LoadBalancer IP goes from every node while one is, from none when
    none is (so another site's route takes the traffic)."""
    policy = replace(POLICY, ranges=(ServiceRange(LB, "host-routes-only", require_ready_endpoint=True),))
    g = svc("g", ("10.96.0.1",), local=False, lb_ips=("198.51.100.200",))
    for ready_node, expected in (("node-x", True), ("node-y", True), (None, False)):
        view = endpointslice_from_dict(_slice_json(ready_node), node="node-a")
        assert view.endpoints == () and view.any_ready is expected
        routes = desired_routes(snap(g, view), "node-a", policy)
        assert (P("198.51.100.200/32") in routes) is expected
    without = replace(POLICY, ranges=(ServiceRange(LB, "host-routes-only"),))
    assert P("198.51.100.200/32") in desired_routes(snap(g), "node-a", without)


def test_require_ready_endpoint_is_per_family_and_follows_the_endpoint_policy() -> None:
    policy = replace(
        POLICY,
        endpoint_policy="serving",
        ranges=(
            ServiceRange(LB, "host-routes-only", require_ready_endpoint=True),
            ServiceRange(LB_V6, "host-routes-only", require_ready_endpoint=True),
        ),
    )
    g = svc(
        "g",
        ("10.96.0.1",),
        local=False,
        lb_ips=("198.51.100.200", "2001:db8:1b::5"),
        ip_families=("IPv4", "IPv6"),
    )
    terminating = EndpointSliceView(
        "default", "g-4", "g", "IPv4", (Endpoint(("10.244.0.1",), "node-x", False, True),)
    )
    routes = desired_routes(snap(g, terminating), "node-a", policy)
    assert P("198.51.100.200/32") in routes and P("2001:db8:1b::5/128") not in routes
    ready_only = replace(policy, endpoint_policy="ready")
    assert P("198.51.100.200/32") not in desired_routes(snap(g, terminating), "node-a", ready_only)


# --------------------------------------------------------------------- per-Service annotation attributes


def annotated(**annotations: str) -> dict[str, object]:
    return {
        "metadata": {"namespace": "default", "name": "web", "annotations": annotations},
        "spec": {
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "externalTrafficPolicy": "Local",
            "externalIPs": ["203.0.113.10"],
        },
    }


def test_annotations_merge_over_the_class_attributes() -> None:
    web = service_from_dict(
        annotated(
            **{
                "bgpsvc.io/communities": "64512:100, NO_EXPORT",
                "bgpsvc.io/large-communities": "64512:1:2",
                "bgpsvc.io/local-pref": "250",
                "bgpsvc.io/med": "7",
                "other.io/x": "y",
            }
        )
    )
    assert [k for k, _ in web.annotations] == [
        "bgpsvc.io/communities",
        "bgpsvc.io/large-communities",
        "bgpsvc.io/local-pref",
        "bgpsvc.io/med",
    ]
    s = snap(web, slice_of("web", {"node-a": 1}))
    ev = evaluate(s, "node-a", POLICY)
    host = ev.routes[P("10.96.0.10/32")]
    assert host.communities == tuple(sorted((1, (64512 << 16) | 100, 0xFFFFFF01)))
    assert host.large_communities == ((64512, 1, 2),) and (host.local_pref, host.med) == (250, 7)
    assert ev.routes[P("203.0.113.10/32")].communities == tuple(sorted((3, (64512 << 16) | 100, 0xFFFFFF01)))
    # A whole range's aggregate keeps the class attributes.
    assert ev.routes[P("203.0.113.0/24")] == RouteAttrs(communities=(3,)) and ev.problems == ()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bgpsvc.io/local-pref", "high", "bgpsvc.io/local-pref: LOCAL_PREF 'high' is not a number"),
        ("bgpsvc.io/local-pref", "4294967296", "bgpsvc.io/local-pref: LOCAL_PREF"),
        ("bgpsvc.io/med", "-1", "bgpsvc.io/med: MED '-1'"),
        ("bgpsvc.io/communities", "64512:70000", "bgpsvc.io/communities: community '64512:70000'"),
        ("bgpsvc.io/communities", "nonsense", "bgpsvc.io/communities: community 'nonsense'"),
        ("bgpsvc.io/large-communities", "1:2", "bgpsvc.io/large-communities: large community '1:2'"),
        ("bgpsvc.io/large-communities", "a:b:c", "bgpsvc.io/large-communities: invalid literal"),
    ],
)
def test_a_bad_annotation_gives_the_class_defaults_and_a_problem(key: str, value: str, message: str) -> None:
    web = service_from_dict(
        annotated(**{key: value, "bgpsvc.io/med": "3"} if key != "bgpsvc.io/med" else {key: value})
    )
    s = snap(web, slice_of("web", {"node-a": 1}))
    ev = evaluate(s, "node-a", POLICY)
    assert ev.routes[P("10.96.0.10/32")] == RouteAttrs(communities=(1,))  # never dropped
    (problem,) = ev.problems
    assert problem.service == ("default", "web") and problem.text.startswith(message), problem
    assert isinstance(service_attrs(web.annotations), str)


def test_shared_route_combines_the_services_annotations() -> None:
    a = svc(
        "a",
        ("10.96.0.1",),
        external_ips=("203.0.113.9",),
        annotations=(("bgpsvc.io/communities", "1:1"), ("bgpsvc.io/local-pref", "300")),
    )
    b = svc(
        "b",
        ("10.96.0.2",),
        external_ips=("203.0.113.9",),
        annotations=(("bgpsvc.io/communities", "2:2"), ("bgpsvc.io/local-pref", "100")),
    )
    s = snap(a, b, slice_of("a", {"node-a": 1}), slice_of("b", {"node-a": 1}))
    route = desired_routes(s, "node-a", POLICY)[P("203.0.113.9/32")]
    assert route.communities == (3, 0x10001, 0x20002) and route.local_pref == 300  # a sorts first


def test_problems_are_reported_by_the_step_and_nothing_crashes() -> None:
    bad = svc("bad", ("10.96.0.1",), annotations=(("bgpsvc.io/med", "\x00\xff"),))
    result = reconcile_step(snap(bad, slice_of("bad", {"node-a": 1})), "node-a", POLICY, None)
    (problem,) = result.problems
    assert problem.service == ("default", "bad") and problem.text.startswith("bgpsvc.io/med: MED")
    assert str(problem).startswith("default/bad: bgpsvc.io/med") and P("10.96.0.1/32") in result.routes


def test_damping_defaults_off() -> None:
    assert not Damping().active and not POLICY.damping.active


def test_bgp_advertisements_carry_weights_annotations_and_range_reasons() -> None:
    """A node's PolicySet (one policy per BGPAdvertisement) evaluates each policy with every rule here:
    a range's own reason sorts with the Services' ones, weights and annotations reach the routes."""
    weighted = replace(POLICY, link_bandwidth=LinkBandwidth((CLUSTER_IP,), asn=64512))
    s = snap(
        svc("web", ("10.96.0.10",), annotations=(("bgpsvc.io/med", "7"),)),
        svc("c", ("10.96.0.11",), local=False, external_ips=("203.0.113.9",)),
        slice_of("web", {"node-a": 2}),
    )
    explained, routes = PolicySet((PolicyEntry("a", weighted), PolicyEntry("b", POLICY))).explain(s, "node-a")
    assert [r.service for r in explained[P("203.0.113.0/24")]] == [None, ("default", "c")]
    host = routes[P("10.96.0.10/32")]
    assert host.med == 7 and bandwidth(host) == 2 * 125_000
