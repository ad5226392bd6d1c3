"""Writes to custom resources with the semantics of apiextensions' ``customResourceStrategy`` and the
generic registry store (``k8s.io/apiserver/pkg/registry/generic/registry/store.go``):

- create: POST only (``AllowCreateOnUpdate`` is false); ``status`` dropped when the CRD has the status
  subresource; ``metadata.generation`` = 1; ``generateName`` gets 5 random characters.
- update: ``metadata.resourceVersion`` is required (``AllowUnconditionalUpdate`` is false) and must be the
  current one, else 409 Conflict; with the status subresource the main resource keeps the old
  ``status`` and ``/status`` keeps everything but ``status`` from the old object (metadata included);
  ``generation`` increments when anything outside ``metadata`` changes; a write that changes nothing
  stores nothing (no new resourceVersion).
- patch: JSON merge patch or JSON patch on the current object, then the update path; a
  resourceVersion in the patch is a precondition. Built-in kinds served through this path (Lease) also
  take a strategic merge patch, applied as a merge patch.
- delete: with finalizers, only ``deletionTimestamp`` is set and the object goes when an update removes
  the last finalizer; otherwise it is removed and a Success Status returned.

Every write prunes unknown fields (``fieldValidation=Strict``: 400 instead; otherwise one ``Warning``
per field), applies defaults and validates (422 naming each field).
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bgpsvc.lab.crd import Crd, CrdVersion
from bgpsvc.lab.fielderrors import FieldError, Invalid
from bgpsvc.lab.patch import PatchError, json_patch, merge_patch
from bgpsvc.lab.status import (
    STALE,
    HTTPError,
    already_exists,
    bad_request,
    conflict,
    not_found,
    status,
    unsupported_media,
)
from bgpsvc.lab.store import JSON, ObjectStore, as_version, now_rfc3339
from bgpsvc.lab.validation import apply_defaults, check_object, prune

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apiserver storage/names: no vowels, no confusables
_SERVER_META = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")
MERGE_PATCH, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, "application/apply-patch+yaml")


def _content(obj: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in obj.items() if k != "metadata"}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    skip = ("resourceVersion", "managedFields")
    ma = {k: v for k, v in (a.get("metadata") or {}).items() if k not in skip}
    mb = {k: v for k, v in (b.get("metadata") or {}).items() if k not in skip}
    return ma == mb and _content(a) == _content(b)


@dataclass(frozen=True, slots=True)
class Target:
    """What a write addresses: the CRD, the version of the request, namespace and name."""

    crd: Crd
    ver: CrdVersion
    ns: str | None
    name: str = ""


class CustomResources:
    """The write verbs of custom resources over the shared ``ObjectStore``."""

    def __init__(self, store: ObjectStore, rng: random.Random) -> None:
        self.store = store
        self.rng = rng

    # -- helpers --------------------------------------------------------------------------------------

    @staticmethod
    def _check_body(body: Any, ver: CrdVersion) -> JSON:
        res = ver.resource
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        if body.get("apiVersion") not in (None, res.api_version):
            raise bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API "
                f"version ({res.api_version})"
            )
        if body.get("kind") not in (None, res.kind):
            raise bad_request(
                f"the kind in the data ({body.get('kind')}) does not match the expected kind ({res.kind})"
            )
        out = copy.deepcopy(body)
        out["apiVersion"], out["kind"] = res.api_version, res.kind
        if not isinstance(out.get("metadata"), dict):
            out["metadata"] = {}
        return out

    def _scope(self, obj: JSON, ver: CrdVersion, ns: str | None) -> None:
        meta = obj["metadata"]
        if not ver.resource.namespaced:
            meta.pop("namespace", None)
        elif meta.get("namespace") not in (None, "", ns):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        else:
            meta["namespace"] = ns

    @staticmethod
    def _prepare(obj: JSON, ver: CrdVersion, q: Mapping[str, str]) -> list[str]:
        """Prune, default and canonicalize (built-in kinds) in place; returns the unknown-field warnings."""
        unknown: list[str] = []
        prune(obj, ver.schema, "", unknown, root=True)
        if unknown and q.get("fieldValidation") == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(f"strict decoding error: {fields}")
        apply_defaults(obj, ver.schema)
        if ver.canonical is not None:
            ver.canonical(obj)
        return [] if q.get("fieldValidation") == "Ignore" else [f'unknown field "{u}"' for u in unknown]

    @staticmethod
    def _validate(obj: JSON, ver: CrdVersion, old: JSON | None, meta_errs: list[FieldError]) -> None:
        errs = meta_errs + check_object(obj, ver.schema, old)
        if errs:
            res = ver.resource
            raise Invalid(res.kind, res.group, str(obj["metadata"].get("name") or ""), errs)

    # -- verbs ----------------------------------------------------------------------------------------

    def create(self, t: Target, body: Any, q: Mapping[str, str]) -> tuple[JSON, list[str]]:
        """POST: returns the created object (at ``ver``) and the warnings."""
        ver, storage, ns = t.ver, t.crd.storage, t.ns
        obj = self._check_body(body, ver)
        self._scope(obj, ver, ns)
        meta = obj["metadata"]
        for k in (*_SERVER_META, "resourceVersion", "selfLink", "managedFields"):
            meta.pop(k, None)
        errs: list[FieldError] = []
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + "".join(self.rng.choice(_GEN_CHARS) for _ in range(5))
        name = meta.get("name")
        if not name:
            errs.append(FieldError("Required", "metadata.name", "name or generateName is required"))
        elif not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
            errs.append(FieldError("Invalid", "metadata.name", _SUBDOMAIN_MSG, name))
        meta["generation"] = 1  # also on a Lease, where upstream leaves it unset: a known difference
        if ver.status:
            obj.pop("status", None)  # PrepareForCreate: create cannot set status
        warnings = self._prepare(obj, ver, q)
        self._validate(obj, ver, None, errs)
        obj["apiVersion"] = storage.resource.api_version
        with self.store.cond:
            if self.store.get_locked(storage.resource, meta.get("namespace"), meta["name"]) is not None:
                raise already_exists(ver.resource, meta["name"])
            stored = self.store.put_locked(storage.resource, obj, None)
            return copy.deepcopy(as_version(stored, ver.resource)), warnings

    def update(
        self, t: Target, body: Any, q: Mapping[str, str], subresource: str = ""
    ) -> tuple[JSON, list[str]]:
        """PUT (``subresource`` "" or "status"): returns the stored object and the warnings."""
        ver, name = t.ver, t.name
        new = self._check_body(body, ver)
        if new["metadata"].get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({new['metadata']['name']}) does not match the name on the URL "
                f"({name})"
            )
        with self.store.cond:
            old = self._current(t)
            rv = new["metadata"].get("resourceVersion")
            if not rv:
                err = FieldError("Invalid", "metadata.resourceVersion", "must be specified for an update", 0)
                raise Invalid(ver.resource.kind, ver.resource.group, name, [err])
            if str(rv) != old["metadata"]["resourceVersion"]:
                raise conflict(ver.resource, name, STALE)
            return self._update_locked(t, old, new, q, subresource)

    def patch(
        self, t: Target, raw: bytes, ctype: str, q: Mapping[str, str], subresource: str = ""
    ) -> tuple[JSON, list[str]]:
        """PATCH with a JSON merge patch or a JSON patch (a built-in kind: also a strategic merge patch)."""
        ver, name = t.ver, t.name
        if ctype == STRATEGIC_MERGE_PATCH and not ver.resource.custom:
            # Upstream merges lists by their patch keys; the lab's built-in kinds served here (Lease) have
            # none outside metadata, so a merge patch is the same but for finalizers/ownerReferences.
            ctype = MERGE_PATCH
        if ctype not in (MERGE_PATCH, JSON_PATCH):
            raise unsupported_media(ctype, PATCH_TYPES)
        try:
            body = json.loads(raw or b"null")
        except ValueError as e:
            raise bad_request(f"error decoding patch: {e}") from None
        with self.store.cond:
            old = self._current(t)
            cur = as_version(copy.deepcopy(old), ver.resource)
            try:
                if ctype == MERGE_PATCH:
                    if not isinstance(body, dict):
                        raise PatchError("a merge patch must be a JSON object")
                    patched = merge_patch(cur, body)
                else:
                    patched = json_patch(cur, body)
            except PatchError as e:
                raise HTTPError(status(422, "Invalid", str(e))) from None
            if not isinstance(patched, dict):
                raise bad_request("the patched object is not a JSON object")
            meta = patched.setdefault("metadata", {}) if isinstance(patched.get("metadata"), dict) else {}
            patched["metadata"] = meta
            if meta.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
                raise conflict(ver.resource, name, STALE)
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            new = self._check_body(patched, ver)
            return self._update_locked(t, old, new, q, subresource)

    def _current(self, t: Target) -> JSON:
        old = self.store.get_locked(t.crd.storage.resource, t.ns, t.name)
        if old is None:
            raise not_found(t.ver.resource, t.name)
        return old

    def _update_locked(
        self, t: Target, old: JSON, new: JSON, q: Mapping[str, str], subresource: str
    ) -> tuple[JSON, list[str]]:
        ver, storage, ns, name = t.ver, t.crd.storage, t.ns, t.name
        old_v = as_version(old, ver.resource)
        if subresource == "status":
            # statusStrategy.PrepareForUpdate: everything but status comes from the old object.
            status_value = new.get("status")
            new = copy.deepcopy(old_v)
            new.pop("status", None)
            if status_value is not None:
                new["status"] = status_value
        else:
            self._scope(new, ver, ns)
            new["metadata"]["name"] = name
            for k in _SERVER_META:
                if k in old["metadata"]:
                    new["metadata"][k] = old["metadata"][k]
                else:
                    new["metadata"].pop(k, None)
            if ver.status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
        warnings = self._prepare(new, ver, q)
        if _content(new) != _content(old_v):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + (
                subresource != "status"
            )
        self._validate(new, ver, old_v, [])
        if _same(new, old_v):
            return copy.deepcopy(old_v), warnings
        new["apiVersion"] = storage.resource.api_version
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            gone = self.store.remove_locked(storage.resource, ns, name)
            assert gone is not None
            return copy.deepcopy(as_version(gone, ver.resource)), warnings
        stored = self.store.put_locked(storage.resource, new, old)
        return copy.deepcopy(as_version(stored, ver.resource)), warnings

    def delete(self, t: Target, options: Any) -> JSON:
        """DELETE one object: a Success Status, or the object when finalizers keep it."""
        ver, storage, ns, name = t.ver, t.crd.storage, t.ns, t.name
        pre = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        with self.store.cond:
            old = self._current(t)
            meta = old["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                if pre.get(field) not in (None, meta.get(field)):
                    why = (
                        f"Precondition failed: {label} in precondition: {pre[field]}, "
                        f"{label} in object meta: {meta.get(field)}"
                    )
                    raise conflict(ver.resource, name, why)
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(as_version(old, ver.resource))
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return copy.deepcopy(
                    as_version(self.store.put_locked(storage.resource, new, old), ver.resource)
                )
            self.store.remove_locked(storage.resource, ns, name)
        res = ver.resource
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": res.group, "kind": res.plural, "uid": meta["uid"]},
        }
