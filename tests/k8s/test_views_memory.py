"""What keeps a node speaker's memory down at 10k-100k Services, as behaviour a test can see.

Views intern the strings that recur across objects (namespaces, types, label keys and values, Service
names named again by their EndpointSlices) and share the ``spec.ipFamilies`` tuples; the informer keys
its store with the view's own strings, so no second copy of the JSON's survives; EndpointSlices are
listed in pages of ``ENDPOINTSLICE_PAGE_SIZE``.
"""

from __future__ import annotations

import json
from typing import Any

from bgpsvc.k8s.informer import endpointslice_informer, service_informer
from bgpsvc.k8s.reflector import ENDPOINTSLICE_PAGE_SIZE, PAGE_SIZE
from bgpsvc.k8s.views import endpointslice_from_dict, service_from_dict
from bgpsvc.lab import ApiServer

from .conftest import service, wait_until


def _slice(ns: str, name: str, svc: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.1"], "nodeName": "n1", "conditions": {"ready": True}}],
    }


def test_views_from_separate_documents_share_their_recurring_strings() -> None:
    # json.loads gives every occurrence its own string: two documents, two copies of each.
    a = json.loads(json.dumps(service("web", ns="shop", labels={"app": "web"}, ipFamilies=["IPv4"])))
    b = json.loads(json.dumps(service("web", ns="shop", labels={"app": "web"}, ipFamilies=["IPv4"])))
    assert a["metadata"]["namespace"] is not b["metadata"]["namespace"]
    va, vb = service_from_dict(a), service_from_dict(b)
    assert va == vb
    assert va.namespace is vb.namespace and va.name is vb.name
    assert va.type is vb.type and va.external_traffic_policy is vb.external_traffic_policy
    assert va.ip_families is vb.ip_families
    assert va.labels[0][0] is vb.labels[0][0] and va.labels[0][1] is vb.labels[0][1]
    s = endpointslice_from_dict(json.loads(json.dumps(_slice("shop", "web-abc", "web"))))
    assert s.service_name is va.name and s.namespace is va.namespace
    assert s.address_type is endpointslice_from_dict(_slice("x", "y", "z")).address_type


def test_the_store_is_keyed_with_the_views_own_strings(lab: ApiServer, api_client: Any) -> None:
    lab.apply(service("web", ns="shop"))
    inf = service_informer(api_client).start()
    try:
        assert inf.wait_synced(5)
        lab.apply(service("api", ns="shop"))  # a watch event takes the same path as a list
        wait_until(lambda: len(inf.snapshot()) == 2, what="the watch event")
        for key, view in inf.snapshot().items():
            assert key == view.key
            assert key[0] is view.namespace and key[1] is view.name
    finally:
        inf.stop()


def test_endpointslices_are_listed_in_smaller_pages(lab: ApiServer, api_client: Any) -> None:
    assert ENDPOINTSLICE_PAGE_SIZE < PAGE_SIZE
    n = ENDPOINTSLICE_PAGE_SIZE + 1
    for i in range(n):
        lab.apply(_slice("shop", f"s-{i}", "web"))
    before = lab.lists
    inf = endpointslice_informer(api_client).start()
    try:
        assert inf.wait_synced(10)
        assert len(inf.snapshot()) == n
        assert lab.lists - before == 2  # 101 slices: a full page and one more
        assert endpointslice_informer(api_client, page_size=7).page_size == 7  # still a knob
    finally:
        inf.stop()
