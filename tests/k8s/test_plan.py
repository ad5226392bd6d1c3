"""``bgpsvc plan`` against the list/watch server, through the real kubernetes client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bgpsvc.lab.apiserver import ApiServer

NODES = [
    ("node-a", "192.0.2.21", {}),
    ("node-b", "192.0.2.22", {}),
    ("node-c", "192.0.2.23", {"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
]


def objects() -> list[dict[str, object]]:
    objs: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": n, "labels": labels},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
        }
        for n, ip, labels in NODES
    ]
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"namespace": "shop", "name": "web"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "198.51.100.10",
                "clusterIPs": ["198.51.100.10"],
                "externalTrafficPolicy": "Local",
                "externalIPs": ["203.0.113.10"],
            },
        }
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "namespace": "shop",
                "name": "odd",
                "annotations": {"bgpsvc.io/local-pref": "high", "bgpsvc.io/advertise": "true"},
            },
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "198.51.100.11",
                "clusterIPs": ["198.51.100.11"],
                "externalIPs": ["192.0.2.99", "2001:db8::9"],
            },
        }
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"namespace": "shop", "name": "off", "annotations": {"bgpsvc.io/advertise": "false"}},
            "spec": {"type": "ClusterIP", "clusterIP": "198.51.100.12", "clusterIPs": ["198.51.100.12"]},
        }
    )
    objs.append(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "namespace": "shop",
                "name": "web-x1",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.1.7"], "nodeName": "node-a", "conditions": {"ready": True}},
                {"addresses": ["10.244.3.7"], "nodeName": "node-c", "conditions": {"ready": True}},
            ],
        }
    )
    return objs


def test_plan_all_nodes_json_and_table(tmp_path: Path) -> None:
    with ApiServer() as api:
        for obj in objects():
            api.apply(obj)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        cfg = tmp_path / "node.yaml"
        cfg.write_text(f"""
local_as: 64512
peers: [{{address: 192.0.2.1, peer_as: 64500}}]
kubernetes:
  kubeconfig: {kubeconfig}
  service_cluster_ips: [198.51.100.0/24]
  service_external_ips: [203.0.113.0/24]
  attributes:
    cluster-ip: {{communities: ["64512:10"]}}
  link_bandwidth: {{classes: [cluster-ip], per_endpoint_mbps: 2}}
""")
        base = [sys.executable, "-m", "bgpsvc.app.cli", "plan", "-c", str(cfg)]
        out = subprocess.run(
            [*base, "--all-nodes", "--json"], capture_output=True, text=True, timeout=60, check=True
        )
        result = json.loads(out.stdout)
        a = {r["prefix"]: r for r in result["node-a"]["routes"]}
        b = {r["prefix"]: r for r in result["node-b"]["routes"]}
        assert set(a) == {"198.51.100.0/24", "198.51.100.10/32", "203.0.113.10/32", "203.0.113.0/24"}
        web = a["198.51.100.10/32"]
        assert web["reasons"] == [{"class": "cluster-ip", "service": "shop/web", "endpoints": ["10.244.1.7"]}]
        assert web["weight"] == 1
        # Link bandwidth in the node's AS (64512), 2 Mbit/s per endpoint = 250000 bytes/s.
        assert web["attributes"] == {
            "communities": [(64512 << 16) | 10],
            "extended_communities": ["lb:64512:250000"],
        }
        assert "weight" not in a["203.0.113.10/32"]
        assert set(b) == {"198.51.100.0/24", "203.0.113.0/24"}
        assert result["node-c"]["eligible"] is False and result["node-c"]["routes"] == []
        assert {(n["service"], n["why"]) for n in result["node-c"]["not_advertised"]} == {
            ("shop/web", "node excluded (node.kubernetes.io/exclude-from-external-load-balancers)"),
            ("shop/odd", "node excluded (node.kubernetes.io/exclude-from-external-load-balancers)"),
            ("shop/off", "opted out (bgpsvc.io/advertise: false)"),
        }
        why_not_b = {(n["service"], n["address"], n["why"]) for n in result["node-b"]["not_advertised"]}
        assert why_not_b == {
            ("shop/web", "198.51.100.10", "no ready endpoint of that family on this node"),
            ("shop/web", "203.0.113.10", "no ready endpoint of that family on this node"),
            ("shop/odd", "192.0.2.99", "outside every configured range"),
            ("shop/odd", "2001:db8::9", "family not in the Service's ipFamilies"),
            ("shop/off", None, "opted out (bgpsvc.io/advertise: false)"),
        }
        assert result["node-a"]["problems"] == [
            {
                "service": "shop/odd",
                "error": "bgpsvc.io/local-pref: LOCAL_PREF 'high' is not a number 0..4294967295",
            }
        ]
        table = subprocess.run(
            [*base, "--node", "node-b"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert "203.0.113.0/24" in table and "not advertised (5):" in table
        assert "shop/odd external-ip 192.0.2.99: outside every configured range" in table
        assert "annotation problem: shop/odd: bgpsvc.io/local-pref" in table
        table = subprocess.run(
            [*base, "--node", "node-a"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert "cluster-ip shop/web via 10.244.1.7  [weight 1]" in table
