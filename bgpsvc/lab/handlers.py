"""Request dispatch of the lab API server: discovery, reads (get/list/watch) of every served resource,
writes of CustomResourceDefinitions (create, delete) and of custom resources and Leases (create, update,
patch, delete, deletecollection, the ``/status`` subresource). Other built-in kinds are read-only over
HTTP (405), as the lab writes them through ``ApiServer.apply``. A mixin of ``ApiServer``."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from bgpsvc.lab.crd import Crd, CrdRegistry, CrdVersion
from bgpsvc.lab.customresource import CustomResources, Target
from bgpsvc.lab.discovery import discovery
from bgpsvc.lab.fielderrors import Invalid
from bgpsvc.lab.listwatch import _TRUE
from bgpsvc.lab.routing import Route, content_type, parse_route, query, read_body, send_json, send_text
from bgpsvc.lab.selectors import SelectorError, labels_match, parse_label_selector
from bgpsvc.lab.status import HTTPError, bad_request, no_route, not_allowed, not_found, status
from bgpsvc.lab.store import CRD_RESOURCE, JSON, ObjectStore, Resource, as_version

_HEALTH = ("/healthz", "/livez", "/readyz")


class Handlers:
    """HTTP verbs over ``ApiServer``'s store, CRD registry and custom-resource writes."""

    store: ObjectStore
    crds: CrdRegistry
    _writes: CustomResources
    _lock: threading.Lock
    _counts: Counter[str]

    def _count(self, verb: str) -> None:
        with self._lock:
            self._counts[verb] += 1

    def _list(self, res: Resource, ns: str | None, q: Mapping[str, str]) -> JSON:
        raise NotImplementedError  # ListWatch

    def _watch(
        self, h: BaseHTTPRequestHandler, res: Resource, ns: str | None, fs: str, q: Mapping[str, str]
    ) -> None:
        raise NotImplementedError  # ListWatch

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path, q = query(h)
        body = read_body(h) if method != "GET" else b""
        try:
            if method == "GET" and path in _HEALTH:
                self._count("discovery")
                send_text(h, "ok")
                return
            with self.store.cond:
                disc = discovery(path, self.store.registry, self.crds.of) if method == "GET" else None
                route = parse_route(path, self.store.registry) if disc is None else None
            if disc is not None:
                self._count("discovery")
                send_json(h, 200, disc)
            elif route is None:
                raise no_route()
            elif method == "GET":
                self._read(h, route, q)
            elif route.res == CRD_RESOURCE:
                self._write_crd(h, method, route, body)
            else:
                self._write(h, method, route, q, body)
        except HTTPError as e:
            self._count("rejected")
            send_json(h, int(e.body["code"]), e.body, e.headers)
        except Invalid as e:
            self._count("rejected")
            send_json(h, 422, e.status)
        except SelectorError as e:
            self._count("rejected")
            send_json(h, 400, status(400, "BadRequest", str(e)))

    def _read(self, h: BaseHTTPRequestHandler, route: Route, q: Mapping[str, str]) -> None:
        res, ns, name = route.res, route.ns, route.name
        if route.watch or q.get("watch", "") in _TRUE:
            if route.sub:
                raise no_route()
            fs = q.get("fieldSelector") or ""
            if name is not None:
                fs = ",".join(s for s in (fs, f"metadata.name={name}") if s)
            self._count("watch")
            self._watch(h, res, ns, fs, q)
        elif name is None:
            self._count("list")
            send_json(h, 200, self._list(res, ns, q))
        else:
            self._count("get")
            self._check_sub(route)
            with self.store.cond:
                obj = self.store.get_locked(res, ns, name)
                obj = copy.deepcopy(as_version(obj, res)) if obj is not None else None
            if obj is None:
                raise not_found(res, name)
            send_json(h, 200, obj)

    def _check_sub(self, route: Route) -> None:
        if not route.sub:
            return
        crd = self.crds.of(route.res)
        ver = crd.version(route.res.api_version) if crd else None
        if route.sub != "status" or ver is None or not ver.status:
            raise no_route()

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise bad_request(f"error decoding the request body: {e}") from None

    def _write_crd(self, h: BaseHTTPRequestHandler, method: str, route: Route, body: bytes) -> None:
        if method == "POST" and route.name is None:
            self._count("create")
            obj = self._json(body)
            if not isinstance(obj, dict):
                raise bad_request("the body of the request must be a JSON object")
            send_json(h, 201, self.crds.register(obj))
        elif method == "DELETE" and route.name is not None and not route.sub:
            self._count("delete")
            gone = self.crds.unregister(route.name)
            if gone is None:
                raise not_found(route.res, route.name)
            send_json(h, 200, gone)
        else:
            raise not_allowed()

    def _write(
        self, h: BaseHTTPRequestHandler, method: str, route: Route, q: Mapping[str, str], body: bytes
    ) -> None:
        res, ns, name = route.res, route.ns, route.name
        crd = self.crds.of(res)
        ver = crd.version(res.api_version) if crd else None
        if crd is None or ver is None or (res.namespaced and ns is None):
            raise not_allowed()
        self._check_sub(route)
        t = Target(crd, ver, ns, name or "")
        if method == "POST" and name is None and not route.sub:
            self._count("create")
            obj, warnings = self._writes.create(t, self._json(body), q)
            send_json(h, 201, obj, warnings=warnings)
        elif name is None:
            if method != "DELETE":
                raise not_allowed()
            self._count("delete")
            send_json(h, 200, self._delete_collection(crd, ver, ns, q))
        elif method == "PUT":
            self._count("update")
            obj, warnings = self._writes.update(t, self._json(body), q, route.sub)
            send_json(h, 200, obj, warnings=warnings)
        elif method == "PATCH":
            self._count("patch")
            obj, warnings = self._writes.patch(t, body, content_type(h), q, route.sub)
            send_json(h, 200, obj, warnings=warnings)
        elif method == "DELETE" and not route.sub:
            self._count("delete")
            send_json(h, 200, self._writes.delete(t, self._json(body) if body else None))
        else:
            raise not_allowed()

    def _delete_collection(self, crd: Crd, ver: CrdVersion, ns: str | None, q: Mapping[str, str]) -> JSON:
        labels = parse_label_selector(q.get("labelSelector"))
        res = ver.resource
        with self.store.cond:
            _, objs = self.store.current(crd.storage.resource)
            doomed = [
                o["metadata"]
                for o in objs
                if (ns is None or o["metadata"].get("namespace") == ns)
                and labels_match(labels, o["metadata"].get("labels") or {})
            ]
            items = []
            for m in doomed:
                gone = self.store.get_locked(crd.storage.resource, m.get("namespace"), m["name"])
                self._writes.delete(Target(crd, ver, m.get("namespace"), m["name"]), None)
                if gone is not None:
                    items.append(as_version(copy.deepcopy(gone), res))
            meta = {"resourceVersion": str(self.store.rv)}
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}
