"""Leases (``coordination.k8s.io/v1``) in the lab API server, driven only through the official
``kubernetes`` client (``CoordinationV1Api``) over loopback HTTP, as leader election uses them.

Each test pins one behaviour of kube-apiserver's generic registry store for a built-in kind: create and
409 AlreadyExists, optimistic concurrency on update (409 Conflict), patch, list/watch from a
resourceVersion with a field selector, delete, discovery, and that no CRD stands behind it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bgpsvc.k8s.listwatch import iter_lines
from bgpsvc.lab import ApiServer
from bgpsvc.lab.fielderrors import Invalid

from .conftest import service

NS, NAME = "bgpsvc-system", "bgpsvc-leader"
#: Always six fractional digits: the client turns the string into a datetime and back with
#: ``isoformat()``, which drops a zero fraction, and MicroTime then refuses it (as upstream does).
T0, T1 = "2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:15.654321Z"
Event = dict[str, Any]


def lease(name: str = NAME, holder: str = "node-a", renew: str = T0, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": NS, **meta},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": T0,
            "renewTime": renew,
            "leaseTransitions": 0,
        },
    }


def raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A call through the client, parsed from the raw body (no datetime model conversion)."""
    resp = call(*args, _preload_content=False, _request_timeout=(5, 5), **kwargs)
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


def rejected(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as err:
        call(*args, _request_timeout=(5, 5), **kwargs)
    return err.value


def status_of(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


@pytest.fixture
def coord(api_client: Any) -> Any:
    return k8s.CoordinationV1Api(api_client)


def test_create_read_and_optimistic_concurrency(lab: ApiServer, coord: Any) -> None:
    made = raw(coord.create_namespaced_lease, NS, lease())
    assert made["kind"] == "Lease" and made["apiVersion"] == "coordination.k8s.io/v1"
    meta = made["metadata"]
    assert meta["namespace"] == NS and meta["uid"] and meta["resourceVersion"] == lab.resource_version
    assert made["spec"]["holderIdentity"] == "node-a" and made["spec"]["leaseDurationSeconds"] == 15
    assert made["spec"]["renewTime"] == T0  # the client sent +00:00; upstream stores MicroTime in UTC, Z
    assert raw(coord.read_namespaced_lease, NAME, NS) == made
    typed = coord.read_namespaced_lease(NAME, NS)  # the client's own model reads it too
    assert typed.spec.holder_identity == "node-a" and typed.spec.renew_time.microsecond == 123456

    err = rejected(coord.create_namespaced_lease, NS, lease(holder="node-b"))
    assert err.status == 409 and status_of(err)["reason"] == "AlreadyExists"

    stale = lease(holder="node-b", renew=T1, resourceVersion=str(int(meta["resourceVersion"]) - 1))
    err = rejected(coord.replace_namespaced_lease, NAME, NS, stale)
    assert err.status == 409 and status_of(err)["reason"] == "Conflict"
    assert raw(coord.read_namespaced_lease, NAME, NS) == made  # unchanged

    current = lease(holder="node-b", renew=T1, resourceVersion=meta["resourceVersion"])
    replaced = raw(coord.replace_namespaced_lease, NAME, NS, current)
    assert int(replaced["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert replaced["metadata"]["uid"] == meta["uid"]
    assert replaced["spec"]["holderIdentity"] == "node-b"
    assert replaced["spec"]["renewTime"] == T1
    assert raw(coord.read_namespaced_lease, NAME, NS) == replaced
    # The writer that read the first version loses, as a second candidate does in leader election.
    err = rejected(coord.replace_namespaced_lease, NAME, NS, {**current, "spec": lease()["spec"]})
    assert err.status == 409 and status_of(err)["reason"] == "Conflict"


def test_patch_and_validation(lab: ApiServer, coord: Any) -> None:
    raw(coord.create_namespaced_lease, NS, lease())
    # The client's default content type for a dict patch is a strategic merge patch, which upstream
    # accepts for built-in kinds.
    out = raw(coord.patch_namespaced_lease, NAME, NS, {"spec": {"holderIdentity": "node-b"}})
    assert out["spec"]["holderIdentity"] == "node-b" and out["spec"]["leaseDurationSeconds"] == 15
    merge = {"spec": {"holderIdentity": None}}
    out = raw(coord.patch_namespaced_lease, NAME, NS, merge, _content_type="application/merge-patch+json")
    assert "holderIdentity" not in out["spec"]
    # The same instant at another offset is the same MicroTime: stored in UTC, nothing changes.
    same = raw(
        coord.patch_namespaced_lease, NAME, NS, {"spec": {"renewTime": "2026-01-02T05:04:05.123456+02:00"}}
    )
    assert same["spec"]["renewTime"] == T0
    assert same["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    err = rejected(coord.patch_namespaced_lease, NAME, NS, {"metadata": {"resourceVersion": "1"}})
    assert err.status == 409 and status_of(err)["reason"] == "Conflict"

    bad = lease("bad")
    bad["spec"]["leaseDurationSeconds"] = 0
    err = rejected(coord.create_namespaced_lease, NS, bad)
    assert (
        err.status == 422 and status_of(err)["details"]["causes"][0]["field"] == "spec.leaseDurationSeconds"
    )
    # A whole-second MicroTime is refused, as upstream's RFC3339Micro decoding does.
    err = rejected(coord.create_namespaced_lease, NS, lease("bad", renew="2026-01-02T03:04:05Z"))
    assert err.status == 422 and status_of(err)["details"]["causes"][0]["field"] == "spec.renewTime"


def test_watch_from_list_version_sees_modified(lab: ApiServer, coord: Any) -> None:
    raw(coord.create_namespaced_lease, NS, lease())
    raw(coord.create_namespaced_lease, NS, lease("other"))
    listed = raw(coord.list_namespaced_lease, NS)
    assert listed["kind"] == "LeaseList" and listed["apiVersion"] == "coordination.k8s.io/v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == [NAME, "other"]
    assert "kind" not in listed["items"][0]  # a typed list, as upstream serves built-in kinds
    rv = listed["metadata"]["resourceVersion"]
    cur = listed["items"][0]["metadata"]["resourceVersion"]
    raw(coord.patch_namespaced_lease, "other", NS, {"spec": {"holderIdentity": "node-c"}})
    raw(coord.replace_namespaced_lease, NAME, NS, lease(holder="node-b", renew=T1, resourceVersion=cur))

    resp = coord.list_namespaced_lease(
        NS,
        watch=True,
        resource_version=rv,
        field_selector=f"metadata.name={NAME}",
        timeout_seconds=10,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    try:
        event: Event = json.loads(next(iter_lines(resp)))
    finally:
        resp.close()
        resp.release_conn()
    assert event["type"] == "MODIFIED"
    obj = event["object"]
    assert obj["kind"] == "Lease" and obj["metadata"]["name"] == NAME
    assert obj["spec"]["holderIdentity"] == "node-b" and int(obj["metadata"]["resourceVersion"]) > int(rv)


def test_delete(lab: ApiServer, coord: Any) -> None:
    made = raw(coord.create_namespaced_lease, NS, lease())
    gone = raw(coord.delete_namespaced_lease, NAME, NS)
    assert gone["status"] == "Success" and gone["details"]["uid"] == made["metadata"]["uid"]
    assert rejected(coord.read_namespaced_lease, NAME, NS).status == 404
    assert rejected(coord.delete_namespaced_lease, NAME, NS).status == 404
    assert raw(coord.list_namespaced_lease, NS)["items"] == []


def test_discovery_lists_the_group(lab: ApiServer, coord: Any, api_client: Any) -> None:
    groups = {g.name: g for g in k8s.ApisApi(api_client).get_api_versions().groups}
    assert groups["coordination.k8s.io"].preferred_version.group_version == "coordination.k8s.io/v1"
    group = k8s.CoordinationApi(api_client).get_api_group()
    assert [v.version for v in group.versions] == ["v1"]
    (res,) = coord.get_api_resources().resources
    assert (res.name, res.singular_name, res.kind, res.namespaced) == ("leases", "lease", "Lease", True)
    assert {"create", "get", "list", "watch", "update", "patch", "delete"} <= set(res.verbs)


def test_no_crd_stands_behind_leases(lab: ApiServer, coord: Any, api_client: Any) -> None:
    ext = k8s.ApiextensionsV1Api(api_client)
    assert ext.list_custom_resource_definition().items == []
    assert rejected(ext.delete_custom_resource_definition, "leases.coordination.k8s.io").status == 404
    assert lab.delete("customresourcedefinitions", None, "leases.coordination.k8s.io") is None
    takeover = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "leases.coordination.k8s.io"},
        "spec": {
            "group": "coordination.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "leases", "kind": "Lease"},
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    err = rejected(ext.create_custom_resource_definition, takeover)
    assert err.status == 422 and status_of(err)["details"]["causes"][0]["field"] == "spec.group"
    assert ext.list_custom_resource_definition().items == []
    assert raw(coord.create_namespaced_lease, NS, lease())["metadata"]["name"] == NAME


def test_python_side_apply(lab: ApiServer, coord: Any) -> None:
    stored = lab.apply(lease())  # validated like an HTTP write
    assert stored["metadata"]["resourceVersion"] == lab.resource_version
    again = lab.apply(lease(holder="node-b"))  # an update of the existing one
    assert again["metadata"]["uid"] == stored["metadata"]["uid"]
    assert raw(coord.read_namespaced_lease, NAME, NS)["spec"]["holderIdentity"] == "node-b"
    bad = lease()
    bad["spec"]["leaseTransitions"] = -1
    with pytest.raises(Invalid):
        lab.apply(bad)
    assert lab.apply(service("web"))["spec"]["clusterIP"] == "10.96.0.10"  # other kinds: stored as given
    assert lab.delete("Lease", NS, NAME) is not None and lab.get("Lease", NS, NAME) is None
