"""Evaluation of the CEL subset parsed by ``bgpsvc.lab.cel`` (cel-spec ``doc/langdef.md``: heterogeneous
numeric equality and ordering as Kubernetes enables them, commutative ``&&``/``||`` over errors, int64
overflow and division errors), plus Kubernetes' ``ip``/``cidr`` library functions (KEP-1955 / k8s.io
apiserver ``pkg/cel/library``). Errors raise ``CelEvalError``, which the validator reports on the field.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bgpsvc.lab.cel import (
    Binary,
    Call,
    Cond,
    Expr,
    Ident,
    Index,
    ListLit,
    Lit,
    Macro,
    MapLit,
    Select,
    Unary,
)

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class CelEvalError(Exception):
    """A runtime error (no such key, no matching overload, overflow ...)."""


@dataclass(frozen=True, slots=True)
class IP:
    """A ``net.IP`` value (``ip("192.0.2.1")``)."""

    addr: ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CIDR:
    """A ``net.IPPrefix`` value (``cidr("192.0.2.0/24")``); keeps the address as written."""

    addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    net: ipaddress.IPv4Network | ipaddress.IPv6Network


def kind(v: Any) -> str:
    """The CEL type name of a value."""
    if v is None:
        return "null_type"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, IP):
        return "net.IP"
    if isinstance(v, CIDR):
        return "net.CIDR"
    return type(v).__name__


def _num(v: Any) -> bool:
    return kind(v) in ("int", "double")


def _no_overload(op: str, *vals: Any) -> CelEvalError:
    return CelEvalError(f"no such overload: {op}({', '.join(kind(v) for v in vals)})")


def _int(v: int) -> int:
    if not INT_MIN <= v <= INT_MAX:
        raise CelEvalError("integer overflow")
    return v


def equal(a: Any, b: Any) -> bool:
    """CEL equality: numbers by value across int/double, other types never equal each other."""
    ka, kb = kind(a), kind(b)
    if _num(a) and _num(b):
        return bool(a == b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if not ((_num(a) and _num(b)) or (kind(a) == kind(b) and kind(a) in ("string", "bool"))):
        raise _no_overload(op, a, b)
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _arith(op: str, a: Any, b: Any) -> Any:
    ka, kb = kind(a), kind(b)
    if ka != kb or ka not in ("int", "double", "string", "list") or (ka in ("string", "list") and op != "+"):
        raise _no_overload(op, a, b)
    if op == "+":
        return _int(a + b) if ka == "int" else list(a) + list(b) if ka == "list" else a + b
    if op == "-":
        return _int(a - b) if ka == "int" else a - b
    if op == "*":
        return _int(a * b) if ka == "int" else a * b
    if ka == "double":
        if op == "%":
            raise _no_overload(op, a, b)
        return a / b if b else (float("nan") if a == 0 else float("inf") if a > 0 else float("-inf"))
    if b == 0:
        raise CelEvalError("division by zero" if op == "/" else "modulus by zero")
    q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # truncated division, as Go
    return _int(q) if op == "/" else a - b * q


def _logic(op: str, e: Binary, env: Mapping[str, Any]) -> bool:
    # CEL's && and || are commutative over errors: false && error == false, error || true == true.
    short = op == "||"
    err: CelEvalError | None = None
    for side in (e.left, e.right):
        try:
            v = evaluate(side, env)
        except CelEvalError as x:
            err = err or x
            continue
        if not isinstance(v, bool):
            err = err or _no_overload(op, v)
            continue
        if v is short:
            return short
    if err is not None:
        raise err
    return not short


def _select(obj: Any, name: str, test_only: bool) -> Any:
    if not isinstance(obj, dict):
        raise CelEvalError(f"no such key: {name}" if obj is None else f"type {kind(obj)} has no field {name}")
    if test_only:
        return name in obj
    if name not in obj:
        raise CelEvalError(f"no such key: {name}")
    return obj[name]


def _index(obj: Any, idx: Any) -> Any:
    if isinstance(obj, list | tuple):
        if kind(idx) != "int" and not (kind(idx) == "double" and float(idx).is_integer()):
            raise _no_overload("_[_]", obj, idx)
        if not 0 <= int(idx) < len(obj):
            raise CelEvalError(f"index out of bounds: {idx}")
        return obj[int(idx)]
    if isinstance(obj, dict):
        if idx not in obj:
            raise CelEvalError(f"no such key: {idx}")
        return obj[idx]
    raise _no_overload("_[_]", obj, idx)


def _macro(e: Macro, env: Mapping[str, Any]) -> Any:
    target = evaluate(e.target, env)
    if not isinstance(target, list | tuple | dict):
        raise _no_overload(e.name, target)
    items = list(target)  # a map iterates over its keys

    def run(expr: Expr, item: Any) -> Any:
        return evaluate(expr, {**env, e.var: item})

    def pred(item: Any) -> bool:
        v = run(e.args[0], item)
        if not isinstance(v, bool):
            raise _no_overload(e.name, v)
        return v

    if e.name == "map":
        keep = items if len(e.args) == 1 else [i for i in items if pred(i)]
        return [run(e.args[-1], i) for i in keep]
    if e.name == "filter":
        return [i for i in items if pred(i)]
    if e.name == "exists_one":
        return sum(1 for i in items if pred(i)) == 1
    want = e.name == "exists"  # all: stop at the first false; exists: at the first true
    err: CelEvalError | None = None
    for i in items:
        try:
            if pred(i) is want:
                return want
        except CelEvalError as x:
            err = err or x
    if err is not None:
        raise err
    return not want


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """Evaluate an expression with the given variables; raises ``CelEvalError``."""
    match e:
        case Lit(value=v):
            return v
        case Ident(name=name):
            if name not in env:
                raise CelEvalError(f"no such attribute: {name}")
            return env[name]
        case Select(operand=o, field=f, test_only=t):
            return _select(evaluate(o, env), f, t)
        case Index(operand=o, index=i):
            return _index(evaluate(o, env), evaluate(i, env))
        case Unary(op="!", operand=o):
            v = evaluate(o, env)
            if not isinstance(v, bool):
                raise _no_overload("!_", v)
            return not v
        case Unary(operand=o):
            v = evaluate(o, env)
            if not _num(v):
                raise _no_overload("-_", v)
            return _int(-v) if isinstance(v, int) else -v
        case Binary(op="&&" | "||" as op):
            return _logic(op, e, env)
        case Binary(op=op, left=a, right=b):
            return _binary(op, evaluate(a, env), evaluate(b, env))
        case Cond(test=t, then=a, other=b):
            c = evaluate(t, env)
            if not isinstance(c, bool):
                raise _no_overload("_?_:_", c)
            return evaluate(a if c else b, env)
        case ListLit(items=items):
            return [evaluate(i, env) for i in items]
        case MapLit(entries=entries):
            return {evaluate(k, env): evaluate(v, env) for k, v in entries}
        case Macro():
            return _macro(e, env)
        case Call(function=fn, target=None, args=args):
            return _call(FUNCS, fn, [evaluate(a, env) for a in args])
        case Call(function=fn, target=t, args=args):
            assert t is not None
            return _call(METHS, fn, [evaluate(t, env), *(evaluate(a, env) for a in args)])
    raise CelEvalError(f"unsupported expression {e!r}")


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return equal(a, b)
    if op == "!=":
        return not equal(a, b)
    if op == "in":
        if isinstance(b, list | tuple):
            return any(equal(a, x) for x in b)
        if isinstance(b, dict):
            return any(equal(a, k) for k in b)
        raise _no_overload("@in", a, b)
    if op in ("<", "<=", ">", ">="):
        return _compare(op, a, b)
    return _arith(op, a, b)


def _call(table: Mapping[str, Callable[..., Any]], name: str, args: list[Any]) -> Any:
    try:
        return table[name](*args)
    except CelEvalError:
        raise
    except (TypeError, ValueError, AttributeError, re.error) as x:
        raise CelEvalError(f"no such overload: {name}({', '.join(kind(a) for a in args)}): {x}") from None


def _need(v: Any, *kinds: str) -> Any:
    if kind(v) not in kinds:
        raise TypeError(f"want {'/'.join(kinds)}")
    return v


def _size(v: Any) -> int:
    return len(_need(v, "string", "list", "map"))


def _to_int(v: Any) -> int:
    if kind(v) == "string":
        return _int(int(v, 10))
    if kind(v) == "double":
        if math.isnan(v) or not INT_MIN <= v <= INT_MAX:
            raise CelEvalError("double out of int range")
        return int(v)
    return int(_need(v, "int"))


def _to_string(v: Any) -> str:
    k = kind(v)
    if k == "bool":
        return "true" if v else "false"
    if k == "net.IP":
        return str(v.addr)
    if k == "net.CIDR":
        return f"{v.addr}/{v.net.prefixlen}"
    return str(_need(v, "string", "int", "double"))


def _to_bool(v: Any) -> bool:
    if kind(v) == "string" and v in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"):
        return v in ("true", "1", "t", "TRUE", "True")
    return bool(_need(v, "bool"))


def _parse_ip(s: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # As the Kubernetes library: no zones, no IPv4-mapped IPv6 addresses.
    addr = ipaddress.ip_address(_need(s, "string"))
    if isinstance(addr, ipaddress.IPv6Address) and (addr.scope_id or addr.ipv4_mapped):
        raise ValueError("IPv4-mapped IPv6 addresses and zones are not allowed")
    return addr


def _parse_cidr(s: Any) -> CIDR:
    addr, _, bits = _need(s, "string").partition("/")
    if not bits.isdigit():
        raise ValueError(f"invalid CIDR {s!r}")
    ip = _parse_ip(addr)
    return CIDR(ip, ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _ok(f: Callable[[Any], Any], v: Any) -> bool:
    try:
        f(v)
    except ValueError:
        return False
    return True


def _contains_ip(c: CIDR, other: Any) -> bool:
    addr = other.addr if isinstance(other, IP) else _parse_ip(other)
    return addr.version == c.net.version and addr in c.net


def _contains_cidr(c: CIDR, other: Any) -> bool:
    o = other if isinstance(other, CIDR) else _parse_cidr(other)
    return o.net.version == c.net.version and o.net.subnet_of(c.net)  # type: ignore[arg-type]


def _str_list(v: Any) -> list[str]:
    return [_need(x, "string") for x in _need(v, "list")]


FUNCS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "int": _to_int,
    "double": lambda v: float(_need(v, "int", "double", "string")),
    "string": _to_string,
    "bool": _to_bool,
    "matches": lambda s, p: re.search(_need(p, "string"), _need(s, "string")) is not None,
    "isIP": lambda s: _ok(_parse_ip, _need(s, "string")),
    "isCIDR": lambda s: _ok(_parse_cidr, _need(s, "string")),
    "ip": lambda s: IP(_parse_ip(s)),
    "cidr": _parse_cidr,
}
METHS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "contains": lambda s, x: _need(x, "string") in _need(s, "string"),
    "startsWith": lambda s, x: _need(s, "string").startswith(_need(x, "string")),
    "endsWith": lambda s, x: _need(s, "string").endswith(_need(x, "string")),
    "matches": lambda s, p: re.search(_need(p, "string"), _need(s, "string")) is not None,
    "lowerAscii": lambda s: "".join(c.lower() if c.isascii() else c for c in _need(s, "string")),
    "upperAscii": lambda s: "".join(c.upper() if c.isascii() else c for c in _need(s, "string")),
    "trim": lambda s: _need(s, "string").strip(),
    "join": lambda v, sep="": _need(sep, "string").join(_str_list(v)),
    "split": lambda s, sep: _need(s, "string").split(_need(sep, "string")),
    "indexOf": lambda v, x: (
        _need(v, "string").find(_need(x, "string"))
        if kind(v) == "string"
        else next((i for i, y in enumerate(_need(v, "list")) if equal(x, y)), -1)
    ),
    "isSorted": lambda v: all(_compare("<=", a, b) for a, b in zip(v, list(v)[1:], strict=False)),
    "sum": lambda v: sum(_need(v, "list"), 0),
    "min": lambda v: min(_need(v, "list")),
    "max": lambda v: max(_need(v, "list")),
    "family": lambda v: _need(v, "net.IP").addr.version,
    "prefixLength": lambda v: _need(v, "net.CIDR").net.prefixlen,
    "containsIP": lambda c, x: _contains_ip(_need(c, "net.CIDR"), x),
    "containsCIDR": lambda c, x: _contains_cidr(_need(c, "net.CIDR"), x),
    "ip": lambda c: IP(_need(c, "net.CIDR").addr),
}
