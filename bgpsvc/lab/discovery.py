"""Discovery documents (``/api``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``,
``/version``) built from what the server currently serves, CRD-defined resources (and Leases, served
the same way) included, so the dynamic client and kubectl find them. Versions are ordered as apimachinery's
``CompareKubeAwareVersionStrings`` does (GA > beta > alpha, higher numbers first); the first is the
preferred one."""

from __future__ import annotations

import re
from collections.abc import Callable

from bgpsvc.lab.crd import Crd
from bgpsvc.lab.store import JSON, Registry, Resource

_READ = ["get", "list", "watch"]
_CRD_VERBS = ["create", "delete", "get", "list", "watch"]
_CR_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
VERSION_INFO = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-bgpsvc-lab", "platform": "linux/amd64"}


def version_priority(v: str) -> tuple[int, int, int, str]:
    """Sort key: GA before beta before alpha, newer first; non-Kubernetes names last, alphabetically."""
    m = _KUBE_VERSION.fullmatch(v)
    if m is None:
        return (3, 0, 0, v)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), v)


def _entries(res: Resource, crd: Crd | None) -> list[JSON]:
    entry: JSON = {
        "name": res.plural,
        "singularName": crd.singular if crd else res.kind.lower(),
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": _CR_VERBS if crd else _CRD_VERBS if res.kind == "CustomResourceDefinition" else _READ,
    }
    if crd is None:
        return [entry]
    if crd.short_names:
        entry["shortNames"] = list(crd.short_names)
    if crd.categories:
        entry["categories"] = list(crd.categories)
    out = [entry]
    ver = crd.version(res.api_version)
    if ver is not None and ver.status:
        out.append(
            {
                "name": f"{res.plural}/status",
                "singularName": "",
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return out


def _group(name: str, versions: list[str]) -> JSON:
    ordered = sorted(versions, key=version_priority)
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered]
    return {"name": name, "versions": gvs, "preferredVersion": dict(gvs[0])}


def discovery(path: str, registry: Registry, crd_of: Callable[[Resource], Crd | None]) -> JSON | None:
    """The discovery document at ``path``, or None when it is not a discovery URL."""
    served = registry.all()
    if path == "/version":
        return dict(VERSION_INFO)
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    groups: dict[str, list[str]] = {}
    for r in served:
        if r.group and r.version not in groups.setdefault(r.group, []):
            groups[r.group].append(r.version)
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(g, v) for g, v in groups.items()],
        }
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) == 2 and parts[1] in groups:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], groups[parts[1]])}
    gv = (
        "v1" if path == "/api/v1" else "/".join(parts[1:]) if parts[0] == "apis" and len(parts) == 3 else None
    )
    if gv is None or not any(r.api_version == gv for r in served):
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [e for r in served if r.api_version == gv for e in _entries(r, crd_of(r))],
    }
