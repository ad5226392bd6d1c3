"""Structural OpenAPI v3 schemas of CustomResourceDefinitions (apiextensions ``JSONSchemaProps``), parsed
and checked at registration ("Specifying a structural schema" in the CRD docs): every node has a type
(unless ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``), arrays have one
``items`` schema, ``properties`` and ``additionalProperties`` exclude each other, the non-structural
keywords (``$ref``, ``patternProperties``, ``dependencies``, ``uniqueItems: true`` ...) are refused, and
every ``x-kubernetes-validations`` rule compiles. Keywords the lab does not know are refused too, so a
typo in a test CRD fails loudly instead of silently validating nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bgpsvc.lab.cel import CelError, Expr, parse
from bgpsvc.lab.celcheck import check_fields, check_identifiers, uses_old_self
from bgpsvc.lab.fielderrors import REASONS, FieldError

NO_DEFAULT: Any = object()
TYPES = ("object", "array", "string", "integer", "number", "boolean")
_KNOWN = frozenset(
    """type format description title default maximum exclusiveMaximum minimum exclusiveMinimum maxLength
    minLength pattern maxItems minItems multipleOf enum maxProperties minProperties required items allOf
    oneOf anyOf not properties additionalProperties example externalDocs nullable uniqueItems
    x-kubernetes-preserve-unknown-fields x-kubernetes-embedded-resource x-kubernetes-int-or-string
    x-kubernetes-list-map-keys x-kubernetes-list-type x-kubernetes-map-type
    x-kubernetes-validations""".split()  # noqa: SIM905
)
_NON_STRUCTURAL = (
    "$ref",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "id",
    "$schema",
)
_RULE_KEYS = frozenset({"rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"})
_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled ``x-kubernetes-validations`` entry."""

    rule: str
    expr: Expr
    message: str
    reason: str  # a fielderrors type name
    field_path: str  # appended to the schema node's path
    transition: bool  # refers to oldSelf: evaluated only on updates, when an old value exists


@dataclass(frozen=True, slots=True)
class Schema:
    """One structural schema node."""

    type: str | None = None
    properties: Mapping[str, Schema] = field(default_factory=dict)
    additional: Schema | None = None  # additionalProperties schema (a map)
    items: Schema | None = None
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    default: Any = NO_DEFAULT
    nullable: bool = False
    preserve_unknown: bool = False
    int_or_string: bool = False
    embedded: bool = False
    format: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_properties: int | None = None
    max_properties: int | None = None
    all_of: tuple[Schema, ...] = ()
    any_of: tuple[Schema, ...] = ()
    one_of: tuple[Schema, ...] = ()
    not_: Schema | None = None
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    def child(self, step: str) -> Schema | None:
        """The schema of a property, or of items/map values for ``"[]"``."""
        if step == "[]":
            return self.items or self.additional
        return self.properties.get(step)

    def closed_fields(self, root: bool = False) -> frozenset[str] | None:
        """Property names when unknown fields are pruned, else None (CEL "undefined field" check)."""
        if self.type != "object" or self.preserve_unknown or self.additional is not None:
            return None
        names = frozenset(self.properties)
        return names | _ROOT_FIELDS if root or self.embedded else names


class _Parser:
    """Builds ``Schema`` trees, collecting registration errors (field paths as the real server names them)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def err(self, path: str, detail: str, value: Any = None, type_: str = "Invalid") -> None:
        if type_ in ("Required", "Forbidden"):
            self.errors.append(FieldError(type_, path, detail))
        else:
            self.errors.append(FieldError(type_, path, detail, value))

    def node(self, raw: Any, path: str, nested: bool = False) -> Schema:
        if not isinstance(raw, Mapping):
            self.err(path, "must be an object", raw)
            return Schema()
        for k in raw:
            if k in _NON_STRUCTURAL:
                self.err(
                    f"{path}.{k}", "must not be set (not allowed in structural schemas)", type_="Forbidden"
                )
            elif k not in _KNOWN:
                self.err(f"{path}.{k}", "unknown schema keyword (not supported by the lab apiserver)", k)
        if raw.get("uniqueItems") is True:
            self.err(f"{path}.uniqueItems", "uniqueItems cannot be set to true", type_="Forbidden")
        props = self.props(raw, path)
        items = self.node(raw["items"], f"{path}.items") if "items" in raw else None
        additional = self.additional(raw, path, bool(props))
        typ = raw.get("type")
        preserve = raw.get("x-kubernetes-preserve-unknown-fields") is True
        int_or_string = raw.get("x-kubernetes-int-or-string") is True
        if typ is not None and typ not in TYPES:
            self.err(f"{path}.type", f"supported values: {', '.join(TYPES)}", typ, "NotSupported")
        if not nested and typ is None and not int_or_string and not preserve:
            self.err(f"{path}.type", "must not be empty for specified object fields", type_="Required")
        if typ == "array" and items is None and not nested:
            self.err(f"{path}.items", "must be specified", type_="Required")
        pattern = self.pattern(raw, path)
        s = Schema(
            type=typ,
            properties=props,
            additional=additional,
            items=items,
            required=tuple(raw.get("required") or ()),
            enum=tuple(raw["enum"]) if "enum" in raw else None,
            default=raw.get("default", NO_DEFAULT),
            nullable=raw.get("nullable") is True,
            preserve_unknown=preserve,
            int_or_string=int_or_string,
            embedded=raw.get("x-kubernetes-embedded-resource") is True,
            format=str(raw.get("format") or ""),
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
            exclusive_minimum=raw.get("exclusiveMinimum") is True,
            exclusive_maximum=raw.get("exclusiveMaximum") is True,
            multiple_of=raw.get("multipleOf"),
            min_length=raw.get("minLength"),
            max_length=raw.get("maxLength"),
            pattern=pattern,
            min_items=raw.get("minItems"),
            max_items=raw.get("maxItems"),
            min_properties=raw.get("minProperties"),
            max_properties=raw.get("maxProperties"),
            all_of=self.many(raw, "allOf", path),
            any_of=self.many(raw, "anyOf", path),
            one_of=self.many(raw, "oneOf", path),
            not_=self.node(raw["not"], f"{path}.not", nested=True) if "not" in raw else None,
            list_type=str(raw.get("x-kubernetes-list-type") or ""),
            list_map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
        )
        return s

    def props(self, raw: Mapping[str, Any], path: str) -> dict[str, Schema]:
        props = raw.get("properties") or {}
        if not isinstance(props, Mapping):
            self.err(f"{path}.properties", "must be an object", props)
            return {}
        return {k: self.node(v, f"{path}.properties[{k}]") for k, v in props.items()}

    def additional(self, raw: Mapping[str, Any], path: str, has_props: bool) -> Schema | None:
        if "additionalProperties" not in raw:
            return None
        ap = raw["additionalProperties"]
        if ap is False or (ap is not True and has_props):
            self.err(
                f"{path}.additionalProperties",
                "additionalProperties and properties are mutual exclusive"
                if has_props
                else "additionalProperties: false is not allowed in structural schemas",
                type_="Forbidden",
            )
            return None
        return self.node(ap, f"{path}.additionalProperties") if isinstance(ap, Mapping) else None

    def many(self, raw: Mapping[str, Any], key: str, path: str) -> tuple[Schema, ...]:
        return tuple(
            self.node(s, f"{path}.{key}[{i}]", nested=True) for i, s in enumerate(raw.get(key) or ())
        )

    def pattern(self, raw: Mapping[str, Any], path: str) -> re.Pattern[str] | None:
        if "pattern" not in raw:
            return None
        try:
            return re.compile(str(raw["pattern"]))
        except re.error as e:
            self.err(f"{path}.pattern", f"must be a valid regular expression: {e}", raw["pattern"])
            return None


def _compile_rule(raw: Any, node: Schema, root: bool, path: str, p: _Parser) -> Rule | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rule"), str):
        p.err(f"{path}.rule", "", type_="Required")
        return None
    for k in raw:
        if k not in _RULE_KEYS:
            p.err(f"{path}.{k}", "unknown field", k)
    if "messageExpression" in raw:
        p.err(
            f"{path}.messageExpression",
            "not supported by the lab apiserver's CEL evaluator",
            type_="Forbidden",
        )
    reason = str(raw.get("reason") or "FieldValueInvalid")
    if reason not in (
        "FieldValueInvalid",
        "FieldValueForbidden",
        "FieldValueRequired",
        "FieldValueDuplicate",
    ):
        p.err(f"{path}.reason", "", reason, "NotSupported")
    rule = raw["rule"]

    def fields_at(steps: tuple[str, ...]) -> frozenset[str] | None:
        cur: Schema | None = node
        for step in steps:
            if cur is None or (root and cur is node and step == "metadata"):
                return None
            cur = cur.child(step)
        return cur.closed_fields(root=root and cur is node) if cur is not None else None

    try:
        expr = parse(rule)
        check_identifiers(expr)
        check_fields(expr, fields_at)
    except CelError as e:
        p.err(f"{path}.rule", f"compilation failed: ERROR: <input>:1: {e}", rule)
        return None
    message = str(raw.get("message") or f"failed rule: {rule}")
    return Rule(
        rule,
        expr,
        message,
        REASONS.get(reason, "Invalid"),
        str(raw.get("fieldPath") or ""),
        uses_old_self(expr),
    )


def _attach_rules(raw: Any, node: Schema, path: str, p: _Parser, root: bool = False) -> Schema:
    """Return ``node`` with the compiled rules of ``raw`` and of its children attached."""
    if not isinstance(raw, Mapping):
        return node
    props = dict(node.properties)
    for k, sub in props.items():
        props[k] = _attach_rules((raw.get("properties") or {}).get(k), sub, f"{path}.properties[{k}]", p)
    items = _attach_rules(raw.get("items"), node.items, f"{path}.items", p) if node.items else None
    add = node.additional
    if add is not None:
        add = _attach_rules(raw.get("additionalProperties"), add, f"{path}.additionalProperties", p)
    raw_rules = raw.get("x-kubernetes-validations") or ()
    rules = []
    for i, r in enumerate(raw_rules if isinstance(raw_rules, list) else ()):
        compiled = _compile_rule(r, node, root, f"{path}.x-kubernetes-validations[{i}]", p)
        if compiled is not None:
            rules.append(compiled)
    return replace(node, properties=props, items=items, additional=add, rules=tuple(rules))


def parse_schema(raw: Any, path: str) -> tuple[Schema, list[FieldError]]:
    """A structural schema from ``openAPIV3Schema`` (``path`` names it in errors), and its errors."""
    p = _Parser()
    node = p.node(raw, path)
    if isinstance(raw, Mapping) and raw.get("type") != "object":
        p.err(f"{path}.type", "must be object at the root", raw.get("type"), "NotSupported")
    if not p.errors:
        node = _attach_rules(raw, node, path, p, root=True)
    return node, p.errors
