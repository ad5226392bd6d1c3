"""The lab API server, driven only through the official ``kubernetes`` client over loopback HTTP.

Each test pins one behaviour of kube-apiserver that the informers depend on (API concepts page:
"Efficient detection of changes", "Watch bookmarks", "Retrieving large results sets in chunks",
"Resource versions"; the cacher for selector transitions and bookmark timing).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from bgpsvc.k8s.listwatch import iter_lines, load_api_client
from bgpsvc.lab import ApiServer
from bgpsvc.lab.apiserver import decode_continue

from .conftest import node, service, wait_until

Event = dict[str, Any]


def raw(call: Callable[..., Any], **kwargs: Any) -> Any:
    """A list/get through the client, parsed from the raw body (what the informer does)."""
    resp = call(_preload_content=False, _request_timeout=(5, 5), **kwargs)
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


def watch_events(
    call: Callable[..., Any], limit: int | None = None, until: str | None = None, **kwargs: Any
) -> list[Event]:
    """Events of one watch request until the server ends it, ``limit`` arrive, or the object named
    ``until`` (a sentinel written last) shows up; the sentinel's event is not returned."""
    kwargs.setdefault("timeout_seconds", 10)
    resp = call(watch=True, _preload_content=False, _request_timeout=(5, 10), **kwargs)
    out: list[Event] = []
    try:
        for line in iter_lines(resp):
            ev = json.loads(line)
            if until is not None and ev["object"]["metadata"].get("name") == until:
                break
            out.append(ev)
            if limit is not None and len(out) >= limit:
                break
    finally:
        resp.close()
        resp.release_conn()
    return out


def summary(events: list[Event]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


@pytest.fixture
def v1(api_client: Any) -> Any:
    return k8s.CoreV1Api(api_client)


@pytest.fixture
def discovery(api_client: Any) -> Any:
    return k8s.DiscoveryV1Api(api_client)


def status_of(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


# -- list ----------------------------------------------------------------------------------------------


def test_list_shape_and_typed_client_round_trip(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("web", labels={"app": "web"}))
    body = raw(v1.list_service_for_all_namespaces)
    assert body["kind"] == "ServiceList" and body["apiVersion"] == "v1"
    assert body["metadata"] == {"resourceVersion": lab.resource_version}
    (item,) = body["items"]
    assert "kind" not in item and "apiVersion" not in item  # typed lists omit TypeMeta on items
    meta = item["metadata"]
    assert meta["resourceVersion"] == lab.resource_version and meta["uid"] and meta["creationTimestamp"]
    # The client's own models deserialize it too.
    typed = v1.list_service_for_all_namespaces()
    assert typed.items[0].metadata.name == "web" and typed.items[0].spec.cluster_ip == "10.96.0.10"
    one = v1.read_namespaced_service("web", "default")
    assert one.kind == "Service" and one.metadata.uid == meta["uid"]


def test_one_global_resource_version_across_kinds(lab: ApiServer, v1: Any, discovery: Any) -> None:
    s = lab.apply(service("a"))
    n = lab.apply(node("n1"))
    e = lab.apply(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "a-1",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "a"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}],
        }
    )
    rvs = [int(o["metadata"]["resourceVersion"]) for o in (s, n, e)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert raw(v1.list_node)["metadata"]["resourceVersion"] == str(rvs[-1])
    slices = raw(discovery.list_endpoint_slice_for_all_namespaces)
    assert slices["kind"] == "EndpointSliceList" and slices["apiVersion"] == "discovery.k8s.io/v1"
    assert slices["items"][0]["addressType"] == "IPv4"
    # An apply that changes nothing is not a write: no new resourceVersion (etcd skips no-op updates).
    before = lab.resource_version
    assert lab.apply(service("a"))["metadata"]["resourceVersion"] == s["metadata"]["resourceVersion"]
    assert lab.resource_version == before


def test_pagination_is_a_consistent_snapshot(lab: ApiServer, v1: Any) -> None:
    for i in range(7):
        lab.apply(service(f"s{i}", ip=f"10.96.0.{i + 1}"))
    first = raw(v1.list_service_for_all_namespaces, limit=3)
    rv = first["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in first["items"]] == ["s0", "s1", "s2"]
    assert first["metadata"]["remainingItemCount"] == 4
    start, token_rv = decode_continue(first["metadata"]["continue"])
    assert (start, token_rv) == ("default/s2\x00", int(rv))
    # Writes between pages are not visible: later pages are served at the first page's version.
    lab.delete("Service", "default", "s4")
    lab.apply(service("s3", ip="10.96.9.9"))
    lab.apply(service("s9"))
    second = raw(v1.list_service_for_all_namespaces, limit=3, _continue=first["metadata"]["continue"])
    third = raw(v1.list_service_for_all_namespaces, limit=3, _continue=second["metadata"]["continue"])
    assert second["metadata"]["resourceVersion"] == third["metadata"]["resourceVersion"] == rv
    assert [i["metadata"]["name"] for i in second["items"]] == ["s3", "s4", "s5"]
    assert second["items"][0]["spec"]["clusterIP"] == "10.96.0.4"
    assert [i["metadata"]["name"] for i in third["items"]] == ["s6"]
    assert "continue" not in third["metadata"]
    assert lab.lists == 3


def test_expired_continue_is_410_with_an_inconsistent_token(lab: ApiServer, v1: Any) -> None:
    for i in range(4):
        lab.apply(service(f"s{i}"))
    first = raw(v1.list_service_for_all_namespaces, limit=2)
    lab.apply(service("s9"))
    lab.compact()
    with pytest.raises(ApiException) as err:
        raw(v1.list_service_for_all_namespaces, limit=2, _continue=first["metadata"]["continue"])
    st = status_of(err.value)
    assert err.value.status == 410
    assert (st["kind"], st["status"], st["reason"], st["code"]) == ("Status", "Failure", "Expired", 410)
    # The token in the Status continues from the next key, at the latest state (may include s9).
    rest = raw(v1.list_service_for_all_namespaces, limit=10, _continue=st["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == ["s2", "s3", "s9"]
    assert rest["metadata"]["resourceVersion"] == lab.resource_version


def test_list_resource_version_semantics(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a", ip="10.96.0.1"))
    old = lab.resource_version
    lab.apply(service("a", ip="10.96.0.2"))
    lab.apply(service("b"))
    exact = raw(v1.list_service_for_all_namespaces, resource_version=old, resource_version_match="Exact")
    assert exact["metadata"]["resourceVersion"] == old
    assert [(i["metadata"]["name"], i["spec"]["clusterIP"]) for i in exact["items"]] == [("a", "10.96.0.1")]
    newer = raw(v1.list_service_for_all_namespaces, resource_version=old)  # NotOlderThan: latest is fine
    assert len(newer["items"]) == 2
    with pytest.raises(ApiException) as err:
        raw(v1.list_service_for_all_namespaces, resource_version_match="Exact")
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        raw(v1.list_service_for_all_namespaces, limit=1, _continue="not-a-token")
    assert err.value.status == 400
    lab.compact()
    with pytest.raises(ApiException) as err:
        raw(v1.list_service_for_all_namespaces, resource_version=old, resource_version_match="Exact")
    assert err.value.status == 410 and status_of(err.value)["reason"] == "Expired"


def test_label_and_field_selectors(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("web", labels={"app": "web", "tier": "front"}))
    lab.apply(service("api", labels={"app": "api", "tier": "back"}))
    lab.apply(service("db", ns="data", labels={"app": "db"}))
    lab.apply(service("bare", ns="data"))

    def names(**kw: Any) -> list[str]:
        return sorted(i["metadata"]["name"] for i in raw(v1.list_service_for_all_namespaces, **kw)["items"])

    assert names(label_selector="app=web") == ["web"]
    assert names(label_selector="app==web") == ["web"]
    assert names(label_selector="app!=web") == ["api", "bare", "db"]  # != also matches "no such label"
    assert names(label_selector="app in (web, db)") == ["db", "web"]
    assert names(label_selector="app notin (web,db)") == ["api", "bare"]
    assert names(label_selector="tier") == ["api", "web"]
    assert names(label_selector="!tier") == ["bare", "db"]
    assert names(label_selector="app,tier=back") == ["api"]
    assert names(field_selector="metadata.name=db") == ["db"]
    assert names(field_selector="metadata.namespace=data") == ["bare", "db"]
    assert names(field_selector="metadata.namespace!=data,metadata.name!=web") == ["api"]
    namespaced = raw(v1.list_namespaced_service, namespace="data", label_selector="app")
    assert [i["metadata"]["name"] for i in namespaced["items"]] == ["db"]
    for bad in ({"field_selector": "spec.type=ClusterIP"}, {"label_selector": "app in ("}):
        with pytest.raises(ApiException) as err:
            raw(v1.list_service_for_all_namespaces, **bad)
        assert err.value.status == 400 and status_of(err.value)["reason"] == "BadRequest"


def test_get_missing_and_writes_refused(lab: ApiServer, v1: Any) -> None:
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_service("nope", "default")
    assert err.value.status == 404 and status_of(err.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_service("default", service("x"))
    assert err.value.status == 405
    assert lab.get("Service", "default", "x") is None


# -- watch ---------------------------------------------------------------------------------------------


def test_watch_from_a_version_gets_exactly_the_later_events(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    lab.apply(service("b"))
    since = lab.resource_version
    lab.apply(service("a", ip="10.96.1.1"))
    lab.apply(node("n1"))  # another kind: not in a Service watch
    lab.delete("Service", "default", "b")
    lab.apply(service("c"))
    lab.apply(service("zz-sentinel"))
    events = watch_events(v1.list_service_for_all_namespaces, resource_version=since, until="zz-sentinel")
    assert summary(events) == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
    assert all(e["object"]["kind"] == "Service" and e["object"]["apiVersion"] == "v1" for e in events)
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(since)
    assert events[1]["object"]["metadata"]["resourceVersion"] == str(int(since) + 3)  # the deletion's RV


def test_watch_without_version_starts_with_synthetic_added_then_live(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    lab.apply(service("b"))
    resp = v1.list_service_for_all_namespaces(
        watch=True, timeout_seconds=5, _preload_content=False, _request_timeout=(5, 10)
    )
    lines = iter_lines(resp)
    assert summary([json.loads(next(lines)) for _ in range(2)]) == [("ADDED", "a"), ("ADDED", "b")]
    lab.apply(service("c"))
    assert summary([json.loads(next(lines))]) == [("ADDED", "c")]
    resp.close()
    resp.release_conn()


def test_watch_from_a_future_version_waits_for_it(lab: ApiServer, v1: Any) -> None:
    base = int(lab.resource_version)
    resp = v1.list_service_for_all_namespaces(
        watch=True,
        resource_version=str(base + 2),
        timeout_seconds=5,
        allow_watch_bookmarks=True,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    lab.send_bookmarks()  # nothing to confirm yet: no bookmark for a version the store has not reached
    for name in ("a", "b", "c"):
        lab.apply(service(name))
    lab.send_bookmarks()
    lines = iter_lines(resp)
    # Only "c" is after the requested version. A bookmark may be sent on either side of it, depending on
    # when the watcher handles the first request; whichever it is, it never names a version below base + 2.
    events = [json.loads(next(lines)) for _ in range(2)]
    assert sorted(summary(events)) == [("ADDED", "c"), ("BOOKMARK", "")]
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= base + 2
    resp.close()
    resp.release_conn()


def test_watch_response_is_chunked_json_and_timeout_ends_it_cleanly(lab: ApiServer, v1: Any) -> None:
    resp = v1.list_service_for_all_namespaces(
        watch=True, resource_version=lab.resource_version, timeout_seconds=1, _preload_content=False
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    t0 = time.monotonic()
    assert list(iter_lines(resp)) == []  # ends without error: a clean terminating chunk
    assert 0.8 < time.monotonic() - t0 < 3
    resp.release_conn()


def test_watch_from_a_compacted_version_is_one_410_error_event(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    old = lab.resource_version
    lab.apply(service("b"))
    lab.compact()
    events = watch_events(v1.list_service_for_all_namespaces, resource_version=old, timeout_seconds=5)
    assert len(events) == 1
    (ev,) = events
    assert ev["type"] == "ERROR"
    assert {k: ev["object"][k] for k in ("kind", "status", "reason", "code")} == {
        "kind": "Status",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
    }
    # The current version is still watchable after compaction.
    now = lab.resource_version
    lab.apply(service("zz-sentinel"))
    assert watch_events(v1.list_service_for_all_namespaces, resource_version=now, until="zz-sentinel") == []


def test_bookmarks_only_when_allowed_and_carry_only_the_version(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    since = lab.resource_version
    resp = v1.list_service_for_all_namespaces(
        watch=True,
        resource_version=since,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    plain = v1.list_service_for_all_namespaces(
        watch=True,
        resource_version=since,
        timeout_seconds=5,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    wait_until(lambda: lab.open_watches == 2, what="both watches open")
    lab.apply(node("n1"))  # moves the global version without a Service event
    lab.send_bookmarks()
    ev = json.loads(next(iter_lines(resp)))
    assert ev == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": lab.resource_version},
        },
    }
    lab.apply(service("zz-sentinel"))
    assert summary([json.loads(next(iter_lines(plain)))]) == [("ADDED", "zz-sentinel")]  # no bookmark
    for r in (resp, plain):
        r.close()
        r.release_conn()


def test_periodic_bookmarks(tmp_path: Path) -> None:
    with ApiServer(bookmark_interval=0.2) as lab:
        client = k8s.CoreV1Api(load_api_client(str(lab.write_kubeconfig(tmp_path / "kc"))))
        events = watch_events(
            client.list_node,
            resource_version=lab.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
        )
        assert len(events) >= 3 and {e["type"] for e in events} == {"BOOKMARK"}
        assert all(e["object"]["kind"] == "Node" for e in events)


def test_watch_selectors_turn_transitions_into_added_and_deleted(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a", labels={"adv": "yes"}))
    since = lab.resource_version
    lab.apply(service("a", labels={"adv": "no"}))  # stops matching
    lab.apply(service("a", labels={"adv": "yes"}, ip="10.96.3.3"))  # matches again
    lab.apply(service("b", labels={"adv": "no"}))  # never matches
    lab.apply(service("zz-sentinel", labels={"adv": "yes"}))
    events = watch_events(
        v1.list_service_for_all_namespaces,
        resource_version=since,
        label_selector="adv=yes",
        until="zz-sentinel",
    )
    assert summary(events) == [("DELETED", "a"), ("ADDED", "a")]
    gone = events[0]["object"]
    # Upstream (cacher convertToWatchEvent): the previous content, at the event's resourceVersion.
    assert gone["metadata"]["labels"] == {"adv": "yes"}
    assert gone["metadata"]["resourceVersion"] == str(int(since) + 1)
    named = watch_events(
        v1.list_namespaced_service,
        namespace="default",
        resource_version=since,
        field_selector="metadata.name=b",
        limit=1,
    )
    assert summary(named) == [("ADDED", "b")]
    lab.apply(service("b", ns="other"))
    lab.apply(service("zz-sentinel", ns="other"))
    other = watch_events(
        v1.list_namespaced_service, namespace="other", resource_version=since, until="zz-sentinel"
    )
    assert summary(other) == [("ADDED", "b")]


def test_send_initial_events_ends_with_annotated_bookmark(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    events = watch_events(
        v1.list_service_for_all_namespaces,
        limit=2,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    )
    assert summary(events) == [("ADDED", "a"), ("BOOKMARK", "")]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_the_clients_own_watch_helper_works(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    w = k8s_watch.Watch()
    seen = []
    for e in w.stream(v1.list_namespaced_service, "default", timeout_seconds=5, _request_timeout=(5, 10)):
        seen.append((e["type"], e["object"].metadata.name))  # the client's typed models
        w.stop()
    assert seen == [("ADDED", "a")]


# -- fault injection -----------------------------------------------------------------------------------


def test_drop_watches_cuts_streams_abruptly(lab: ApiServer, v1: Any) -> None:
    resp = v1.list_service_for_all_namespaces(
        watch=True,
        resource_version=lab.resource_version,
        timeout_seconds=30,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    assert lab.drop_watches() == 1
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(iter_lines(resp))  # no terminating chunk: the client sees a broken stream
    wait_until(lambda: lab.open_watches == 0, what="watch closed")


def test_pause_refuses_connections_and_resume_keeps_port_and_state(lab: ApiServer, v1: Any) -> None:
    lab.apply(service("a"))
    port, rv = lab.port, lab.resource_version
    resp = v1.list_service_for_all_namespaces(
        watch=True, resource_version=rv, timeout_seconds=30, _preload_content=False, _request_timeout=(5, 10)
    )
    wait_until(lambda: lab.open_watches == 1, what="watch open")
    lab.pause()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(iter_lines(resp))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    lab.apply(service("b"))  # the store keeps working while the HTTP side is down
    lab.resume()
    assert lab.port == port
    body = raw(v1.list_service_for_all_namespaces)
    assert [i["metadata"]["name"] for i in body["items"]] == ["a", "b"]
    lab.apply(service("zz-sentinel"))
    assert summary(
        watch_events(v1.list_service_for_all_namespaces, resource_version=rv, until="zz-sentinel")
    ) == [("ADDED", "b")]


def test_load_yaml_multi_document_and_lists(lab: ApiServer, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("""
apiVersion: v1
kind: Namespace
metadata: {name: skipped}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.5}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: n1}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: [{addresses: [10.0.0.7], nodeName: n1}]
""")
    stored = lab.load_yaml(manifest)
    assert [o["kind"] for o in stored] == ["Service", "Node", "EndpointSlice"]
    assert lab.get("EndpointSlice", "shop", "web-1") is not None
    assert lab.load_yaml("{apiVersion: v1, kind: Node, metadata: {name: n2}}")[0]["metadata"]["name"] == "n2"
    with pytest.raises(KeyError):
        lab.load_yaml(manifest, strict=True)
