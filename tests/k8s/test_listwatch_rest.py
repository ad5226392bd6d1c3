"""``ClientListerWatcher`` on the client's ``ApiClient`` and the kinds' REST paths, against the lab server.

The lister-watcher no longer goes through the generated ``CoreV1Api``/``DiscoveryV1Api`` (their import
builds some 250 pydantic models, ~20 MB): these tests pin down that every query parameter still reaches
the server as the generated functions sent it (selectors, limit/continue, watch + bookmarks + timeout,
resourceVersion), that error statuses still map to ``Expired``/``ApiError``, and that a node speaker's
kinds are listed without importing those modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.k8s.listwatch import ApiError, ClientListerWatcher, Expired
from bgpsvc.lab import ApiServer

from .conftest import node, service


def test_selectors_and_pagination_reach_the_server(lab: ApiServer, api_client: Any) -> None:
    for i in range(5):
        lab.apply(service(f"s{i}", ip=f"10.96.0.{i + 1}", labels={"tier": "a" if i % 2 else "b"}))
    lw = ClientListerWatcher(api_client, "services", label_selector="tier=a")
    first = lw.list(1, None)
    assert [o["metadata"]["name"] for o in first.items] == ["s1"]
    assert first.continue_token
    rest = lw.list(0, first.continue_token)
    assert [o["metadata"]["name"] for o in rest.items] == ["s3"]
    assert rest.continue_token is None
    by_field = ClientListerWatcher(api_client, "services", field_selector="metadata.name=s4").list(0, None)
    assert [o["metadata"]["name"] for o in by_field.items] == ["s4"]


def test_watch_from_a_version_with_bookmarks(lab: ApiServer, api_client: Any) -> None:
    lab.apply(node("n1"))
    lw = ClientListerWatcher(api_client, "nodes", field_selector="metadata.name=n2")
    rv = lw.list(0, None).resource_version
    lab.apply(node("n1", labels={"x": "1"}))  # filtered out by the selector
    lab.apply(node("n2"))
    stream = lw.watch(rv, 5)
    try:
        ev = next(stream)
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "n2")
        lab.send_bookmarks()
        assert next(stream)["type"] == "BOOKMARK"  # allowWatchBookmarks=true was sent
    finally:
        stream.close()


def test_gone_and_error_statuses(lab: ApiServer, api_client: Any) -> None:
    lab.apply(service("s"))
    lab.apply(service("t"))
    lw = ClientListerWatcher(api_client, "services")
    page = lw.list(1, None)
    rv = page.resource_version
    lab.apply(service("s", ip="10.96.0.11"))
    lab.compact()
    with pytest.raises(Expired):
        lw.list(1, page.continue_token)  # HTTP 410 for a continue token whose version is gone
    stream = lw.watch(rv, 5)
    try:  # a watch from a compacted version: 200, then an ERROR event carrying the 410 (as upstream)
        ev = next(stream)
        assert (ev["type"], ev["object"]["code"]) == ("ERROR", 410)
    finally:
        stream.close()
    with pytest.raises(ApiError) as err:
        lw.list(0, "not-a-continue-token")
    assert err.value.status == 400


def test_secrets_are_listed_in_one_namespace(lab: ApiServer, api_client: Any) -> None:
    for ns, name in (("bgpsvc-system", "md5"), ("bgpsvc-system", "other"), ("default", "md5")):
        lab.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name}})
    lw = ClientListerWatcher(
        api_client, "secrets", namespace="bgpsvc-system", field_selector="metadata.name=md5"
    )
    page = lw.list(0, None)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items] == [
        ("bgpsvc-system", "md5")
    ]


_CHILD = """
import json, sys
from bgpsvc.k8s.informer import load_api_client
from bgpsvc.k8s.listwatch import ClientListerWatcher
api = load_api_client(sys.argv[1])
n = {r: len(ClientListerWatcher(api, r).list(0, None).items) for r in ("services", "endpointslices", "nodes")}
n["secrets"] = len(ClientListerWatcher(api, "secrets", namespace="default").list(0, None).items)
apis = sorted(m for m in sys.modules if m.startswith("kubernetes.client.api."))
print(json.dumps({"items": n, "modules": apis}))
"""


def test_listing_the_node_speaker_kinds_imports_no_generated_api(lab: ApiServer, kubeconfig: Path) -> None:
    lab.apply(service("s"))
    lab.apply(node("n1"))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    got = json.loads(out.stdout)
    assert got["items"] == {"services": 1, "endpointslices": 0, "nodes": 1, "secrets": 0}
    assert got["modules"] == []
