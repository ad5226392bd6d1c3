"""Fixtures for the Kubernetes I/O tests: a lab API server on loopback and an official-client ApiClient."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.k8s.informer import load_api_client
from bgpsvc.lab import ApiServer


def wait_until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``pred`` until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def service(
    name: str, ns: str = "default", ip: str = "10.96.0.10", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"clusterIP": ip, "clusterIPs": [ip], **spec},
    }


def node(
    name: str, ip: str = "192.0.2.1", labels: dict[str, str] | None = None, ready: str = "True"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}],
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


@pytest.fixture
def lab() -> Iterator[ApiServer]:
    api = ApiServer(bookmark_interval=60.0).start()  # bookmarks only on demand unless a test says so
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def kubeconfig(lab: ApiServer, tmp_path: Path) -> Path:
    return lab.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[Any]:
    client = load_api_client(str(kubeconfig))
    try:
        yield client
    finally:
        client.close()
