"""JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902), the two patch types kube-apiserver accepts for
custom resources (strategic merge patch needs Go struct tags and is refused with 415 upstream)."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A malformed patch, or a JSON Patch operation that cannot be applied (``test`` failing included)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2 ``MergePatch(Target, Patch)``; returns a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _tokens(pointer: Any) -> list[str]:
    """RFC 6901 reference tokens."""
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(container: list[Any], token: str, insert: bool) -> int:
    if token == "-" and insert:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not insert):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, False)]
        else:
            raise PatchError(f"path component {t!r} not found")
    return cur


def _get(doc: Any, pointer: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f"path {pointer!r} not found")


def _remove(doc: Any, pointer: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, False))
    raise PatchError(f"path {pointer!r} not found")


def _add(doc: Any, pointer: Any, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f"path {pointer!r}: parent is not a container")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902: apply the operations in order to a copy of ``doc``; raises ``PatchError``."""
    if not isinstance(ops, list):
        raise PatchError("a JSON Patch must be a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(f"invalid operation {op!r}")
        name, path = op.get("op"), op["path"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {name} needs a value")
        if name == "add":
            out = _add(out, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            _remove(out, path)
        elif name == "replace":
            _get(out, path)  # must exist
            if _tokens(path):
                _remove(out, path)
            out = _add(out, path, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            value = (
                _remove(out, op.get("from")) if name == "move" else copy.deepcopy(_get(out, op.get("from")))
            )
            out = _add(out, path, value)
        elif name == "test":
            if _get(out, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unknown operation {name!r}")
    return out
