"""The ``kubernetes:`` section's traffic settings: per-range entries, ``link_bandwidth`` and ``damping``,
read against their dataclasses, with one line naming the field for each mistake."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from bgpsvc.app.config import ConfigError, parse_config
from bgpsvc.k8s.policy import AdvertisePolicy, Damping, LinkBandwidth, ServiceRange


def kube(**section: object) -> dict[str, object]:
    return {"local_as": 64512, "kubernetes": {"node_name": "n1", **section}}


def test_ranges_links_and_damping_load() -> None:
    cfg = parse_config(
        kube(
            service_cluster_ips=["10.96.0.0/12"],
            service_external_ips="203.0.113.0/24, 198.51.100.7/32",
            service_loadbalancer_ips=[
                "198.51.100.128/25",
                {"cidr": "2001:db8:1b::/64", "aggregation": "host-routes-only", "aggregation_length": 120},
                {"cidr": "192.0.2.192/27", "aggregation": "host-routes-only", "require_ready_endpoint": True},
            ],
            link_bandwidth={
                "classes": ["cluster-ip", "loadbalancer-ip"],
                "per_endpoint_mbps": 10,
                "transitive": False,
            },
            damping={"rise": 1, "fall": 0.5, "min_update_interval": 2},
        ),
        env={},
    )
    assert cfg.kubernetes is not None
    policy = cfg.kubernetes.policy
    net = ipaddress.ip_network
    assert policy.service_external_ips == (net("203.0.113.0/24"), net("198.51.100.7/32"))
    assert policy.service_loadbalancer_ips == (
        net("198.51.100.128/25"),
        net("2001:db8:1b::/64"),
        net("192.0.2.192/27"),
    )
    assert policy.ranges == (
        ServiceRange(net("2001:db8:1b::/64"), "host-routes-only", 120),
        ServiceRange(net("192.0.2.192/27"), "host-routes-only", None, True),
    )
    assert policy.range_spec(net("198.51.100.128/25")) == ServiceRange(net("198.51.100.128/25"))
    assert policy.link_bandwidth == LinkBandwidth(("cluster-ip", "loadbalancer-ip"), 10.0, False)
    assert policy.damping == Damping(1.0, 0.5, 2.0)
    # The node's AS goes into the community unless the config names one.
    assert cfg.kubernetes.policy_for(64999).link_bandwidth.asn == 64999
    assert parse_config(kube(), env={}).kubernetes.policy_for(64999).link_bandwidth.asn is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"service_loadbalancer_ips": [{"cidr": "198.51.100.0/24", "aggregation_length": 28}]},
            "kubernetes.service_loadbalancer_ips[0].aggregation_length: "
            "only with aggregation: host-routes-only",
        ),
        (
            {
                "service_loadbalancer_ips": [
                    {"cidr": "198.51.100.0/24", "aggregation": "host-routes-only", "aggregation_length": 16}
                ]
            },
            "kubernetes.service_loadbalancer_ips[0].aggregation_length: must be 24..32 for 198.51.100.0/24",
        ),
        (
            {"service_external_ips": [{"cidr": "203.0.113.0/24", "aggregation": "sometimes"}]},
            "kubernetes.service_external_ips[0].aggregation: must be aggregate or host-routes-only",
        ),
        (
            {"service_external_ips": [{"cidr": "203.0.113.0/24", "agregation": "aggregate"}]},
            "kubernetes.service_external_ips[0].agregation: unknown field (did you mean 'aggregation'?)",
        ),
        (
            {"service_external_ips": [{"aggregation": "aggregate"}]},
            "kubernetes.service_external_ips[0].cidr: required",
        ),
        (
            {"service_external_ips": ["203.0.113.0/33"]},
            "kubernetes.service_external_ips[0]: '203.0.113.0/33'",
        ),
        (
            {"service_cluster_ips": ["10.96.0.0/12", "10.96.0.0/12"]},
            "kubernetes.service_cluster_ips[1]: 10.96.0.0/12 is listed twice",
        ),
        ({"service_cluster_ips": 5}, "kubernetes.service_cluster_ips: expected a list of CIDRs"),
        (
            {"link_bandwidth": {"classes": ["cluster"]}},
            "kubernetes.link_bandwidth.classes: unknown route class 'cluster'",
        ),
        ({"link_bandwidth": {"classes": "cluster-ip"}}, "kubernetes.link_bandwidth.classes: expected a list"),
        (
            {"link_bandwidth": {"per_endpoint_mbps": -1}},
            "kubernetes.link_bandwidth.per_endpoint_mbps: must be >= 0",
        ),
        (
            {"link_bandwidth": {"per_endpoint_mbps": 0}},
            "kubernetes.link_bandwidth.per_endpoint_mbps: must be > 0",
        ),
        ({"link_bandwidth": {"asn": "x"}}, "kubernetes.link_bandwidth.asn: expected an integer"),
        ({"damping": {"rise": -1}}, "kubernetes.damping.rise: must be >= 0"),
        ({"damping": {"raise": 1}}, "kubernetes.damping.raise: unknown field (did you mean 'rise'?)"),
        ({"damping": [1]}, "kubernetes.damping: expected a mapping"),
    ],
)
def test_mistakes_name_the_field(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(kube(**section), env={})
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("cls", [ServiceRange, LinkBandwidth, Damping, AdvertisePolicy])
def test_every_field_is_documented(cls: type) -> None:
    for f in dataclasses.fields(cls):
        assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc(...) metadata"
