"""bgpsvc's CRDs (deploy/manifests/01-crds.yaml): every schema accepts the valid examples and rejects each
invalid shape with the field named, checked twice: with the schema itself (the lab's structural-schema
validator and CEL evaluator, no HTTP) and through the lab API server with the official client
(``ApiextensionsV1Api`` registers the CRDs, ``CustomObjectsApi`` writes the objects).

Each invalid example is a valid one with one change, so the rejection is that change's doing. The
converters (``bgpsvc.k8s.resources``/``advertise``) read every valid example into a usable view.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bgpsvc.k8s.advertise import advertisement_from_dict
from bgpsvc.k8s.informer import load_api_client
from bgpsvc.k8s.resources import node_config_from_dict, peer_from_dict
from bgpsvc.lab import ApiServer
from bgpsvc.lab.schema import parse_schema
from bgpsvc.lab.validation import apply_defaults, check_object, prune

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "manifests" / "01-crds.yaml"
GROUP, VERSION = "bgpsvc.io", "v1alpha1"
DOCS = {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(CRDS.read_text()) if d}
PLURAL = {kind: d["spec"]["names"]["plural"] for kind, d in DOCS.items()}

VALID: dict[str, list[dict[str, Any]]] = {
    "BGPPeer": [
        {"address": "192.0.2.1", "peerASN": 64500},
        {
            "address": "2001:db8::1",
            "peerASN": 4200000000,
            "localASN": 64512,
            "port": 1179,
            "sourceAddress": "2001:db8::10",
            "nodeSelector": {
                "matchLabels": {"rack": "r1"},
                "matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]},
                    {"key": "drain", "operator": "DoesNotExist"},
                ],
            },
            "holdTime": 30,
            "keepaliveTime": 10,
            "connectRetryTime": 5,
            "families": ["ipv6-unicast"],
            "ebgpMultihop": 2,
            "gracefulRestart": {"enabled": False},
            "passwordSecretRef": {"name": "tor-md5", "key": "pw"},
            "bfd": {"minRxInterval": 100, "minTxInterval": 100, "multiplier": 5},
        },
        {"address": "192.0.2.1", "peerASN": 64500, "holdTime": 0, "ttlSecurity": True, "passive": True},
    ],
    "BGPAdvertisement": [
        {"serviceClusterIPs": ["10.96.0.0/12"]},
        {
            "serviceClusterIPs": ["10.96.0.0/12", "fd00:96::/112"],
            "serviceExternalIPs": ["203.0.113.0/24"],
            "serviceLoadBalancerIPs": ["198.51.100.0/24"],
            "endpointPolicy": "Serving",
            "serviceSelector": {"matchLabels": {"bgp": "yes"}},
            "nodeSelector": {"matchExpressions": [{"key": "edge", "operator": "Exists"}]},
            "attributes": [
                {"routeClasses": ["ClusterRange"], "communities": ["64512:100", "no-export"]},
                {
                    "routeClasses": ["ClusterIP", "LoadBalancerIP"],
                    "largeCommunities": ["64512:1:4294967295"],
                    "localPreference": 200,
                    "med": 10,
                },
            ],
        },
        {
            "serviceLoadBalancerIPs": ["198.51.100.0/24", "203.0.113.0/24"],
            "ranges": [
                {"cidr": "198.51.100.0/24", "aggregation": "HostRoutesOnly", "requireReadyEndpoint": True},
                {"cidr": "203.0.113.0/24", "aggregation": "HostRoutesOnly", "aggregationLength": 28},
            ],
            "linkBandwidth": {"routeClasses": ["ClusterIP", "LoadBalancerIP"], "perEndpointMbps": 10},
        },
    ],
    "BGPNodeConfig": [
        {"routerID": "192.0.2.11"},
        {"localASN": 65001},
        {"routerID": "10.0.0.1", "localASN": 1},
    ],
}

# (kind, the change to the first valid example, the field the error names, words of the message)
PEER, ADV, NODE = (VALID[k][0] for k in ("BGPPeer", "BGPAdvertisement", "BGPNodeConfig"))
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "BGPAdvertisement",
        {"ranges": [{"cidr": "10.96.0.0/12", "aggregationLength": 24}]},
        "spec.ranges[0]",
        "aggregationLength needs aggregation HostRoutesOnly",
    ),
    (
        "BGPAdvertisement",
        {"ranges": [{"cidr": "10.96.0.0/12", "aggregation": "Sometimes"}]},
        "spec.ranges[0].aggregation",
        "Unsupported value",
    ),
    (
        "BGPAdvertisement",
        {"linkBandwidth": {"routeClasses": []}},
        "spec.linkBandwidth.routeClasses",
        "at least 1",
    ),
    ("BGPPeer", {"address": None}, "spec.address", "Required value"),
    ("BGPPeer", {"peerASN": None}, "spec.peerASN", "Required value"),
    ("BGPPeer", {"address": "192.0.2.300"}, "spec.address", "must be an IPv4 or IPv6 address"),
    ("BGPPeer", {"peerASN": 0}, "spec.peerASN", "greater than or equal to 1"),
    ("BGPPeer", {"peerASN": 4294967296}, "spec.peerASN", "less than or equal to 4294967295"),
    ("BGPPeer", {"localASN": -1}, "spec.localASN", "greater than or equal to 1"),
    ("BGPPeer", {"port": 0}, "spec.port", "greater than or equal to 1"),
    ("BGPPeer", {"sourceAddress": "eth0"}, "spec.sourceAddress", "must be an IPv4 or IPv6 address"),
    ("BGPPeer", {"sourceAddress": "2001:db8::1"}, "spec.sourceAddress", "same address family"),
    ("BGPPeer", {"holdTime": 2}, "spec.holdTime", "must be 0 or 3..65535"),
    ("BGPPeer", {"holdTime": 9, "keepaliveTime": 4}, "spec.keepaliveTime", "at most a third of holdTime"),
    ("BGPPeer", {"holdTime": 0, "keepaliveTime": 4}, "spec.keepaliveTime", "needs a holdTime"),
    ("BGPPeer", {"connectRetryTime": 0}, "spec.connectRetryTime", "greater than or equal to 1"),
    ("BGPPeer", {"families": []}, "spec.families", "at least 1 items"),
    ("BGPPeer", {"families": ["ipv4-flowspec"]}, "spec.families[0]", "Unsupported value"),
    ("BGPPeer", {"families": ["ipv4-unicast", "ipv4-unicast"]}, "spec.families[1]", "Duplicate value"),
    ("BGPPeer", {"ebgpMultihop": 256}, "spec.ebgpMultihop", "less than or equal to 255"),
    ("BGPPeer", {"ebgpMultihop": 2, "ttlSecurity": True}, "spec", "mutually exclusive"),
    ("BGPPeer", {"passwordSecretRef": {"key": "pw"}}, "spec.passwordSecretRef.name", "Required value"),
    ("BGPPeer", {"passwordSecretRef": {"name": ""}}, "spec.passwordSecretRef.name", "at least 1 chars"),
    ("BGPPeer", {"bfd": {"multiplier": 0}}, "spec.bfd.multiplier", "greater than or equal to 1"),
    ("BGPPeer", {"bfd": {"minRxInterval": 1}}, "spec.bfd.minRxInterval", "greater than or equal to 10"),
    (
        "BGPPeer",
        {"nodeSelector": {"matchExpressions": [{"key": "rack", "operator": "In"}]}},
        "spec.nodeSelector.matchExpressions[0]",
        "values: required for In and NotIn",
    ),
    (
        "BGPPeer",
        {"nodeSelector": {"matchExpressions": [{"key": "rack", "operator": "Exists", "values": ["x"]}]}},
        "spec.nodeSelector.matchExpressions[0]",
        "empty for Exists",
    ),
    (
        "BGPPeer",
        {"nodeSelector": {"matchExpressions": [{"key": "rack", "operator": "Near"}]}},
        "spec.nodeSelector.matchExpressions[0].operator",
        "Unsupported value",
    ),
    ("BGPAdvertisement", {"serviceClusterIPs": None}, "spec", "at least one of serviceClusterIPs"),
    (
        "BGPAdvertisement",
        {"serviceClusterIPs": ["10.96.0.0/33"]},
        "spec.serviceClusterIPs[0]",
        "must be a CIDR",
    ),
    (
        "BGPAdvertisement",
        {"serviceExternalIPs": ["203.0.113.7"]},
        "spec.serviceExternalIPs[0]",
        "must be a CIDR",
    ),
    ("BGPAdvertisement", {"endpointPolicy": "ready"}, "spec.endpointPolicy", "Unsupported value"),
    (
        "BGPAdvertisement",
        {"attributes": [{"communities": ["65536:1"]}]},
        "spec.attributes[0].communities[0]",
        "ASN:VALUE (each 0..65535)",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"communities": ["no-such-name"]}]},
        "spec.attributes[0].communities[0]",
        "well-known community name",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"largeCommunities": ["1:2"]}]},
        "spec.attributes[0].largeCommunities[0]",
        "GLOBAL:LOCAL1:LOCAL2",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"largeCommunities": ["4294967296:1:1"]}]},
        "spec.attributes[0].largeCommunities[0]",
        "each 0..4294967295",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"localPreference": 4294967296}]},
        "spec.attributes[0].localPreference",
        "less than or equal to 4294967295",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"routeClasses": ["ClusterIP"]}, {"routeClasses": ["ClusterIP", "ExternalIP"]}]},
        "spec.attributes",
        "one attributes entry only",
    ),
    (
        "BGPAdvertisement",
        {"attributes": [{"routeClasses": ["PodCIDR"]}]},
        "spec.attributes[0].routeClasses[0]",
        "Unsupported value",
    ),
    ("BGPNodeConfig", {"routerID": None}, "spec", "set routerID, localASN or both"),
    ("BGPNodeConfig", {"routerID": "2001:db8::1"}, "spec.routerID", "non-zero IPv4 address"),
    ("BGPNodeConfig", {"routerID": "0.0.0.0"}, "spec.routerID", "non-zero IPv4 address"),
    ("BGPNodeConfig", {"localASN": 0}, "spec.localASN", "greater than or equal to 1"),
]


def changed(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in change.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def obj(kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def admit(kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What kube-apiserver does to a create, with the CRD's own schema: prune, default, validate."""
    (version,) = DOCS[kind]["spec"]["versions"]
    schema, errs = parse_schema(version["schema"]["openAPIV3Schema"], "schema")
    assert errs == []
    out = copy.deepcopy(body)
    prune(out, schema, "", [], root=True)
    apply_defaults(out, schema)
    return out, [str(e) for e in check_object(out, schema, None)]


def invalid_ids() -> list[str]:
    return [f"{k}:{field}:{json.dumps(c)[:40]}" for k, c, field, _ in INVALID]


# -- with the schema itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "spec"), [(k, s) for k, specs in VALID.items() for s in specs])
def test_valid_examples_pass_the_schema_and_convert(kind: str, spec: dict[str, Any]) -> None:
    out, errs = admit(kind, obj(kind, spec))
    assert errs == []
    if kind == "BGPPeer":
        view = peer_from_dict(out)
        assert view.error is None and view.peer is not None and view.peer.address == spec["address"]
        assert out["spec"]["port"] == spec.get("port", 179) and out["spec"]["holdTime"] == spec.get(
            "holdTime", 90
        )
    elif kind == "BGPAdvertisement":
        adv = advertisement_from_dict(out)
        assert adv.error is None and adv.policy is not None
        assert out["spec"]["endpointPolicy"] == spec.get("endpointPolicy", "Ready")
    else:
        nc = node_config_from_dict(out)
        assert nc.error is None and (nc.router_id, nc.local_as) == (
            spec.get("routerID"),
            spec.get("localASN"),
        )


@pytest.mark.parametrize(("kind", "change", "field", "words"), INVALID, ids=invalid_ids())
def test_each_invalid_shape_is_rejected_by_the_schema_naming_the_field(
    kind: str, change: dict[str, Any], field: str, words: str
) -> None:
    _, errs = admit(kind, obj(kind, changed(VALID[kind][0], change)))
    assert any(e.startswith(f"{field}: ") and words in e for e in errs), errs


def test_bgpnodestatus_takes_what_the_speaker_writes() -> None:
    status = {
        "nodeName": "node-1",
        "routerID": "192.0.2.11",
        "localASN": 64512,
        "peers": [
            {
                "name": "tor-a",
                "source": "BGPPeer/tor-a",
                "peerAddress": "192.0.2.1",
                "peerASN": 64500,
                "localASN": 64512,
                "state": "Established",
                "since": "2024-05-01T10:00:00Z",
                "flaps": 0,
                "families": ["ipv4-unicast"],
                "holdTime": 90,
                "routes": [{"family": "ipv4-unicast", "advertised": 3, "received": 0}],
            }
        ],
        "conditions": [
            {
                "type": "ConfigApplied",
                "status": "True",
                "reason": "Applied",
                "message": "",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
            }
        ],
    }
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BGPNodeStatus",
        "metadata": {"name": "n"},
        "status": status,
    }
    out, errs = admit("BGPNodeStatus", body)
    assert errs == [] and out["status"] == status  # nothing pruned
    bad = copy.deepcopy(body)
    bad["status"]["peers"][0]["state"] = "Up"
    assert any(
        e.startswith("status.peers[0].state: Unsupported value") for e in admit("BGPNodeStatus", bad)[1]
    )


# -- through the lab API server and the official client ------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ApiServer() as lab:
        client = load_api_client(str(lab.write_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig")))
        ext = k8s.ApiextensionsV1Api(client)
        for doc in DOCS.values():
            created = ext.create_custom_resource_definition(doc)
            assert {c.type: c.status for c in created.status.conditions}["Established"] == "True"
        yield k8s.CustomObjectsApi(client)
        client.close()


def test_valid_examples_are_created_with_defaults(served: Any) -> None:
    for kind, specs in VALID.items():
        for i, spec in enumerate(specs):
            out = served.create_cluster_custom_object(
                GROUP, VERSION, PLURAL[kind], obj(kind, spec, f"ok-{i}")
            )
            assert out["metadata"]["generation"] == 1
            assert out["spec"] == admit(kind, obj(kind, spec))[0]["spec"]  # the same defaults


@pytest.mark.parametrize(("kind", "change", "field", "words"), INVALID, ids=invalid_ids())
def test_each_invalid_shape_is_refused_by_the_api_server_naming_the_field(
    served: Any, kind: str, change: dict[str, Any], field: str, words: str
) -> None:
    body = obj(kind, changed(VALID[kind][0], change), "bad")
    with pytest.raises(ApiException) as err:
        served.create_cluster_custom_object(GROUP, VERSION, PLURAL[kind], body)
    assert err.value.status == 422
    st = json.loads(err.value.body)
    causes = [(c["field"], c["message"]) for c in st["details"]["causes"]]
    assert any(f == field and words in m for f, m in causes), causes


def test_range_and_weighting_options_map_onto_the_policy() -> None:
    adv = advertisement_from_dict(obj("BGPAdvertisement", VALID["BGPAdvertisement"][2]))
    assert adv.error is None and adv.policy is not None
    by_net = {str(r.network): r for r in adv.policy.ranges}
    assert by_net["198.51.100.0/24"].host_routes_only and by_net["198.51.100.0/24"].require_ready_endpoint
    assert by_net["203.0.113.0/24"].length == 28
    lb = adv.policy.link_bandwidth
    assert set(lb.classes) == {"cluster-ip", "loadbalancer-ip"} and lb.bytes_per_second(2) == 2 * 10 * 125_000
    bad = advertisement_from_dict(
        obj(
            "BGPAdvertisement",
            {"serviceLoadBalancerIPs": ["198.51.100.0/24"], "ranges": [{"cidr": "192.0.2.0/24"}]},
        )
    )
    assert bad.error is not None and bad.error.startswith(
        "spec.ranges: 192.0.2.0/24 is not one of the configured"
    )


def test_a_bgppeers_bfd_settings_reach_the_peer_config() -> None:
    from bgpsvc.fsm import BfdSettings  # noqa: PLC0415

    spec = {"address": "192.0.2.1", "peerASN": 64500, "bfd": {"minRxInterval": 100, "minTxInterval": 100}}
    res = peer_from_dict(obj("BGPPeer", spec))
    assert res.error is None and res.peer is not None
    assert res.peer.bfd == BfdSettings(100, 100, 3)
    assert peer_from_dict(obj("BGPPeer", {"address": "192.0.2.1", "peerASN": 64500})).peer.bfd is None  # type: ignore[union-attr]
