"""What the API server does to a custom resource's body with its structural schema, in upstream order:
prune unknown fields (and non-nullable nulls), apply ``default``s, validate the OpenAPI value constraints
(messages as go-openapi words them, converted to field errors as apiextensions does), then evaluate the
``x-kubernetes-validations`` CEL rules unless a blocking error (type, required, enum, too long/many)
was found, as the strategy's ``hasBlockingErr`` does. Standard library only.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import math
import re
import uuid
from datetime import date, datetime
from typing import Any

from bgpsvc.lab.celeval import CelEvalError, evaluate
from bgpsvc.lab.fielderrors import FieldError
from bgpsvc.lab.schema import NO_DEFAULT, Schema

_MISSING: Any = object()
#: ObjectMeta fields a client may send; anything else under metadata is pruned.
OBJECT_META = frozenset(
    """name generateName namespace selfLink uid resourceVersion generation creationTimestamp
    deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences finalizers
    managedFields""".split()  # noqa: SIM905
)
_BLOCKING = frozenset({"NotSupported", "Required", "TooLong", "TooMany", "TypeInvalid"})


def _join(path: str, step: str) -> str:
    return f"{path}.{step}" if path else step


# -- pruning and defaults ---------------------------------------------------------------------------


def prune(v: Any, s: Schema, path: str = "", unknown: list[str] | None = None, root: bool = False) -> Any:
    """Drop fields the schema does not declare (unless preserved) and non-nullable nulls without a
    default; appends the dropped paths to ``unknown``. Returns the pruned value (mutates dicts/lists)."""
    out = unknown if unknown is not None else []
    if isinstance(v, dict):
        meta_root = root or s.embedded
        for k in list(v):
            sub = s.properties.get(k) or s.additional
            if meta_root and k in ("apiVersion", "kind"):
                continue
            if meta_root and k == "metadata" and isinstance(v[k], dict):
                for mk in [mk for mk in v[k] if mk not in OBJECT_META]:
                    del v[k][mk]
                    out.append(f"{_join(path, k)}.{mk}")
                continue
            if sub is None:
                if not s.preserve_unknown:
                    del v[k]
                    out.append(_join(path, k))
                continue
            if v[k] is None and not sub.nullable and sub.default is NO_DEFAULT and k in s.properties:
                del v[k]
                continue
            v[k] = prune(v[k], sub, _join(path, k), out)
    elif isinstance(v, list) and s.items is not None:
        for i, item in enumerate(v):
            v[i] = prune(item, s.items, f"{path}[{i}]", out)
    return v


def apply_defaults(v: Any, s: Schema) -> Any:
    """Fill absent (or non-nullable null) properties that have a ``default``, top-down (mutates)."""
    if isinstance(v, dict):
        for k, sub in s.properties.items():
            if sub.default is not NO_DEFAULT and (k not in v or (v[k] is None and not sub.nullable)):
                v[k] = copy.deepcopy(sub.default)
        for k in v:
            child = s.properties.get(k) or s.additional
            if child is not None:
                apply_defaults(v[k], child)
    elif isinstance(v, list) and s.items is not None:
        for item in v:
            apply_defaults(item, s.items)
    return v


# -- OpenAPI value validation -----------------------------------------------------------------------


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _type_ok(v: Any, s: Schema) -> bool:
    t = _json_type(v)
    if s.int_or_string:
        return t in ("integer", "string") or (t == "number" and float(v).is_integer())
    if s.type is None or t == s.type:
        return True
    if s.type == "number":
        return t == "integer"
    return s.type == "integer" and t == "number" and float(v).is_integer()


def _format_ok(fmt: str, v: str) -> bool:
    try:
        if fmt == "ipv4":
            ipaddress.IPv4Address(v)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(v)
        elif fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
            return "/" in v
        elif fmt == "uuid":
            uuid.UUID(v)
        elif fmt == "date":
            date.fromisoformat(v)
        elif fmt == "date-time":
            datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
        elif fmt == "byte":
            base64.b64decode(v, validate=True)
        elif fmt == "hostname":
            return (
                bool(
                    re.fullmatch(
                        r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*",
                        v,
                    )
                )
                and len(v) <= 253
            )
    except ValueError:
        return False
    return True  # formats the lab does not check are accepted, as unknown formats are upstream


def _num(v: Any, s: Schema, path: str, errs: list[FieldError]) -> None:
    name = path or "body"
    if s.maximum is not None and (v >= s.maximum if s.exclusive_maximum else v > s.maximum):
        word = "less than" if s.exclusive_maximum else "less than or equal to"
        errs.append(FieldError("Invalid", path, f"{name} in body should be {word} {_g(s.maximum)}", v))
    if s.minimum is not None and (v <= s.minimum if s.exclusive_minimum else v < s.minimum):
        word = "greater than" if s.exclusive_minimum else "greater than or equal to"
        errs.append(FieldError("Invalid", path, f"{name} in body should be {word} {_g(s.minimum)}", v))
    if s.multiple_of and not math.isclose(v / s.multiple_of, round(v / s.multiple_of)):
        errs.append(
            FieldError("Invalid", path, f"{name} in body should be a multiple of {_g(s.multiple_of)}", v)
        )


def _g(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _string(v: str, s: Schema, path: str, errs: list[FieldError]) -> None:
    name = path or "body"
    if s.max_length is not None and len(v) > s.max_length:
        errs.append(FieldError("TooLong", path, f"may not be longer than {s.max_length}", v))
    if s.min_length is not None and len(v) < s.min_length:
        errs.append(
            FieldError("Invalid", path, f"{name} in body should be at least {s.min_length} chars long", v)
        )
    if s.pattern is not None and not s.pattern.search(v):
        errs.append(FieldError("Invalid", path, f"{name} in body should match '{s.pattern.pattern}'", v))
    if s.format and not _format_ok(s.format, v):
        errs.append(FieldError("Invalid", path, f"{name} in body must be of type {s.format}: {_q(v)}", v))


def _q(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array(v: list[Any], s: Schema, path: str, errs: list[FieldError]) -> None:
    name = path or "body"
    if s.max_items is not None and len(v) > s.max_items:
        errs.append(FieldError("TooMany", path, f"must have at most {s.max_items} items", len(v)))
    if s.min_items is not None and len(v) < s.min_items:
        errs.append(
            FieldError("Invalid", path, f"{name} in body should have at least {s.min_items} items", v)
        )
    seen: list[Any] = []
    for i, item in enumerate(v):
        if s.list_type == "set" or (s.list_type == "map" and isinstance(item, dict)):
            key = item if s.list_type == "set" else {k: item.get(k) for k in s.list_map_keys}
            if key in seen:
                errs.append(FieldError("Duplicate", f"{path}[{i}]", "", key))
            seen.append(key)
        if s.items is not None:
            validate(item, s.items, f"{path}[{i}]", errs)


def _object(v: dict[str, Any], s: Schema, path: str, errs: list[FieldError]) -> None:
    name = path or "body"
    for r in s.required:
        if r not in v:
            errs.append(FieldError("Required", _join(path, r)))
    if s.max_properties is not None and len(v) > s.max_properties:
        errs.append(FieldError("TooMany", path, f"must have at most {s.max_properties} items", len(v)))
    if s.min_properties is not None and len(v) < s.min_properties:
        errs.append(
            FieldError(
                "Invalid", path, f"{name} in body should have at least {s.min_properties} properties", v
            )
        )
    for k, item in v.items():
        sub = s.properties.get(k) or s.additional
        if sub is not None:
            validate(item, sub, _join(path, k), errs)


def _combinators(v: Any, s: Schema, path: str, errs: list[FieldError]) -> None:
    name = path or "body"

    def passes(sub: Schema) -> bool:
        probe: list[FieldError] = []
        validate(v, sub, path, probe)
        return not probe

    for sub in s.all_of:
        validate(v, sub, path, errs)
    if s.any_of and not any(passes(x) for x in s.any_of):
        errs.append(
            FieldError("Invalid", path, f"{name} in body must validate at least one schema (anyOf)", v)
        )
    if s.one_of and sum(1 for x in s.one_of if passes(x)) != 1:
        errs.append(
            FieldError("Invalid", path, f"{name} in body must validate one and only one schema (oneOf)", v)
        )
    if s.not_ is not None and passes(s.not_):
        errs.append(FieldError("Invalid", path, f"{name} in body must not validate the schema (not)", v))


def validate(v: Any, s: Schema, path: str = "", errs: list[FieldError] | None = None) -> list[FieldError]:
    """OpenAPI v3 value validation of ``v`` at ``path``; returns (and appends to) ``errs``."""
    out = errs if errs is not None else []
    if v is None and s.nullable:
        return out
    if not _type_ok(v, s):
        want = "integer-or-string" if s.int_or_string else s.type
        detail = f"{path or 'body'} in body must be of type {want}: {_q(_json_type(v))}"
        out.append(FieldError("TypeInvalid", path, detail, _json_type(v)))
        return out
    if s.enum is not None and v not in s.enum:
        shown = ", ".join(_q(x) if isinstance(x, str) else str(x) for x in s.enum)
        out.append(FieldError("NotSupported", path, f"supported values: {shown}", v))
    if isinstance(v, int | float) and not isinstance(v, bool):
        _num(v, s, path, out)
    elif isinstance(v, str):
        _string(v, s, path, out)
    elif isinstance(v, list):
        _array(v, s, path, out)
    elif isinstance(v, dict):
        _object(v, s, path, out)
    _combinators(v, s, path, out)
    return out


# -- CEL rules --------------------------------------------------------------------------------------


def _bind(v: Any, s: Schema | None) -> Any:
    """The CEL value of ``v``: ``number`` fields are doubles even when written as integers."""
    if s is None:
        return v
    if s.type == "number" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dict):
        return {k: _bind(x, s.properties.get(k) or s.additional) for k, x in v.items()}
    if isinstance(v, list):
        return [_bind(x, s.items) for x in v]
    return v


def _rule_path(path: str, field_path: str) -> str:
    if not field_path:
        return path
    return (path + field_path) if path else field_path.lstrip(".")


def run_rules(new: Any, old: Any, s: Schema, path: str, errs: list[FieldError]) -> None:
    """Evaluate every rule below ``s``; ``old`` is ``_MISSING`` on create or for a new element."""
    if new is None:
        return
    for r in s.rules:
        if r.transition and old is _MISSING:
            continue
        env = {"self": _bind(new, s)}
        if r.transition:
            env["oldSelf"] = _bind(old, s)
        shown = s.type or "object"
        try:
            ok = evaluate(r.expr, env)
        except CelEvalError as e:
            errs.append(FieldError("Invalid", path, f"{e} evaluating rule: {r.rule}", shown))
            continue
        if ok is not True:
            errs.append(FieldError(r.reason, _rule_path(path, r.field_path), r.message, shown))
    if isinstance(new, dict):
        olds = old if isinstance(old, dict) else {}
        for k, v in new.items():
            sub = s.properties.get(k) or s.additional
            if sub is not None:
                run_rules(v, olds.get(k, _MISSING), sub, _join(path, k), errs)
    elif isinstance(new, list) and s.items is not None:
        for i, item in enumerate(new):
            run_rules(item, _correlate(item, old, s), s.items, f"{path}[{i}]", errs)


def _correlate(item: Any, old: Any, s: Schema) -> Any:
    """The old element matching ``item`` (by map keys or set value), as upstream transition rules do."""
    if not isinstance(old, list):
        return _MISSING
    if s.list_type == "set":
        return item if item in old else _MISSING
    if s.list_type == "map" and isinstance(item, dict):
        key = {k: item.get(k) for k in s.list_map_keys}
        for o in old:
            if isinstance(o, dict) and {k: o.get(k) for k in s.list_map_keys} == key:
                return o
    return _MISSING


def check_object(obj: dict[str, Any], s: Schema, old: dict[str, Any] | None = None) -> list[FieldError]:
    """Schema then CEL validation of a whole (already pruned and defaulted) object."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    errs = validate(body, s)
    if any(e.type in _BLOCKING for e in errs):
        if any(s_has_rules(s)):
            errs.append(
                FieldError(
                    "Invalid",
                    "<nil>",
                    "some validation rules were not checked because the object was invalid; "
                    "correct the existing errors to complete validation",
                    None,
                )
            )
        return errs
    run_rules(obj, old if old is not None else _MISSING, s, "", errs)
    return errs


def s_has_rules(s: Schema) -> list[bool]:
    """Whether any node carries rules (one element per node with rules)."""
    out = [True] if s.rules else []
    for sub in (*s.properties.values(), s.items, s.additional):
        if sub is not None:
            out.extend(s_has_rules(sub))
    return out
