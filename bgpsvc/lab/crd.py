"""CustomResourceDefinitions (``apiextensions.k8s.io/v1``): the checks the API server makes when one is
created (a subset of apiextensions ``validation.ValidateCustomResourceDefinition``), the defaults and
status it fills in, and the frozen ``Crd`` the lab serves custom resources from (and built-in kinds given
as a CRD-shaped definition, such as ``coordination.LEASE``).

Supported: one or more versions (``conversion.strategy: None``: versions differ only in apiVersion),
``Namespaced``/``Cluster`` scope, the ``status`` subresource, structural schemas with defaults and CEL
rules. Refused loudly: conversion webhooks and the ``scale`` subresource.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bgpsvc.lab.fielderrors import FieldError, Invalid
from bgpsvc.lab.schema import NO_DEFAULT, Schema, parse_schema
from bgpsvc.lab.status import already_exists
from bgpsvc.lab.store import CRD_RESOURCE, JSON, ObjectStore, Resource, now_rfc3339
from bgpsvc.lab.validation import prune, validate

GROUP = "apiextensions.k8s.io"
KIND = "CustomResourceDefinition"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class CrdVersion:
    """One served version of a CRD."""

    resource: Resource
    schema: Schema
    status: bool  # subresources.status is declared
    storage: bool
    served: bool
    #: A built-in kind's rewrite of decoded values into their canonical form (Lease: MicroTime in UTC),
    #: run before validation; None for custom resources, which upstream stores as sent.
    canonical: Callable[[JSON], None] | None = None


@dataclass(frozen=True, slots=True)
class Crd:
    """A registered CRD, as the server serves it."""

    name: str
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    versions: tuple[CrdVersion, ...]

    @property
    def storage(self) -> CrdVersion:
        """The storage version (every object is stored at it)."""
        return next(v for v in self.versions if v.storage)

    def version(self, api_version: str) -> CrdVersion | None:
        """The served version with this apiVersion, or None."""
        return next((v for v in self.versions if v.served and v.resource.api_version == api_version), None)

    @property
    def served(self) -> tuple[CrdVersion, ...]:
        """The served versions."""
        return tuple(v for v in self.versions if v.served)


def _defaults_errors(s: Schema, path: str) -> list[FieldError]:
    """Every ``default`` must be pruned already and validate against its own schema node."""
    errs: list[FieldError] = []
    if s.default is not NO_DEFAULT:
        unknown: list[str] = []
        pruned = prune(copy.deepcopy(s.default), s, "", unknown)
        if unknown:
            errs.append(
                FieldError(
                    "Invalid",
                    f"{path}.default",
                    f"must not have unknown fields: {', '.join(unknown)}",
                    pruned,
                )
            )
        for e in validate(s.default, s, f"{path}.default"):
            errs.append(e)
    for k, sub in s.properties.items():
        errs.extend(_defaults_errors(sub, f"{path}.properties[{k}]"))
    if s.items is not None:
        errs.extend(_defaults_errors(s.items, f"{path}.items"))
    if s.additional is not None:
        errs.extend(_defaults_errors(s.additional, f"{path}.additionalProperties"))
    return errs


def _names(spec: Mapping[str, Any], errs: list[FieldError]) -> JSON:
    names = dict(spec.get("names") or {})
    for key in ("plural", "kind"):
        if not names.get(key):
            errs.append(FieldError("Required", f"spec.names.{key}"))
    plural = str(names.get("plural") or "")
    if plural and not _DNS_LABEL.fullmatch(plural):
        errs.append(FieldError("Invalid", "spec.names.plural", "a lowercase RFC 1123 label", plural))
    kind = str(names.get("kind") or "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", kind + "List")
    return names


def _version(
    raw: Any, i: int, *, group: str, names: JSON, namespaced: bool, errs: list[FieldError]
) -> CrdVersion | None:
    path = f"spec.versions[{i}]"
    if not isinstance(raw, Mapping) or not raw.get("name"):
        errs.append(FieldError("Required", f"{path}.name"))
        return None
    name = str(raw["name"])
    if not _DNS1035.fullmatch(name):
        errs.append(FieldError("Invalid", f"{path}.name", "a DNS-1035 label", name))
    sub = raw.get("subresources") or {}
    if "scale" in sub:
        errs.append(
            FieldError("Forbidden", f"{path}.subresources.scale", "not supported by the lab apiserver")
        )
    raw_schema = (raw.get("schema") or {}).get("openAPIV3Schema")
    if raw_schema is None:
        errs.append(FieldError("Required", f"{path}.schema.openAPIV3Schema", "schemas are required"))
        return None
    schema, schema_errs = parse_schema(raw_schema, f"{path}.schema.openAPIV3Schema")
    errs.extend(schema_errs)
    if not schema_errs:
        errs.extend(_defaults_errors(schema, f"{path}.schema.openAPIV3Schema"))
    res = Resource(
        str(names.get("plural") or ""),
        str(names.get("kind") or ""),
        f"{group}/{name}",
        namespaced,
        str(names["listKind"]),
        custom=True,
    )
    return CrdVersion(
        res, schema, "status" in sub, raw.get("storage") is True, raw.get("served", True) is True
    )


def parse_crd(obj: Mapping[str, Any]) -> tuple[Crd, JSON]:
    """Validate a CRD; returns the served ``Crd`` and the object to store (defaults and status filled
    in). Raises ``Invalid`` (422) naming every bad field."""
    errs: list[FieldError] = []
    meta = dict(obj.get("metadata") or {})
    spec = dict(obj.get("spec") or {})
    name = str(meta.get("name") or "")
    group = str(spec.get("group") or "")
    if not group:
        errs.append(FieldError("Required", "spec.group"))
    elif "." not in group:
        errs.append(FieldError("Invalid", "spec.group", "should be a domain with at least one dot", group))
    names = _names(spec, errs)
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        errs.append(
            FieldError("NotSupported", "spec.scope", 'supported values: "Cluster", "Namespaced"', scope)
        )
    if name != f"{names.get('plural')}.{group}":
        errs.append(FieldError("Invalid", "metadata.name", 'must be spec.names.plural+"."+spec.group', name))
    strategy = (spec.get("conversion") or {}).get("strategy", "None")
    if strategy != "None":
        errs.append(
            FieldError("Forbidden", "spec.conversion.strategy", "only None is supported by the lab apiserver")
        )
    raw_versions = spec.get("versions") or []
    if not raw_versions:
        errs.append(
            FieldError("Required", "spec.versions", "must have exactly one version marked as storage version")
        )
    versions = [
        _version(v, i, group=group, names=names, namespaced=scope == "Namespaced", errs=errs)
        for i, v in enumerate(raw_versions)
    ]
    if raw_versions and sum(1 for v in versions if v and v.storage) != 1:
        errs.append(
            FieldError(
                "Invalid",
                "spec.versions",
                "must have exactly one version marked as storage version",
                raw_versions,
            )
        )
    seen = [str(v.get("name")) for v in raw_versions if isinstance(v, Mapping)]
    if len(set(seen)) != len(seen):
        errs.append(FieldError("Invalid", "spec.versions", "must contain unique version names", seen))
    if errs:
        raise Invalid(KIND, GROUP, name, errs)
    crd = Crd(
        name,
        str(names["singular"]),
        tuple(names.get("shortNames") or ()),
        tuple(names.get("categories") or ()),
        tuple(v for v in versions if v is not None),
    )
    return crd, _stored(obj, names, crd)


def _stored(obj: Mapping[str, Any], names: JSON, crd: Crd) -> JSON:
    out = copy.deepcopy(dict(obj))
    out["apiVersion"], out["kind"] = f"{GROUP}/v1", KIND
    out["spec"]["names"] = names
    out["spec"].setdefault("conversion", {"strategy": "None"})
    for v in out["spec"]["versions"]:
        v.setdefault("served", True)
    now = now_rfc3339()
    out["status"] = {
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now, "reason": r, "message": m}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
        "acceptedNames": names,
        "storedVersions": [crd.storage.resource.version],
    }
    out["metadata"]["generation"] = 1
    return out


class CrdRegistry:
    """The CRDs a server has registered, kept in step with its store's ``Registry`` (what is served)
    and with the ``customresourcedefinitions`` objects (so CRDs list and watch like any kind); also the
    built-in kinds served the same way (``register_builtin``), which have no such object."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._crds: dict[str, Crd] = {}  # by storage key (<plural>.<group>)

    def of(self, res: Resource) -> Crd | None:
        """The CRD (or built-in definition) serving ``res``, or None for a store-only built-in resource."""
        crd = self._crds.get(res.storage)
        return crd if crd is not None and crd.version(res.api_version) is not None else None

    def register_builtin(
        self, definition: Mapping[str, Any], canonical: Callable[[JSON], None] | None = None
    ) -> Crd:
        """Serve a built-in kind (e.g. ``coordination.LEASE``) through the custom-resource machinery from a
        CRD-shaped definition: writable over HTTP, but no ``customresourcedefinitions`` object is stored,
        and CRDs can neither replace nor delete it. Its resources are not ``custom`` (typed lists);
        ``canonical`` rewrites each written object as upstream's typed decoding would."""
        crd, _ = parse_crd(definition)
        versions = tuple(
            dataclasses.replace(
                v, resource=dataclasses.replace(v.resource, custom=False), canonical=canonical
            )
            for v in crd.versions
        )
        crd = dataclasses.replace(crd, versions=versions)
        with self.store.cond:
            for v in crd.served:
                self.store.registry.add(v.resource)
            self._crds[crd.storage.resource.storage] = crd
        return crd

    def _check_not_builtin(self, crd: Crd) -> None:
        """A CRD may not take over a built-in resource (upstream: protected groups need API approval)."""
        key = crd.storage.resource.storage  # <plural>.<group>: any version of it shares the objects
        if any(not r.custom and r.storage == key for r in self.store.registry.all()):
            err = FieldError("Forbidden", "spec.group", f"{crd.name} is a built-in resource of this server")
            raise Invalid(KIND, GROUP, crd.name, [err])

    def register(self, obj: Mapping[str, Any], replace: bool = False) -> JSON:
        """Validate and serve a CRD; returns the stored CRD object. Raises ``Invalid``, or ``HTTPError``
        409 when it exists and ``replace`` is false (a replacement keeps the existing objects)."""
        crd, new = parse_crd(obj)
        meta = new["metadata"]
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "managedFields"):
            meta.pop(k, None)
        with self.store.cond:
            self._check_not_builtin(crd)
            prev = self.store.get_locked(CRD_RESOURCE, None, crd.name)
            if prev is not None:
                if not replace:
                    raise already_exists(CRD_RESOURCE, crd.name)
                old = self._crds.get(crd.storage.resource.storage)
                for v in old.versions if old else ():
                    self.store.registry.remove(v.resource)
                meta["generation"] = int(prev["metadata"].get("generation") or 1) + (
                    new["spec"] != prev["spec"]
                )
            for v in crd.served:
                self.store.registry.add(v.resource)
            self._crds[crd.storage.resource.storage] = crd
            return copy.deepcopy(self.store.put_locked(CRD_RESOURCE, new, prev))

    def unregister(self, name: str) -> JSON | None:
        """Delete a CRD and every object of it (each a DELETED event); returns the CRD's last state."""
        with self.store.cond:
            crd = next((c for c in self._crds.values() if c.name == name and c.storage.resource.custom), None)
            if crd is not None:
                res = crd.storage.resource
                _, objs = self.store.current(res)
                for o in objs:
                    self.store.remove_locked(res, o["metadata"].get("namespace"), o["metadata"]["name"])
                for v in crd.versions:
                    self.store.registry.remove(v.resource)
                del self._crds[res.storage]
            gone = self.store.remove_locked(CRD_RESOURCE, None, name)
            return copy.deepcopy(gone) if gone is not None else None
