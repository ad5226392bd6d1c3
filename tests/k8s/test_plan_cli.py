"""``bgpsvc plan`` as an operator runs it from a workstation, against the lab API server.

It needs no peer secrets (``password_env`` unset is fine: plan opens no session), and naming a node
the cluster does not have is an error (exit 2, the known nodes listed), not an empty plan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bgpsvc.lab.apiserver import ApiServer

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))
CONFIG = {
    "local_as": 64512,
    "listen": False,
    "peers": [{"address": "192.0.2.1", "peer_as": 64500, "password_env": "PLAN_TEST_UNSET_PASSWORD"}],
    "kubernetes": {"service_cluster_ips": ["198.51.100.0/24"]},
}


def plan(tmp: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "node.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "PLAN_TEST_UNSET_PASSWORD")}
    return subprocess.run(
        [BGPSVC, "plan", "-c", str(cfg), "--kubeconfig", str(kubeconfig), "--timeout", "10", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_plan_needs_no_secrets_and_refuses_an_unknown_node(tmp_path: Path) -> None:
    with ApiServer() as api:
        for name in ("node-a", "node-b"):
            api.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name},
                    "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.21"}]},
                }
            )
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        ok = plan(tmp_path, kubeconfig, "--node", "node-a", "--json")
        assert ok.returncode == 0, ok.stderr
        routes = json.loads(ok.stdout)["node-a"]["routes"]
        assert [r["prefix"] for r in routes] == ["198.51.100.0/24"]
        unknown = plan(tmp_path, kubeconfig, "--node", "node-z")
        assert unknown.returncode == 2, unknown.stdout + unknown.stderr
        assert (
            unknown.stderr.strip()
            == "bgpsvc: node 'node-z': no such Node in the cluster (nodes: node-a, node-b)"
        )
        assert unknown.stdout == ""
