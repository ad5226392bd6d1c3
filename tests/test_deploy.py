"""Deployment artefacts: deploy/manifests, the Helm chart, the Dockerfile and the example configs.

- Every manifest document deserialises into the official client's model for its kind, and serialising
  the model gives the document back unchanged: a misspelt or misplaced field (which the client would
  silently drop) fails here, as does a wrong type or a missing required field.
- RBAC is exactly list+watch on services, nodes, endpointslices and bgpsvc's custom resources, status
  writes (patch of */status, create of BGPNodeStatus), and list+watch of the peers' Secret by name.
- The CRDs in deploy/manifests/01-crds.yaml, the chart's crds/ and the package's copy (the demo's) are one
  file; the plain manifests' RBAC names every bgpsvc.io resource the CRDs define.
- The DaemonSet agrees with the speaker config in the ConfigMap: the probes and the metrics Service reach
  the control endpoint, the grace period outlasts the drain, every ``password_env`` comes from the Secret,
  capabilities match what the config binds. That config passes bgpsvc's own validation and runs: a real
  ``bgpsvc run`` process against the lab API server answers the probes and stops on SIGTERM in time.
- ``helm template`` with default values renders the same objects as the plain manifests (needs helm: the
  ``HELM`` environment variable or ``helm`` on PATH; skipped otherwise). Without helm, the chart's default
  values are still compared with the manifests field by field.
- The Dockerfile runs as non-root and installs this package; the examples load and run.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from bgpsvc.app.config import ConfigError, RunConfig, load_config, load_routes, parse_config
from bgpsvc.k8s.config import select_peers
from bgpsvc.k8s.lease import LEASE_NAME
from bgpsvc.k8s.views import NodeView
from bgpsvc.lab.apiserver import ApiServer
from bgpsvc.wire import Prefix, community

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "manifests"
CHART = DEPLOY / "helm" / "bgpsvc"
DOCKERFILE = DEPLOY / "Dockerfile"
EXAMPLES = ROOT / "examples"
NAMESPACE = "bgpsvc-system"
SECRET = "bgpsvc-peer-password"
CONFIG_KEY = "bgpsvc.yaml"
HELM = os.environ.get("HELM") or shutil.which("helm")
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="helm is not installed (set HELM=/path/to/helm or put helm on PATH): the chart's rendering is "
    "not compared with deploy/manifests; test_chart_defaults_match_the_manifests still checks the values",
)

#: (apiVersion, kind) -> the official client's model. Anything else in deploy/manifests is an error.
MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "V1CustomResourceDefinition",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
CRDS = MANIFESTS / "01-crds.yaml"
CRD_COPIES = (CHART / "crds" / "crds.yaml", ROOT / "bgpsvc" / "app" / "data" / "crds.yaml")
#: Seconds the speaker needs after the drain: informers stop (up to 2 s each), Cease, exit.
STOP_MARGIN = 10

Doc = dict[str, Any]


# -- loading -------------------------------------------------------------------------------------------------


def load_docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS.glob("*.yaml"))


def manifests() -> list[tuple[str, Doc]]:
    return [(p.name, d) for p in manifest_files() for d in load_docs(p.read_text())]


def find(kind: str, docs: list[Doc] | None = None, name: str | None = None) -> Doc:
    found = [
        d
        for d in (docs if docs is not None else [d for _, d in manifests()])
        if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def daemonset() -> Doc:
    return find("DaemonSet")


def container() -> Doc:
    (c,) = daemonset()["spec"]["template"]["spec"]["containers"]
    return c


def config_text() -> str:
    return str(find("ConfigMap")["data"][CONFIG_KEY])


def config_data() -> Doc:
    data = yaml.safe_load(config_text())
    assert isinstance(data, dict)
    return data


def parse(data: Doc, monkeypatch: pytest.MonkeyPatch, password: str | None = "x") -> RunConfig:
    # password_env is read from parse_config's env, as the container's environment would provide it.
    env = {"NODE_NAME": "node-1"}
    if password is not None:
        env["BGP_PASSWORD"] = password
    return parse_config(copy.deepcopy(data), env=env)


def env_var(name: str) -> Doc:
    (var,) = [e for e in container().get("env", []) if e["name"] == name]
    return var


def container_port(port: int | str) -> int:
    """A probe's or Service's port: a number or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container()["ports"] if p["name"] == port]
    return int(found)


def deserialise(doc: Doc) -> Any:
    model = MODELS[(doc["apiVersion"], doc["kind"])]
    return k8s.ApiClient().deserialize(json.dumps(doc), model, "application/json")


# -- every manifest is a valid object of the official client -------------------------------------------------


def test_the_manifests_hold_the_expected_objects() -> None:
    got = sorted((d["kind"], d["metadata"]["name"]) for _, d in manifests())
    assert got == sorted(
        [
            ("Namespace", NAMESPACE),
            ("ServiceAccount", "bgpsvc"),
            ("ClusterRole", "bgpsvc"),
            ("ClusterRoleBinding", "bgpsvc"),
            ("Role", "bgpsvc-peer-secrets"),
            ("RoleBinding", "bgpsvc-peer-secrets"),
            ("Role", "bgpsvc-lease"),
            ("RoleBinding", "bgpsvc-lease"),
            ("CustomResourceDefinition", "bgppeers.bgpsvc.io"),
            ("CustomResourceDefinition", "bgpadvertisements.bgpsvc.io"),
            ("CustomResourceDefinition", "bgpnodeconfigs.bgpsvc.io"),
            ("CustomResourceDefinition", "bgpnodestatuses.bgpsvc.io"),
            ("ConfigMap", "bgpsvc"),
            ("DaemonSet", "bgpsvc"),
            ("Service", "bgpsvc-metrics"),
        ]
    )
    # kubectl apply -f deploy/manifests/ goes in file-name order: the namespace first.
    assert manifest_files()[0].name == "00-namespace.yaml"
    assert [d["kind"] for d in load_docs(manifest_files()[0].read_text())] == ["Namespace"]


@pytest.mark.parametrize(
    ("name", "doc"),
    manifests(),
    ids=[f"{n}:{d.get('kind')}/{d.get('metadata', {}).get('name')}" for n, d in manifests()],
)
def test_each_manifest_round_trips_through_the_official_client_model(name: str, doc: Doc) -> None:
    assert (doc.get("apiVersion"), doc.get("kind")) in MODELS, f"{name}: unexpected kind {doc.get('kind')}"
    obj = deserialise(doc)
    assert type(obj).__name__ == MODELS[(doc["apiVersion"], doc["kind"])]
    assert obj.metadata.name == doc["metadata"]["name"]
    # The models drop unknown keys silently: equality after serialising back catches typos such as
    # `hostNetwok` or a field at the wrong level.
    assert k8s.ApiClient().sanitize_for_serialization(obj) == doc
    if doc["kind"] in CLUSTER_SCOPED:
        assert "namespace" not in doc["metadata"]
    else:
        assert obj.metadata.namespace == NAMESPACE


def test_the_typed_daemonset_keeps_the_key_fields() -> None:
    ds = deserialise(daemonset())
    spec = ds.spec.template.spec
    (c,) = spec.containers
    assert spec.host_network is True and spec.dns_policy == "ClusterFirstWithHostNet"
    assert spec.service_account_name == "bgpsvc"
    assert c.env[0].value_from.field_ref.field_path == "spec.nodeName"
    assert c.liveness_probe.http_get.path == "/healthz" and c.readiness_probe.http_get.path == "/readyz"
    assert c.security_context.capabilities.drop == ["ALL"]
    assert ds.spec.update_strategy.rolling_update.max_unavailable == 1


def test_the_namespace_allows_host_network_pods() -> None:
    labels = find("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


# -- RBAC ----------------------------------------------------------------------------------------------------


def granted(role: Doc) -> set[tuple[str, str, str, str | None]]:
    out: set[tuple[str, str, str, str | None]] = set()
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, "no nonResourceURLs"
        names = rule.get("resourceNames") or [None]
        out |= {
            (g, r, v, n)
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
            for n in names
        }
    return out


def test_rbac_reads_what_the_informers_list_and_writes_only_status() -> None:
    cr = ("bgppeers", "bgpadvertisements", "bgpnodeconfigs")
    reads = [("", "services"), ("", "nodes"), ("discovery.k8s.io", "endpointslices")] + [
        ("bgpsvc.io", r) for r in cr
    ]
    status = [f"{r}/status" for r in (*cr, "bgpnodestatuses")]
    assert granted(find("ClusterRole")) == {(g, r, v, None) for g, r in reads for v in ("list", "watch")} | {
        ("bgpsvc.io", r, "patch", None) for r in status
    } | {("bgpsvc.io", "bgpnodestatuses", "create", None)}


def test_secrets_are_readable_by_name_in_the_namespace_only() -> None:
    role = find("Role", name="bgpsvc-peer-secrets")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert granted(role) == {("", "secrets", v, SECRET) for v in ("list", "watch")}
    _bound_to_the_speaker("bgpsvc-peer-secrets")


def test_the_lease_role_creates_leases_and_renews_only_bgpsvcs() -> None:
    role = find("Role", name="bgpsvc-lease")
    assert role["metadata"]["namespace"] == NAMESPACE
    group = "coordination.k8s.io"
    assert granted(role) == {(group, "leases", "create", None)} | {
        (group, "leases", v, LEASE_NAME) for v in ("get", "update")
    }
    _bound_to_the_speaker("bgpsvc-lease")


def _bound_to_the_speaker(role: str) -> None:
    binding = find("RoleBinding", name=role)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
    account = find("ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]


def test_the_crd_copies_are_one_file() -> None:
    for copy_ in CRD_COPIES:
        assert copy_.read_text() == CRDS.read_text(), f"cp {CRDS.relative_to(ROOT)} {copy_.relative_to(ROOT)}"


def test_rbac_covers_every_bgpsvc_resource_the_crds_define() -> None:
    plurals = {d["spec"]["names"]["plural"] for d in load_docs(CRDS.read_text())}
    in_rbac = {r.split("/")[0] for g, r, _, _ in granted(find("ClusterRole")) if g == "bgpsvc.io"}
    assert in_rbac == plurals
    for d in load_docs(CRDS.read_text()):
        (version,) = d["spec"]["versions"]
        assert d["spec"]["scope"] == "Cluster" and version["subresources"] == {"status": {}}


def test_the_speaker_gets_its_namespace_for_the_peer_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_var("POD_NAMESPACE")["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    env = {"NODE_NAME": "node-1", "BGP_PASSWORD": "x", "POD_NAMESPACE": NAMESPACE}
    cfg = parse_config(copy.deepcopy(config_data()), env=env)
    assert cfg.kubernetes is not None and cfg.kubernetes.secret_namespace == NAMESPACE


def test_the_binding_gives_the_role_to_the_daemonsets_service_account() -> None:
    binding = find("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": find("ClusterRole")["metadata"]["name"],
    }
    account = find("ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    assert daemonset()["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]


# -- the DaemonSet agrees with the config --------------------------------------------------------------------


def test_daemonset_runs_on_every_node_in_the_host_network() -> None:
    ds = daemonset()
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def tolerated(key: str, effect: str) -> bool:
        return any(
            (t.get("operator") == "Exists" and t.get("key") in (None, key))
            and t.get("effect") in (None, effect)
            for t in pod["tolerations"]
        )

    assert tolerated("node-role.kubernetes.io/control-plane", "NoSchedule")
    assert tolerated("node.kubernetes.io/not-ready", "NoExecute")


def test_node_name_comes_from_the_downward_api(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_var("NODE_NAME")["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert "node_name" not in config_data()["kubernetes"]
    kube = parse(config_data(), monkeypatch).kubernetes
    assert kube is not None and kube.node_name == "node-1"


def test_the_config_file_is_the_mounted_configmap_key() -> None:
    args = container()["args"]
    assert args[:1] == ["run"] and args[args.index("--config") + 1] == f"/etc/bgpsvc/{CONFIG_KEY}"
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == "/etc/bgpsvc" and mount["readOnly"] is True
    (volume,) = [v for v in daemonset()["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == find("ConfigMap")["metadata"]["name"]


def test_probes_and_the_metrics_service_reach_the_control_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    control = parse(config_data(), monkeypatch).control
    assert control.enabled
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container()[probe]["httpGet"]
        assert get["path"] == path
        assert container_port(get["port"]) == control.port
        if "host" in get:
            assert get["host"] == control.address
        else:
            # kubelet probes the pod IP, which with hostNetwork is the node's address: bind them all.
            assert ipaddress.ip_address(control.address).is_unspecified
    (port,) = [p for p in container()["ports"] if container_port(p["name"]) == control.port]
    assert port["hostPort"] == port["containerPort"]  # hostNetwork: the API server demands equality
    service = find("Service")
    assert service["spec"]["type"] == "ClusterIP"
    pod_labels = daemonset()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (sport,) = service["spec"]["ports"]
    assert sport["name"] == "metrics" and sport["port"] == control.port
    assert container_port(sport["targetPort"]) == control.port
    # The Service's endpoints are node IPs, so the endpoint must not be on loopback.
    assert ipaddress.ip_address(control.address).is_unspecified


def test_the_grace_period_outlasts_the_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    grace = daemonset()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = parse(config_data(), monkeypatch).speaker.drain_time
    assert drain > 0
    assert grace >= drain + STOP_MARGIN


def test_peer_passwords_come_from_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {p["password_env"] for p in config_data()["peers"] if "password_env" in p}
    assert names == {"BGP_PASSWORD"}
    assert not any("password" in p or "password_file" in p for p in config_data()["peers"])
    for name in names:
        ref = env_var(name)["valueFrom"]["secretKeyRef"]
        assert ref["name"] == SECRET and ref["key"] == "password"
        if ref.get("optional"):
            # Without the Secret kubelet leaves the variable unset, and password_env then refuses to
            # start; the image's empty default (= no MD5) is what makes the Secret optional.
            assert dockerfile_env().get(name) == ""
    cfg = parse(config_data(), monkeypatch, password="s3cret")
    assert {p.password for p in cfg.speaker.peers} == {"s3cret"}


def test_without_the_secret_the_image_default_means_no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse(config_data(), monkeypatch, password="")
    assert cfg.speaker.peers and all(not p.password for p in cfg.speaker.peers)
    with pytest.raises(ConfigError, match=r"^peers\[0\]\.password_env: environment variable BGP_PASSWORD"):
        parse(config_data(), monkeypatch, password=None)


def test_security_context_matches_what_the_config_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse(config_data(), monkeypatch)
    pod = daemonset()["spec"]["template"]["spec"]["securityContext"]
    sc = container()["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    privileged_ports = [port for _, port in cfg.speaker.listen if port < 1024]
    if privileged_ports:
        # Kubernetes cannot hand an added capability to a non-root process (no ambient capabilities):
        # binding below 1024 means UID 0 holding NET_BIND_SERVICE and nothing else.
        assert sc["capabilities"]["add"] == ["NET_BIND_SERVICE"] and pod["runAsUser"] == 0
    else:
        assert cfg.speaker.listen == () and "add" not in sc["capabilities"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532 == dockerfile_user()
    # readOnlyRootFilesystem: /tmp is the only writable place.
    assert {"name": "tmp", "mountPath": "/tmp"} in container()["volumeMounts"]


def test_resources_are_requested_and_limited() -> None:
    res = container()["resources"]
    assert set(res["requests"]) == {"cpu", "memory"} and set(res["limits"]) == {"cpu", "memory"}


def test_the_image_is_this_version() -> None:
    version = pyproject()["project"]["version"]
    assert container()["image"] == f"ghcr.io/example/bgpsvc:{version}"
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == version


# -- the ConfigMap's config ----------------------------------------------------------------------------------


def test_the_configmap_config_passes_the_speakers_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse(config_data(), monkeypatch)
    assert cfg.speaker.local_as == 64512 and cfg.speaker.listen == ()
    assert cfg.speaker.router_id == "0.0.0.0"  # filled from the node's InternalIP
    assert cfg.kubernetes is not None and cfg.kubernetes.router_id_from_node
    policy = cfg.kubernetes.policy
    assert policy.service_cluster_ips == (ipaddress.ip_network("10.96.0.0/12"),)
    assert policy.attrs("cluster-range").communities == (community("64512:100"),)
    rack1 = {"topology.kubernetes.io/zone": "rack1"}
    assert [p.name for p in peers_for(cfg, rack1)] == ["rack1-tor-a", "rack1-tor-b"]
    assert not peers_for(cfg, {"topology.kubernetes.io/zone": "rack2"})


def peers_for(cfg: Any, labels: dict[str, str]) -> tuple[Any, ...]:
    """The peers a node with ``labels`` selects."""
    return select_peers(cfg.speaker.peers, cfg.kubernetes, NodeView("n", tuple(sorted(labels.items()))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def hermetic(data: Doc) -> tuple[Doc, int]:
    """The config with the control endpoint on a free port and each peer on a closed loopback port, so a
    test run never touches the network; everything else unchanged."""
    data = copy.deepcopy(data)
    port = free_port()
    data["control"] = {**data.get("control", {}), "port": port}
    for i, peer in enumerate(data["peers"]):
        peer.update(address=f"127.0.0.{11 + i}", port=free_port())
    return data, port


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgpsvc.app.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        print(proc.communicate(timeout=10)[0])


def test_the_configmap_config_runs_answers_the_probes_and_stops_in_time(tmp_path: Path) -> None:
    """``bgpsvc run`` with the DaemonSet's arguments and environment, against the lab API server."""
    data, port = hermetic(config_data())
    cfg_file = tmp_path / CONFIG_KEY
    cfg_file.write_text(yaml.safe_dump(data))
    args = list(container()["args"])
    args[args.index("--config") + 1] = str(cfg_file)
    grace = daemonset()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    with ApiServer() as api:
        api.apply(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "rack1"}},
                "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.31"}]},
            }
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update(
            NODE_NAME="node-1",
            BGP_PASSWORD="",  # the image default: no Secret
            KUBECONFIG=str(api.write_kubeconfig(tmp_path / "kubeconfig")),
        )
        with running(args, env) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: http_status(f"{base}/healthz") == 200, 20, "/healthz")
            wait_for(lambda: http_status(f"{base}/readyz") == 200, 20, "/readyz")
            with urllib.request.urlopen(f"{base}/status", timeout=2) as resp:
                status = json.loads(resp.read())
            assert status["router_id"] == "192.0.2.31"
            assert [p["name"] for p in status["peers"]] == ["rack1-tor-a", "rack1-tor-b"]
            assert status["kubernetes"]["synced"] is True
            with urllib.request.urlopen(f"{base}/metrics", timeout=2) as resp:
                assert b"bgpsvc_" in resp.read()
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=grace) == 0
            assert time.monotonic() - start < grace


# -- the Helm chart ------------------------------------------------------------------------------------------


def normalised(docs: list[Doc]) -> dict[tuple[str, str, str, str], Doc]:
    """Objects by identity; the config inside ConfigMaps compared as data (the plain file has comments)."""
    out = {}
    for original in docs:
        doc = copy.deepcopy(original)
        if doc["kind"] == "ConfigMap":
            doc["data"] = {k: yaml.safe_load(v) if k.endswith(".yaml") else v for k, v in doc["data"].items()}
        meta = doc["metadata"]
        out[(doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])] = doc
    return out


def helm(*args: str) -> str:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=True).stdout


def helm_template(*sets: str, crds: bool = False) -> list[Doc]:
    flags = [a for s in sets for a in ("--set", s)] + (["--include-crds"] if crds else [])
    return load_docs(helm("template", "bgpsvc", str(CHART), "--namespace", NAMESPACE, *flags))


@needs_helm
def test_helm_template_with_default_values_equals_the_plain_manifests() -> None:
    rendered = normalised(helm_template())
    plain = normalised(load_docs((MANIFESTS / "bgpsvc.yaml").read_text()))
    assert sorted(rendered) == sorted(plain)
    for key, doc in plain.items():
        assert rendered[key] == doc, key


@needs_helm
def test_helm_template_with_the_namespace_equals_all_the_manifests() -> None:
    rendered = normalised(helm_template("namespace.create=true", crds=True))
    assert rendered == normalised([d for _, d in manifests()])


@needs_helm
def test_helm_listening_on_179_gets_net_bind_service(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = helm_template("listen.enabled=true")
    ds, cm = find("DaemonSet", docs), find("ConfigMap", docs)
    cfg = parse(yaml.safe_load(cm["data"][CONFIG_KEY]), monkeypatch)
    assert cfg.speaker.listen == (("0.0.0.0", 179),)
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert pod["securityContext"]["runAsUser"] == 0
    assert {"name": "bgp", "containerPort": 179, "hostPort": 179, "protocol": "TCP"} in c["ports"]
    for doc in docs:
        deserialise(doc)


@needs_helm
def test_helm_lint() -> None:
    helm("lint", "--strict", str(CHART))


def test_chart_defaults_match_the_manifests() -> None:
    """Without helm: the values that feed each field agree with the plain manifests."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    cfg = config_data()
    kube = cfg["kubernetes"]
    assert values["localAS"] == cfg["local_as"] and "router_id" not in cfg and not values["routerID"]
    assert values["listen"]["enabled"] is False and cfg["listen"] is False
    assert values["drainTime"] == cfg["drain_time"]
    assert values["shutdownMessage"] == cfg["shutdown_message"]
    assert cfg["graceful_restart"] == {"restart_time": values["gracefulRestart"]["restartTime"]}
    assert values["control"] == cfg["control"]
    assert values["peers"] == cfg["peers"]
    assert values["serviceClusterIPs"] == kube["service_cluster_ips"]
    assert values["serviceExternalIPs"] == kube["service_external_ips"]
    assert values["serviceLoadBalancerIPs"] == kube["service_loadbalancer_ips"]
    assert not values["endpointPolicy"] and "endpoint_policy" not in kube
    assert kube["attributes"] == {cls: {"communities": c} for cls, c in values["communities"].items() if c}
    assert values["extraConfig"] == {}
    ds = daemonset()
    pod = ds["spec"]["template"]["spec"]
    c = container()
    image = values["image"]
    assert c["image"] == f"{image['repository']}:{image['tag'] or chart['appVersion']}"
    assert c["imagePullPolicy"] == image["pullPolicy"]
    assert c["args"] == ["run", "--config", f"/etc/bgpsvc/{CONFIG_KEY}", "--log-format", values["logFormat"]]
    assert c["resources"] == values["resources"]
    assert pod["nodeSelector"] == values["nodeSelector"] and pod["tolerations"] == values["tolerations"]
    assert pod["priorityClassName"] == values["priorityClassName"]
    assert pod["terminationGracePeriodSeconds"] == values["terminationGracePeriodSeconds"]
    assert ds["spec"]["minReadySeconds"] == values["minReadySeconds"]
    assert ds["spec"]["updateStrategy"] == values["updateStrategy"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert {k: v for k, v in c[probe].items() if k != "httpGet"} == values[probe]
    ref = env_var("BGP_PASSWORD")["valueFrom"]["secretKeyRef"]
    password = values["peerPassword"]
    assert ref == {"name": password["secretName"], "key": password["key"], "optional": password["optional"]}
    assert values["metrics"]["service"]["enabled"] is True
    assert values["namespace"]["create"] is False
    role = find("Role", name="bgpsvc-peer-secrets")
    assert values["peerSecrets"] == [r for rule in role["rules"] for r in rule["resourceNames"]]


# -- the Dockerfile ------------------------------------------------------------------------------------------


def dockerfile_all() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def dockerfile_final_stage() -> list[tuple[str, str]]:
    steps = dockerfile_all()
    return steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, rest in dockerfile_final_stage():
        if op == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def dockerfile_user() -> int:
    (user,) = [rest for op, rest in dockerfile_final_stage() if op == "USER"]
    return int(user.split(":")[0])


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dockerfile_runs_as_non_root_on_python_slim() -> None:
    stage = dockerfile_final_stage()
    assert stage[0][1].split()[0] == "python:3.11-slim"
    assert dockerfile_user() == 65532
    assert ("ENTRYPOINT", '["bgpsvc"]') in stage
    cmd = json.loads(next(rest for op, rest in stage if op == "CMD"))
    assert cmd == ["run", "--config", f"/etc/bgpsvc/{CONFIG_KEY}"]
    # No root-only file capabilities: with allowPrivilegeEscalation false they would not apply anyway.
    assert not any("setcap" in rest for _, rest in dockerfile_all())


def test_dockerfile_installs_this_package_without_extras() -> None:
    project = pyproject()["project"]
    steps = dockerfile_all()
    copied = {src for op, rest in steps if op == "COPY" and "--from" not in rest for src in rest.split()[:-1]}
    assert {"pyproject.toml", project["readme"], "bgpsvc"} <= copied
    (install,) = [rest for op, rest in steps if op == "RUN" and "pip install" in rest]
    target = shlex.split(install.split("pip install", 1)[1].split("&&")[0])
    assert [t for t in target if not t.startswith("-")] == ["."]  # the package itself, no [test] extras
    assert project["name"] == "bgpsvc" and "bgpsvc" in project["scripts"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {"!pyproject.toml", f"!{project['readme']}", "!bgpsvc/"} <= set(ignore)


# -- examples ------------------------------------------------------------------------------------------------


def test_node_speaker_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGP_PASSWORD", "")
    cfg = load_config(EXAMPLES / "node-speaker.yaml", env={"NODE_NAME": "node-1", "BGP_PASSWORD": ""})
    assert cfg.kubernetes is not None and cfg.speaker.listen == ()
    assert cfg.speaker.drain_time > 0 and cfg.speaker.graceful_restart.restart_time > 0
    policy = cfg.kubernetes.policy
    assert policy.service_cluster_ips and policy.service_external_ips and policy.service_loadbalancer_ips
    assert set(policy.attributes) == {"cluster-range", "cluster-ip", "external-ip", "loadbalancer-ip"}
    for rack in ("rack1", "rack2"):
        peers = peers_for(cfg, {"topology.kubernetes.io/zone": rack})
        assert [p.name for p in peers] == [f"{rack}-tor-a", f"{rack}-tor-b"]
    assert not peers_for(cfg, {})


def test_anycast_example_loads_its_routes_file() -> None:
    cfg = load_config(EXAMPLES / "anycast-speaker.yaml", env={"BGP_PASSWORD": ""})
    assert cfg.kubernetes is None and cfg.routes_file == EXAMPLES / "anycast-routes.txt"
    routes = load_routes(cfg)
    assert list(routes) == [Prefix.from_network("203.0.113.53/32")]
    assert routes[Prefix.from_network("203.0.113.53/32")].communities == (community("64520:53"),)
    assert ipaddress.ip_address(cfg.control.address).is_loopback


def test_anycast_example_runs_and_advertises_its_route(tmp_path: Path) -> None:
    data, port = hermetic(yaml.safe_load((EXAMPLES / "anycast-speaker.yaml").read_text()))
    data["routes_file"] = str(EXAMPLES / data["routes_file"])
    cfg_file = tmp_path / "anycast.yaml"
    cfg_file.write_text(yaml.safe_dump(data))
    with running(["run", "--config", str(cfg_file)], dict(os.environ)) as proc:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 20, "/readyz")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as resp:
            status = json.loads(resp.read())
        assert status["routes"] == 1 and [p["name"] for p in status["peers"]] == ["router-a", "router-b"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
