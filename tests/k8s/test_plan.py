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
""")
        base = [sys.executable, "-m", "bgpsvc.app.cli", "plan", "-c", str(cfg)]
        out = subprocess.run(
            [*base, "--all-nodes", "--json"], capture_output=True, text=True, timeout=60, check=True
        )
        result = json.loads(out.stdout)
        a = {r["prefix"]: r for r in result["node-a"]["routes"]}
        b = {r["prefix"]: r for r in result["node-b"]["routes"]}
        assert set(a) == {"198.51.100.0/24", "198.51.100.10/32", "203.0.113.10/32"}
        assert a["198.51.100.10/32"]["reasons"] == [
            {"class": "cluster-ip", "service": "shop/web", "endpoints": ["10.244.1.7"]}
        ]
        assert a["198.51.100.10/32"]["attributes"] == {"communities": [(64512 << 16) | 10]}
        assert set(b) == {"198.51.100.0/24"}
        assert result["node-c"] == {"eligible": False, "known": True, "routes": []}
        table = subprocess.run(
            [*base, "--node", "node-a"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert "198.51.100.10/32" in table and "cluster-ip shop/web via 10.244.1.7" in table
