"""Custom resources in the lab API server, driven only through the official ``kubernetes`` client
(``ApiextensionsV1Api``, ``CustomObjectsApi``, the dynamic client) over loopback HTTP.

Each test pins one behaviour of kube-apiserver's apiextensions server: CRD registration and discovery,
create/get/list/watch/update/patch/delete, optimistic concurrency, the status subresource and
``metadata.generation``, structural-schema pruning/defaults/validation and CEL rules.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from bgpsvc.k8s.listwatch import iter_lines
from bgpsvc.lab import ApiServer
from bgpsvc.lab.fielderrors import Invalid

from .conftest import wait_until

GROUP, VERSION, PLURAL = "bgpsvc.io", "v1alpha1", "bgppeers"
API_VERSION = f"{GROUP}/{VERSION}"

BGPPEER_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bgppeers.bgpsvc.io}
spec:
  group: bgpsvc.io
  scope: Namespaced
  names: {plural: bgppeers, singular: bgppeer, kind: BgpPeer, shortNames: [bp]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [peerASN, address]
            x-kubernetes-validations:
            - rule: "!has(self.localASN) || self.localASN != self.peerASN"
              message: peerASN must differ from localASN
            - rule: "self.address == oldSelf.address"
              message: address is immutable
              fieldPath: .address
            properties:
              peerASN: {type: integer, minimum: 1, maximum: 4294967295}
              localASN: {type: integer, minimum: 1, maximum: 4294967295}
              address:
                type: string
                x-kubernetes-validations:
                - {rule: "isIP(self)", message: must be an IP address}
              holdTime: {type: integer, minimum: 3, maximum: 65535, default: 90}
              mode: {type: string, enum: [active, passive], default: active}
              description: {type: string, maxLength: 16}
              families:
                type: array
                maxItems: 2
                x-kubernetes-list-type: set
                default: [ipv4-unicast]
                items: {type: string, enum: [ipv4-unicast, ipv6-unicast]}
          status:
            type: object
            properties:
              state: {type: string, enum: [Idle, Connect, Active, OpenSent, OpenConfirm, Established]}
              observedGeneration: {type: integer}
"""

CLUSTER_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bgppolicies.bgpsvc.io}
spec:
  group: bgpsvc.io
  scope: Cluster
  names: {plural: bgppolicies, singular: bgppolicy, kind: BgpPolicy}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              communities: {type: array, items: {type: string, pattern: '^\\d+:\\d+$'}}
"""

Event = dict[str, Any]


def crd_dict(text: str = BGPPEER_CRD) -> dict[str, Any]:
    return dict(yaml.safe_load(text))


def peer(name: str, asn: int = 65001, address: str = "192.0.2.1", **spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", None)
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": API_VERSION,
        "kind": "BgpPeer",
        "metadata": meta,
        "spec": {"peerASN": asn, "address": address, **spec},
    }


def status_of(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


def causes(exc: ApiException) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in status_of(exc)["details"]["causes"]]


@pytest.fixture
def ext(api_client: Any) -> Any:
    return k8s.ApiextensionsV1Api(api_client)


@pytest.fixture
def co(api_client: Any) -> Any:
    return k8s.CustomObjectsApi(api_client)


@pytest.fixture
def peers(lab: ApiServer, ext: Any) -> ApiServer:
    ext.create_custom_resource_definition(crd_dict())
    return lab


def create(co: Any, body: dict[str, Any], ns: str = "default") -> dict[str, Any]:
    return dict(co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body))


def read(co: Any, name: str, ns: str = "default") -> dict[str, Any]:
    return dict(co.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))


def rejected(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as err:
        call(*args, **kwargs)
    return err.value


def watch_events(co: Any, limit: int, **kwargs: Any) -> list[Event]:
    kwargs.setdefault("timeout_seconds", 10)
    resp = co.list_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        watch=True,
        _preload_content=False,
        _request_timeout=(5, 10),
        **kwargs,
    )
    out: list[Event] = []
    try:
        for line in iter_lines(resp):
            out.append(json.loads(line))
            if len(out) >= limit:
                break
    finally:
        resp.close()
        resp.release_conn()
    return out


def summary(events: list[Event]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


# -- registration and discovery ------------------------------------------------------------------------


def test_crd_registration_is_served_and_discoverable(
    lab: ApiServer, ext: Any, api_client: Any, tmp_path: Path
) -> None:
    created = ext.create_custom_resource_definition(crd_dict())  # the client's typed model parses it
    assert created.metadata.name == "bgppeers.bgpsvc.io" and created.metadata.uid
    assert {c.type: c.status for c in created.status.conditions} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    assert created.status.accepted_names.list_kind == "BgpPeerList"
    assert [c.metadata.name for c in ext.list_custom_resource_definition().items] == ["bgppeers.bgpsvc.io"]
    err = rejected(ext.create_custom_resource_definition, crd_dict())
    assert err.status == 409 and status_of(err)["reason"] == "AlreadyExists"

    dyn = DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    discovered = dyn.request("GET", f"/apis/{API_VERSION}").to_dict()
    entries = {r["name"]: r for r in discovered["resources"]}
    assert entries["bgppeers"]["kind"] == "BgpPeer" and entries["bgppeers"]["namespaced"] is True
    assert entries["bgppeers"]["shortNames"] == ["bp"] and "patch" in entries["bgppeers"]["verbs"]
    assert entries["bgppeers/status"]["verbs"] == ["get", "patch", "update"]

    res = dyn.resources.get(api_version=API_VERSION, kind="BgpPeer")
    made = res.create(body=peer("tor-a"), namespace="default")
    assert made.spec.holdTime == 90  # defaulted
    assert [i.metadata.name for i in res.get(namespace="default").items] == ["tor-a"]
    res.status.patch(
        body={"status": {"state": "Established"}},
        name="tor-a",
        namespace="default",
        content_type="application/merge-patch+json",
    )
    assert res.get(name="tor-a", namespace="default").status.state == "Established"


def test_bad_crds_fail_registration_naming_the_field(lab: ApiServer, ext: Any) -> None:
    def bad(edit: Callable[[dict[str, Any]], None]) -> list[str]:
        body = crd_dict()
        edit(body)
        err = rejected(ext.create_custom_resource_definition, body)
        assert err.status == 422 and status_of(err)["details"]["kind"] == "CustomResourceDefinition"
        return causes(err)

    root = "spec.versions[0].schema.openAPIV3Schema"
    spec = "properties[spec]"

    def schema(body: dict[str, Any]) -> dict[str, Any]:
        return dict(body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])

    def set_rule(rule: str) -> Callable[[dict[str, Any]], None]:
        return lambda b: schema(b)["x-kubernetes-validations"].__setitem__(0, {"rule": rule})

    (c,) = bad(set_rule("self.peerASN >"))  # syntax
    assert c.startswith(f"{root}.{spec}.x-kubernetes-validations[0].rule: Invalid value: ")
    (c,) = bad(set_rule("self.peerASN.frobnicate()"))  # unknown function
    assert "undeclared reference to 'frobnicate'" in c
    (c,) = bad(set_rule("self.peerAS > 1"))  # a typo: no such field in the schema
    assert "undefined field 'peerAS'" in c
    # A typo in a keyword (the typed client refuses to send it: the server's Python API sees it).
    typo = crd_dict()
    schema(typo)["properties"]["peerASN"]["minimun"] = 1
    with pytest.raises(Invalid) as invalid:
        lab.register_crd(typo)
    assert [str(e) for e in invalid.value.errors] == [
        f'{root}.{spec}.properties[peerASN].minimun: Invalid value: "minimun": unknown schema keyword '
        "(not supported by the lab apiserver)"
    ]
    (c,) = bad(lambda b: schema(b)["properties"]["holdTime"].update(default=1))  # default below minimum
    assert c.startswith(f"{root}.{spec}.properties[holdTime].default: Invalid value: 1:")
    (c,) = bad(lambda b: schema(b)["properties"]["mode"].pop("type"))
    assert (
        c == f"{root}.{spec}.properties[mode].type: Required value: must not be empty for specified object "
        "fields"
    )
    (c,) = bad(lambda b: b["metadata"].update(name="peers.bgpsvc.io"))
    assert c.startswith("metadata.name: Invalid value")
    assert ext.list_custom_resource_definition().items == []


def test_load_manifests_preloads_crds_and_objects(tmp_path: Path) -> None:
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "bgppeer.yaml").write_text(BGPPEER_CRD)
    (tmp_path / "crds" / "policy.yaml").write_text(CLUSTER_CRD)
    objs = tmp_path / "objs.yaml"
    objs.write_text(yaml.safe_dump_all([peer("tor-a") | {"status": {"state": "Idle"}}]))
    with ApiServer(manifests=[tmp_path / "crds", objs]) as lab:
        stored = lab.get("BgpPeer", "default", "tor-a")
        assert (
            stored is not None
            and stored["spec"]["mode"] == "active"
            and stored["status"] == {"state": "Idle"}
        )
        assert lab.get("CustomResourceDefinition", None, "bgppolicies.bgpsvc.io") is not None
        with pytest.raises(ValueError, match=r"peerASN"):
            lab.apply(peer("bad", asn=0))


# -- create / get / list -------------------------------------------------------------------------------


def test_create_applies_defaults_prunes_unknown_fields_and_drops_status(peers: ApiServer, co: Any) -> None:
    body = peer("tor-a", description="x") | {"status": {"state": "Established"}}
    body["spec"]["bogus"] = 1
    body["metadata"]["annotations"] = {"a": "b"}
    made = create(co, body)
    assert made["kind"] == "BgpPeer" and made["apiVersion"] == API_VERSION
    assert made["spec"] == {
        "peerASN": 65001,
        "address": "192.0.2.1",
        "description": "x",
        "holdTime": 90,
        "mode": "active",
        "families": ["ipv4-unicast"],
    }
    assert "status" not in made  # create cannot set status when the status subresource is on
    assert made["metadata"]["generation"] == 1 and made["metadata"]["uid"]
    assert read(co, "tor-a") == made
    err = rejected(create, co, peer("tor-a"))
    assert err.status == 409 and status_of(err)["reason"] == "AlreadyExists"
    err = rejected(co.get_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "nope")
    assert err.status == 404 and status_of(err)["message"] == 'bgppeers.bgpsvc.io "nope" not found'
    strict = rejected(
        co.create_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, body, field_validation="Strict"
    )
    assert strict.status == 400 and 'unknown field "spec.bogus"' in status_of(strict)["message"]


def test_invalid_objects_are_422_naming_each_field(peers: ApiServer, co: Any) -> None:
    err = rejected(create, co, peer("x", asn=0, mode="chatty", description="much too long a text"))
    st = status_of(err)
    assert err.status == 422 and st["reason"] == "Invalid" and st["details"]["kind"] == "BgpPeer"
    assert st["message"].startswith('BgpPeer.bgpsvc.io "x" is invalid: [')
    assert sorted(causes(err)) == [
        '<nil>: Invalid value: "null": some validation rules were not checked because the object was '
        "invalid; "
        "correct the existing errors to complete validation",
        "spec.description: Too long: may not be longer than 16",
        'spec.mode: Unsupported value: "chatty": supported values: "active", "passive"',
        "spec.peerASN: Invalid value: 0: spec.peerASN in body should be greater than or equal to 1",
    ]
    err = rejected(
        create,
        co,
        {"apiVersion": API_VERSION, "kind": "BgpPeer", "metadata": {"name": "y"}, "spec": {"peerASN": "x"}},
    )
    assert sorted(causes(err))[1:] == [
        "spec.address: Required value",
        'spec.peerASN: Invalid value: "string": spec.peerASN in body must be of type integer: "string"',
    ]
    # CEL rules: on the object, and on a field.
    err = rejected(create, co, peer("z", asn=65001, localASN=65001))
    assert causes(err) == ['spec: Invalid value: "object": peerASN must differ from localASN']
    err = rejected(create, co, peer("z", address="192.0.2"))
    assert causes(err) == ['spec.address: Invalid value: "string": must be an IP address']
    err = rejected(create, co, peer("Bad_Name"))
    assert causes(err)[0].startswith(
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    assert co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"] == []


def test_list_pagination_and_label_selector(peers: ApiServer, co: Any) -> None:
    for i in range(5):
        create(co, peer(f"p{i}", labels={"rack": "a" if i % 2 else "b"}))
    create(co, peer("other-ns"), ns="kube-system")
    first = co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, limit=2)
    assert first["kind"] == "BgpPeerList" and first["apiVersion"] == API_VERSION
    assert [i["metadata"]["name"] for i in first["items"]] == ["p0", "p1"]
    assert first["items"][0]["kind"] == "BgpPeer"  # unstructured lists keep TypeMeta on items
    assert first["metadata"]["remainingItemCount"] == 3
    peers.apply(
        peer("p1", asn=65009, labels={"rack": "a"})
    )  # not visible on later pages: they are served at the first's version
    token, seen = first["metadata"]["continue"], []
    while token:
        page = co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, limit=2, _continue=token)
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert seen == ["p2", "p3", "p4"]
    rack_a = co.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="rack=a")
    assert [i["metadata"]["name"] for i in rack_a["items"]] == ["p1", "p3"]
    everywhere = co.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["default"] * 5 + ["kube-system"]


# -- update / patch / status ---------------------------------------------------------------------------


def test_update_needs_the_current_resource_version(peers: ApiServer, co: Any) -> None:
    made = create(co, peer("tor-a"))
    made["spec"]["holdTime"] = 30
    updated = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-a", made)
    assert updated["spec"]["holdTime"] == 30 and updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    made["spec"]["holdTime"] = 60  # still carries the old resourceVersion
    err = rejected(co.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "tor-a", made)
    st = status_of(err)
    assert err.status == 409 and st["reason"] == "Conflict"
    assert st["message"] == (
        'Operation cannot be fulfilled on bgppeers.bgpsvc.io "tor-a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    del made["metadata"]["resourceVersion"]
    err = rejected(co.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "tor-a", made)
    assert err.status == 422 and causes(err) == [
        "metadata.resourceVersion: Invalid value: 0: must be specified for an update"
    ]
    # Labels are metadata: no new generation. A no-op update writes nothing.
    updated["metadata"]["labels"] = {"rack": "a"}
    relabelled = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-a", updated)
    assert relabelled["metadata"]["generation"] == 2
    again = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-a", relabelled)
    assert again["metadata"]["resourceVersion"] == relabelled["metadata"]["resourceVersion"]
    # Transition rule: address is immutable (checked on updates only).
    relabelled["spec"]["address"] = "192.0.2.99"
    err = rejected(
        co.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "tor-a", relabelled
    )
    assert causes(err) == ['spec.address: Invalid value: "object": address is immutable']
    err = rejected(
        co.replace_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "nope", peer("nope")
    )
    assert err.status == 404


def test_status_subresource_and_generation(peers: ApiServer, co: Any) -> None:
    made = create(co, peer("tor-a"))
    body = {**made, "status": {"state": "Established", "observedGeneration": 1}}
    body["spec"] = {**made["spec"], "holdTime": 9}  # ignored by a status write
    st = co.replace_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "tor-a", body)
    assert st["status"] == {"state": "Established", "observedGeneration": 1}
    assert st["spec"]["holdTime"] == 90 and st["metadata"]["generation"] == 1
    assert int(st["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    # A main-resource write cannot change status, and a spec change bumps the generation.
    st["status"] = {"state": "Idle"}
    st["spec"]["holdTime"] = 30
    main = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-a", st)
    assert main["status"]["state"] == "Established" and main["metadata"]["generation"] == 2
    patched = co.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "tor-a",
        {"status": {"state": "Idle"}, "metadata": {"labels": {"x": "y"}}},
    )
    assert patched["status"]["state"] == "Idle" and "labels" not in patched["metadata"]
    assert patched["metadata"]["generation"] == 2
    assert (
        co.get_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "tor-a")["status"]["state"]
        == "Idle"
    )
    err = rejected(
        co.patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "tor-a",
        {"status": {"state": "Up"}},
    )
    assert err.status == 422 and causes(err)[0].startswith('status.state: Unsupported value: "Up"')


def test_patch_merge_json_and_preconditions(peers: ApiServer, co: Any) -> None:
    made = create(co, peer("tor-a", description="old"))
    merged = co.patch_namespaced_custom_object(  # the client's default content type: merge patch
        GROUP, VERSION, "default", PLURAL, "tor-a", {"spec": {"holdTime": 30, "description": None}}
    )
    assert merged["spec"]["holdTime"] == 30 and "description" not in merged["spec"]
    assert merged["metadata"]["generation"] == 2
    ops = [
        {"op": "test", "path": "/spec/holdTime", "value": 30},
        {"op": "replace", "path": "/spec/mode", "value": "passive"},
    ]
    patched = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "tor-a", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["mode"] == "passive"
    failing = [{"op": "test", "path": "/spec/holdTime", "value": 31}]
    err = rejected(
        co.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "tor-a",
        failing,
        _content_type="application/json-patch+json",
    )
    assert err.status == 422
    stale = {"metadata": {"resourceVersion": made["metadata"]["resourceVersion"]}, "spec": {"holdTime": 40}}
    err = rejected(co.patch_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, "tor-a", stale)
    assert err.status == 409
    err = rejected(
        co.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "tor-a",
        {"spec": {}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert err.status == 415
    err = rejected(
        co.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "tor-a",
        {"spec": {"peerASN": -1}},
    )
    assert err.status == 422 and causes(err)[0].startswith("spec.peerASN: Invalid value: -1")
    assert read(co, "tor-a")["spec"]["holdTime"] == 30


# -- delete --------------------------------------------------------------------------------------------


def test_delete_finalizers_and_crd_removal(peers: ApiServer, co: Any, ext: Any) -> None:
    made = create(co, peer("tor-a"))
    gone = co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-a")
    assert gone["status"] == "Success" and gone["details"] == {
        "name": "tor-a",
        "group": GROUP,
        "kind": PLURAL,
        "uid": made["metadata"]["uid"],
    }
    assert rejected(read, co, "tor-a").status == 404
    held = create(co, peer("tor-b") | {"metadata": {"name": "tor-b", "finalizers": ["bgpsvc.io/withdraw"]}})
    pending = co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "tor-b")
    assert pending["metadata"]["deletionTimestamp"] and read(co, "tor-b")["metadata"]["deletionTimestamp"]
    since = held["metadata"]["resourceVersion"]
    co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "tor-b", {"metadata": {"finalizers": None}}
    )
    assert rejected(read, co, "tor-b").status == 404
    assert summary(watch_events(co, 2, resource_version=since)) == [
        ("MODIFIED", "tor-b"),
        ("DELETED", "tor-b"),
    ]
    create(co, peer("tor-c"))
    ext.delete_custom_resource_definition("bgppeers.bgpsvc.io")
    assert peers.get("CustomResourceDefinition", None, "bgppeers.bgpsvc.io") is None
    assert rejected(co.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL).status == 404


def test_cluster_scoped_resource_and_preserved_fields(lab: ApiServer, ext: Any, co: Any) -> None:
    ext.create_custom_resource_definition(crd_dict(CLUSTER_CRD))
    body = {
        "apiVersion": API_VERSION,
        "kind": "BgpPolicy",
        "metadata": {"name": "p"},
        "spec": {"communities": ["65000:1"], "extra": {"kept": True}},
    }
    made = co.create_cluster_custom_object(GROUP, VERSION, "bgppolicies", body)
    assert "namespace" not in made["metadata"] and made["spec"]["extra"] == {"kept": True}
    err = rejected(
        co.create_cluster_custom_object,
        GROUP,
        VERSION,
        "bgppolicies",
        body | {"metadata": {"name": "q"}, "spec": {"communities": ["x"]}},
    )
    assert causes(err) == [
        "spec.communities[0]: Invalid value: \"x\": spec.communities[0] in body should match '^\\d+:\\d+$'"
    ]
    assert [
        i["metadata"]["name"] for i in co.list_cluster_custom_object(GROUP, VERSION, "bgppolicies")["items"]
    ] == ["p"]


# -- watch ---------------------------------------------------------------------------------------------


def test_watch_resume_bookmarks_and_410(peers: ApiServer, co: Any) -> None:
    # Bookmarks carry this kind and the current version.
    resp = co.list_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        watch=True,
        allow_watch_bookmarks=True,
        resource_version=peers.resource_version,
        timeout_seconds=10,
        _preload_content=False,
        _request_timeout=(5, 10),
    )
    wait_until(lambda: peers.open_watches == 1, what="watch open")
    peers.send_bookmarks()
    assert json.loads(next(iter_lines(resp))) == {
        "type": "BOOKMARK",
        "object": {
            "kind": "BgpPeer",
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": peers.resource_version},
        },
    }
    resp.close()
    resp.release_conn()
    create(co, peer("a"))
    since = co.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["metadata"]["resourceVersion"]
    b = create(co, peer("b"))
    co.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a", {"spec": {"holdTime": 10}})
    co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "b")
    events = watch_events(co, 3, resource_version=since)
    assert summary(events) == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert events[1]["object"]["spec"]["holdTime"] == 10 and events[1]["object"]["kind"] == "BgpPeer"
    # Resume from the middle: only what came after.
    assert summary(watch_events(co, 2, resource_version=b["metadata"]["resourceVersion"])) == [
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    peers.compact()
    (err,) = watch_events(co, 1, resource_version=since)
    assert err["type"] == "ERROR" and err["object"]["code"] == 410 and err["object"]["reason"] == "Expired"


def test_two_versions_share_objects_and_discovery_prefers_the_newer(
    lab: ApiServer, ext: Any, co: Any
) -> None:
    body = crd_dict()
    v1 = copy.deepcopy(body["spec"]["versions"][0])
    v1.update(name="v1beta1", storage=True)
    body["spec"]["versions"][0]["storage"] = False
    body["spec"]["versions"].append(v1)
    ext.create_custom_resource_definition(body)
    groups = {g.name: g for g in k8s.ApisApi(co.api_client).get_api_versions().groups}
    assert groups[GROUP].preferred_version.version == "v1beta1"
    since = lab.resource_version
    made = create(co, peer("tor-a"))  # written at v1alpha1, stored at v1beta1
    assert made["apiVersion"] == API_VERSION
    beta = co.get_namespaced_custom_object(GROUP, "v1beta1", "default", PLURAL, "tor-a")
    assert beta["apiVersion"] == f"{GROUP}/v1beta1" and beta["metadata"]["uid"] == made["metadata"]["uid"]
    listed = co.list_namespaced_custom_object(GROUP, "v1beta1", "default", PLURAL)
    assert [i["apiVersion"] for i in listed["items"]] == [f"{GROUP}/v1beta1"]
    (ev,) = watch_events(co, 1, resource_version=since)  # a v1alpha1 watch sees it as v1alpha1
    assert ev["type"] == "ADDED" and ev["object"]["apiVersion"] == API_VERSION
