"""``metav1.LabelSelector`` as custom resources write it: ``matchLabels`` plus ``matchExpressions``.

Semantics of apimachinery ``LabelSelectorAsSelector``: every requirement must hold; ``In``/``NotIn`` take a
non-empty value list, ``Exists``/``DoesNotExist`` none; ``NotIn`` and ``DoesNotExist`` hold for an object
without the label. An empty selector matches everything; an absent one is the caller's choice (bgpsvc:
every node, every Service).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(f"operator: {self.operator!r} is not one of {', '.join(OPERATORS)}")
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: required for operator {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: must be empty for operator {self.operator}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        return value is None

    def __str__(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A label selector; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` is selected."""
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels] + [str(r) for r in self.match_expressions]
        return ",".join(parts) or "(everything)"


def _str_map(value: object, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: expected a map of label keys to values")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def selector_from_dict(value: object, path: str) -> LabelSelector:
    """Parse a LabelSelector; a ``ValueError`` names the field (``spec.nodeSelector.matchExpressions[0]``)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: expected a label selector (matchLabels, matchExpressions)")
    labels = _str_map(value.get("matchLabels") or {}, f"{path}.matchLabels")
    exprs = value.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise ValueError(f"{path}.matchExpressions: expected a list")
    reqs = []
    for i, e in enumerate(exprs):
        where = f"{path}.matchExpressions[{i}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("key"), str):
            raise ValueError(f"{where}: expected {{key, operator, values}}")
        values = e.get("values") or []
        if not isinstance(values, list):
            raise ValueError(f"{where}.values: expected a list")
        try:
            reqs.append(Requirement(e["key"], str(e.get("operator")), tuple(sorted(str(v) for v in values))))
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
    return LabelSelector(labels, tuple(sorted(reqs, key=str)))
