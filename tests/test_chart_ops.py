"""The Helm chart as an operator meets it: wrong values fail at install time, config changes reach the
pods without a manual restart, the metrics can be scraped by the Prometheus Operator, and the image
placeholder says that it is one.

``values.schema.json`` is checked with the ``jsonschema`` package (Helm applies the same draft-07 schema
on install, upgrade, template and lint): the default values pass, each bad value fails naming its path.
Rendering needs ``helm`` (``HELM`` or on PATH) and is skipped without it; the checks on the template text
run either way.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "bgpsvc"
MANIFEST = ROOT / "deploy" / "manifests" / "bgpsvc.yaml"
HELM = os.environ.get("HELM") or shutil.which("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm is not installed (HELM=/path/to/helm or on PATH)")


def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return data


def errors(vals: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    return ["/".join(map(str, e.absolute_path)) or "(top)" for e in validator.iter_errors(vals)]


def test_the_schema_is_valid_and_the_defaults_pass() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    assert errors(values()) == []


BAD: list[tuple[str, Any, str]] = [
    ("localAS", "sixty-four", "localAS"),
    ("localAS", 0, "localAS"),
    ("localAs", 64512, "(top)"),  # a misspelt key
    ("routerID", "node-1", "routerID"),
    ("control.port", 70000, "control/port"),
    ("listen.enabled", "yes", "listen/enabled"),
    ("drainTime", -1, "drainTime"),
    ("shutdownMessage", "x" * 256, "shutdownMessage"),
    ("gracefulRestart.restartTime", 5000, "gracefulRestart/restartTime"),
    ("peers", [{"peer_as": 64500}], "peers/0"),
    ("peers", [{"address": "rack1-tor", "peer_as": 64500}], "peers/0/address"),
    ("peers", [{"address": "10.0.1.1", "peer_as": 64500, "hold_time": 2}], "peers/0/hold_time"),
    ("serviceClusterIPs", ["10.96.0.0"], "serviceClusterIPs/0"),
    ("endpointPolicy", "all", "endpointPolicy"),
    ("communities", {"cluster-ip": "64512:1"}, "communities/cluster-ip"),
    ("communities", {"pod-ip": ["64512:1"]}, "communities"),
    ("image.pullPolicy", "Sometimes", "image/pullPolicy"),
    ("logFormat", "xml", "logFormat"),
    ("metrics.serviceMonitor.enabled", "true", "metrics/serviceMonitor/enabled"),
    ("metrics.serviceMonitor.interval", "30", "metrics/serviceMonitor/interval"),
]


@pytest.mark.parametrize(("key", "bad", "path"), BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD])
def test_a_wrong_value_fails_naming_its_path(key: str, bad: Any, path: str) -> None:
    vals = copy.deepcopy(values())
    *parents, last = key.split(".")
    node = vals
    for p in parents:
        node = node[p]
    node[last] = bad
    assert path in errors(vals)


def test_the_checksum_covers_exactly_the_rendered_config() -> None:
    """The pods' checksum annotation hashes the same template the ConfigMap renders, so any value that
    changes the config changes the checksum (helm upgrade then rolls the pods when asked to)."""
    ds = (CHART / "templates" / "daemonset.yaml").read_text()
    cm = (CHART / "templates" / "configmap.yaml").read_text()
    assert 'checksum/config: {{ include "bgpsvc.config" . | sha256sum }}' in ds
    data = cm.split("\ndata:", 1)[1]
    assert re.findall(r"include \"([\w.]+)\"", data) == ["bgpsvc.config"]
    # Nothing else in the ConfigMap's data comes from values: the config is all of it.
    assert ".Values" not in data


def test_the_config_volume_is_updated_in_place() -> None:
    """kubelet updates a ConfigMap volume in place, but never a subPath mount: the live reload needs the
    directory mount (tests/aio/test_reload_configmap.py covers the reload itself)."""
    ds = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "DaemonSet")
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert "subPath" not in mount and mount["mountPath"] == "/etc/bgpsvc"
    assert "subPath" not in (CHART / "templates" / "daemonset.yaml").read_text()


def test_the_placeholder_image_says_so() -> None:
    (line,) = [ln for ln in MANIFEST.read_text().splitlines() if re.match(r"\s+image:", ln)]
    assert "ghcr.io/example/" in line and "PLACEHOLDER" in line and "deploy/README.md" in line
    assert "PLACEHOLDER" in (CHART / "values.yaml").read_text().split("repository:")[0]
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert 'eq .Values.image.repository "ghcr.io/example/bgpsvc"' in notes and "WARNING" in notes
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert "docker build -f deploy/Dockerfile" in readme and "docker push" in readme


def test_the_service_monitor_is_off_by_default_and_selects_the_metrics_service() -> None:
    sm = values()["metrics"]["serviceMonitor"]
    assert sm["enabled"] is False
    text = (CHART / "templates" / "servicemonitor.yaml").read_text()
    assert text.startswith(
        "{{- if and .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled }}"
    )
    assert "kind: ServiceMonitor" in text and "port: metrics" in text


def helm(*args: str) -> str:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=True).stdout


def render(*sets: str) -> list[dict[str, Any]]:
    flags = [x for s in sets for x in ("--set", s)]
    out = helm("template", "bgpsvc", str(CHART), "--namespace", "bgpsvc-system", *flags)
    return [d for d in yaml.safe_load_all(out) if d]


@needs_helm
def test_helm_rejects_a_wrong_value() -> None:
    assert HELM is not None
    bad = subprocess.run(
        [HELM, "template", "bgpsvc", str(CHART), "--set", "control.port=70000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0 and "control" in bad.stderr


@needs_helm
def test_helm_checksum_changes_with_the_config() -> None:
    def checksum(*sets: str) -> str:
        ds = next(d for d in render("rollOnConfigChange=true", *sets) if d["kind"] == "DaemonSet")
        return str(ds["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    base = checksum()
    assert checksum("drainTime=20") != base
    assert checksum("peers[0].hold_time=60") != base
    assert checksum("resources.limits.cpu=2") == base  # not part of the config


@needs_helm
def test_helm_renders_the_service_monitor_when_enabled() -> None:
    docs = render("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom")
    (sm,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (svc,) = [d for d in docs if d["kind"] == "Service"]
    assert sm["metadata"]["labels"]["release"] == "prom"
    labels = svc["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
