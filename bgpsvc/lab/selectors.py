"""Label and field selectors as kube-apiserver parses and applies them (apimachinery ``labels``, ``fields``).

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k``
(does not exist), ``k>N``/``k<N``, joined by commas (AND). ``!=`` and ``notin`` also match objects that lack
the label, as upstream. Field selectors: ``f=v``, ``f==v``, ``f!=v`` joined by commas, over the fields a
resource supports; anything else is a 400 upstream and a ``SelectorError`` here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_OPS = ("==", "!=", "=", ">", "<")


class SelectorError(ValueError):
    """A selector the API server would reject with 400 Bad Request."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement (upstream ``Requirement.Matches``)."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            have, want = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == ">" else have < want


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value):
        raise SelectorError(f"invalid label value: {value!r}")
    return value


_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector string; empty means everything."""
    if not text or not text.strip():
        return ()
    reqs = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: empty requirement in {text!r}")
        m = _SET_RE.match(part)
        if m:
            values = tuple(_check_value(v.strip()) for v in m.group(3).split(","))
            if m.group(3).strip() == "":
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty: {part!r}")
            reqs.append(Requirement(_check_key(m.group(1)), m.group(2), values))
            continue
        if part.startswith("!"):
            reqs.append(Requirement(_check_key(part[1:].strip()), "!"))
            continue
        for op in _OPS:
            idx = part.find(op)
            if idx > 0:
                key, value = part[:idx].strip(), part[idx + len(op) :].strip()
                norm = "=" if op == "==" else op
                if norm in (">", "<") and not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {part!r}")
                reqs.append(Requirement(_check_key(key), norm, (_check_value(value),)))
                break
        else:
            reqs.append(Requirement(_check_key(part), "exists"))
    return tuple(reqs)


def labels_match(reqs: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """All requirements hold (an empty selector matches everything)."""
    return all(r.matches(labels) for r in reqs)


#: Field selectors each resource supports, beyond ``metadata.name`` and ``metadata.namespace``; values are
#: getters over the object JSON.
FieldGetter = Callable[[Mapping[str, Any]], str]


def _meta_field(name: str) -> FieldGetter:
    return lambda obj: str((obj.get("metadata") or {}).get(name) or "")


def _node_unschedulable(obj: Mapping[str, Any]) -> str:
    return "true" if (obj.get("spec") or {}).get("unschedulable") else "false"


COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _meta_field("name"),
    "metadata.namespace": _meta_field("namespace"),
}
EXTRA_FIELDS: dict[str, dict[str, FieldGetter]] = {
    "nodes": {"spec.unschedulable": _node_unschedulable},
}


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field = value`` or ``field != value``."""

    field: str
    negate: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object satisfies this requirement."""
        return (self.getter(obj) == self.value) != self.negate


def parse_field_selector(text: str | None, resource: str) -> tuple[FieldRequirement, ...]:
    """Parse a field selector for ``resource`` (plural); unsupported fields raise, as upstream."""
    if not text or not text.strip():
        return ()
    fields = {**COMMON_FIELDS, **EXTRA_FIELDS.get(resource, {})}
    reqs = []
    for raw in text.split(","):
        part = raw.strip()
        for op in ("!=", "==", "="):
            idx = part.find(op)
            if idx > 0:
                name, value = part[:idx].strip(), part[idx + len(op) :].strip()
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        getter = fields.get(name)
        if getter is None:
            raise SelectorError(f"field label not supported: {name}")
        reqs.append(FieldRequirement(name, op == "!=", value, getter))
    return tuple(reqs)


def fields_match(reqs: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    """All field requirements hold."""
    return all(r.matches(obj) for r in reqs)
