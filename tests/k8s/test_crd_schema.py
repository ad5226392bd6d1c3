"""The lab API server's structural-schema validator, CEL evaluator and patch functions on their own (no
HTTP): what kube-apiserver does to a custom resource body, checked field by field."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpsvc.lab.cel import CelError, parse
from bgpsvc.lab.celeval import INT_MAX, INT_MIN, CelEvalError, evaluate
from bgpsvc.lab.patch import PatchError, json_patch, merge_patch
from bgpsvc.lab.schema import Schema, parse_schema
from bgpsvc.lab.validation import apply_defaults, check_object, prune

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["peers"],
            "properties": {
                "peers": {
                    "type": "array",
                    "minItems": 1,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["address"],
                    "items": {
                        "type": "object",
                        "required": ["address"],
                        "properties": {
                            "address": {"type": "string", "format": "ipv4"},
                            "port": {"type": "integer", "default": 179, "maximum": 65535},
                            "password": {"type": "string", "nullable": True},
                        },
                        "x-kubernetes-validations": [
                            {"rule": "self.port == oldSelf.port", "message": "port is immutable"}
                        ],
                    },
                },
                "communities": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "pattern": "^[0-9]+:[0-9]+$"},
                },
                "ttl": {"x-kubernetes-int-or-string": True},
                "weight": {"type": "number", "multipleOf": 0.5},
                "prefix": {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "cidr"}]},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    },
}


def schema() -> Schema:
    s, errs = parse_schema(SCHEMA, "schema")
    assert errs == []
    return s


def admit(
    obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(the object after pruning and defaults, the pruned paths, the errors) as the server would."""
    s, out, unknown = schema(), copy.deepcopy(obj), []
    prune(out, s, "", unknown, root=True)
    apply_defaults(out, s)
    return out, unknown, [str(e) for e in check_object(out, s, old)]


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}


def test_prune_and_defaults() -> None:
    body = obj(
        peers=[{"address": "192.0.2.1", "junk": 1, "password": None}], extra={"any": {"thing": 1}}, bogus=2
    )
    body["metadata"]["nonsense"] = True
    out, unknown, errs = admit(body)
    assert errs == []
    assert sorted(unknown) == ["metadata.nonsense", "spec.bogus", "spec.peers[0].junk"]
    assert out["spec"]["peers"] == [{"address": "192.0.2.1", "port": 179, "password": None}]  # nullable kept
    assert out["spec"]["extra"] == {"any": {"thing": 1}}  # preserved


def test_value_errors_name_their_paths() -> None:
    _, _, errs = admit(
        obj(
            peers=[{"address": "192.0.2.300", "port": 70000}, {"address": "192.0.2.300"}],
            communities={"a": "65000:1", "b": "no"},
            ttl=1.5,
            weight=0.7,
            prefix="nope",
        )
    )
    assert sorted(errs) == [
        '<nil>: Invalid value: "null": some validation rules were not checked because the object was '
        "invalid; correct the existing errors to complete validation",
        'spec.communities.b: Invalid value: "no": '
        "spec.communities.b in body should match '^[0-9]+:[0-9]+$'",
        'spec.peers[0].address: Invalid value: "192.0.2.300": spec.peers[0].address in body must be of type '
        'ipv4: "192.0.2.300"',
        "spec.peers[0].port: Invalid value: 70000: "
        "spec.peers[0].port in body should be less than or equal to 65535",
        'spec.peers[1].address: Invalid value: "192.0.2.300": spec.peers[1].address in body must be of type '
        'ipv4: "192.0.2.300"',
        'spec.peers[1]: Duplicate value: {"address":"192.0.2.300"}',
        'spec.prefix: Invalid value: "nope": '
        "spec.prefix in body must validate one and only one schema (oneOf)",
        'spec.ttl: Invalid value: "number": spec.ttl in body must be of type integer-or-string: "number"',
        "spec.weight: Invalid value: 0.7: spec.weight in body should be a multiple of 0.5",
    ]
    _, _, errs = admit(obj(peers=[]))
    assert errs == ["spec.peers: Invalid value: []: spec.peers in body should have at least 1 items"]
    _, _, errs = admit(obj())
    assert errs[0] == "spec.peers: Required value"
    _, _, errs = admit(obj(peers=[{"address": "192.0.2.1"}], prefix="192.0.2.0/24", ttl="1s", weight=2))
    assert errs == []


def test_transition_rules_correlate_list_map_items_by_key() -> None:
    old, _, _ = admit(obj(peers=[{"address": "192.0.2.1", "port": 179}]))
    new = obj(peers=[{"address": "192.0.2.2", "port": 1000}, {"address": "192.0.2.1", "port": 180}])
    _, _, errs = admit(new, old)
    # Only the element that existed before (same key) is checked; the new one has no oldSelf.
    assert errs == ['spec.peers[1]: Invalid value: "object": port is immutable']
    _, _, errs = admit(new)  # on create no transition rule runs
    assert errs == []


def test_schema_registration_errors() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"type": "array"},
            "b": {"type": "strin"},
            "c": {
                "type": "object",
                "properties": {"x": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
            "d": {"$ref": "#/definitions/x"},
            "e": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 1u"}]},
        },
    }
    _, errs = parse_schema(bad, "s")
    assert [str(e) for e in errs] == [
        "s.properties[a].items: Required value: must be specified",
        's.properties[b].type: Unsupported value: "strin": supported values: object, array, string, integer, '
        "number, boolean",
        "s.properties[c].additionalProperties: Forbidden: "
        "additionalProperties and properties are mutual exclusive",
        "s.properties[d].$ref: Forbidden: must not be set (not allowed in structural schemas)",
        "s.properties[d].type: Required value: must not be empty for specified object fields",
    ]
    _, errs = parse_schema(
        {k: v for k, v in bad.items() if k != "properties"} | {"properties": {"e": bad["properties"]["e"]}},
        "s",
    )
    assert len(errs) == 1 and "uint literal 1u is not supported" in str(errs[0])


# -- CEL ----------------------------------------------------------------------------------------------

CASES = [
    ("self.a + 1 == 3 && self.b.startsWith('x')", {"a": 2, "b": "xy"}, True),
    ("has(self.c) ? self.c : 'none'", {}, "none"),
    ("self.l.exists_one(x, x > 2)", {"l": [1, 2, 3]}, True),
    ("self.l.filter(x, x % 2 == 1).map(x, x * 10)", {"l": [1, 2, 3]}, [10, 30]),
    ("self.m.all(k, self.m[k] > 0)", {"m": {"a": 1, "b": 2}}, True),
    ("'b' in self.m && !('z' in self.m)", {"m": {"a": 1, "b": 2}}, True),
    ("size(self.s) == 3 && self.s.size() == 3", {"s": "héé"}, True),
    ("self.s.matches('^[a-z]+$') && self.s.upperAscii() == 'ABC'", {"s": "abc"}, True),
    ("int('12') + int(2.9) == 14 && string(7) == '7' && double(1) == 1.0", {}, True),
    ("1 == 1.0 && 2 > 1.5 && !(1 == true) && [1, 'a'] != [1, 'b']", {}, True),
    ("ip(self.a).family() == 6 && cidr('2001:db8::/32').containsIP(self.a)", {"a": "2001:db8::1"}, True),
    ("cidr(self.c).prefixLength() == 24 && isCIDR(self.c) && !isIP(self.c)", {"c": "198.51.100.0/24"}, True),
    ("self.x > 1 || true", {}, True),  # || absorbs an error when the other side is true
    ("false && self.x > 1", {}, False),
    ("[3, 1, 2].isSorted() || [1, 2].sum() == 3", {}, True),
    ("'a,b'.split(',').join('-') == 'a-b' && ' x '.trim() == 'x'", {}, True),
]


@pytest.mark.parametrize(("rule", "self", "want"), CASES)
def test_cel_evaluates(rule: str, self: dict[str, Any], want: Any) -> None:
    assert evaluate(parse(rule), {"self": self}) == want


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("self.x > 1", "no such key: x"),
        ("self.a + 1.0", "no such overload"),
        ("1 / 0", "division by zero"),
        ("9223372036854775807 + 1", "integer overflow"),
        ("self.l[5]", "index out of bounds"),
        ("'a' < 1", "no such overload"),
        ("ip('300.1.1.1').family()", "no such overload"),
    ],
)
def test_cel_runtime_errors(rule: str, message: str) -> None:
    with pytest.raises(CelEvalError, match=message):
        evaluate(parse(rule), {"self": {"a": 1, "l": [1]}})


@pytest.mark.parametrize(
    "rule",
    [
        "self.a >",
        "1u == 1",
        "b'x' == self",
        "self.?a",
        "Msg{a: 1}",
        "self.a.frob()",
        "now()",
        "a +* b",
        "self.all(1, true)",
    ],
)
def test_cel_rejects_what_it_cannot_evaluate(rule: str) -> None:
    with pytest.raises(CelError):
        parse(rule)


@given(st.text(max_size=40))
def test_cel_parse_never_raises_anything_but_cel_error(text: str) -> None:
    with contextlib.suppress(CelError):
        parse(text)


@given(st.integers(INT_MIN, INT_MAX), st.integers(INT_MIN, INT_MAX).filter(bool))
def test_cel_int_division_truncates_as_go(a: int, b: int) -> None:
    try:
        q = evaluate(parse(f"{a} / {b}"), {})
    except CelEvalError:
        assert (a, b) == (INT_MIN, -1)  # the one overflow
        return
    r = evaluate(parse(f"{a} % {b}"), {})
    assert q * b + r == a and abs(r) < abs(b) and (r == 0 or (r > 0) == (a > 0))


# -- patches ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)
json_docs = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(json_docs, json_docs)
def test_merge_patch_is_idempotent(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge_patch(doc, patch)
    assert merge_patch(once, patch) == once
    assert merge_patch(doc, {}) == doc


def test_merge_patch_rfc7386_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "phoneNumber": "+01-123-456-7890",
    }


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "remove", "path": "/c"},
            {"op": "copy", "from": "/a/b", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e~1f"},
            {"op": "replace", "path": "/a/b/1", "value": 9},
            {"op": "test", "path": "/e~1f/3", "value": 3},
        ],
    )
    assert out == {"a": {"b": [0, 9, 2, 3]}, "e/f": [0, 1, 2, 3]}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # not mutated
    for bad in (
        [{"op": "test", "path": "/c", "value": "y"}],
        [{"op": "remove", "path": "/zz"}],
        [{"op": "nope", "path": ""}],
    ):
        with pytest.raises(PatchError):
            json_patch(doc, bad)
