"""Compile-time checks of CEL rules, run when a CRD is registered: every identifier is declared (``self``,
``oldSelf`` or a macro variable) and every field a rule selects below ``self`` exists in the schema (what
cel-go's type checker reports as "undefined field"), so a typo fails registration, not a later write."""

from __future__ import annotations

from collections.abc import Callable

from bgpsvc.lab.cel import (
    ROOTS,
    Binary,
    Call,
    CelError,
    Cond,
    Expr,
    Ident,
    Index,
    ListLit,
    Macro,
    MapLit,
    Select,
    Unary,
)


def walk(e: Expr, visit: Callable[[Expr, frozenset[str]], None], scope: frozenset[str] = ROOTS) -> None:
    """Call ``visit(node, names in scope)`` on every node, depth first."""
    visit(e, scope)
    match e:
        case Select(operand=o) | Unary(operand=o):
            walk(o, visit, scope)
        case Index(operand=o, index=i):
            walk(o, visit, scope)
            walk(i, visit, scope)
        case Call(target=t, args=args):
            for a in (t, *args) if t is not None else args:
                walk(a, visit, scope)
        case ListLit(items=items):
            for a in items:
                walk(a, visit, scope)
        case MapLit(entries=entries):
            for k, v in entries:
                walk(k, visit, scope)
                walk(v, visit, scope)
        case Binary(left=a, right=b):
            walk(a, visit, scope)
            walk(b, visit, scope)
        case Cond(test=a, then=b, other=c):
            for x in (a, b, c):
                walk(x, visit, scope)
        case Macro(target=t, var=var, args=args):
            walk(t, visit, scope)
            for a in args:
                walk(a, visit, scope | {var})


def uses_old_self(e: Expr) -> bool:
    """Whether the rule refers to ``oldSelf`` (a transition rule, evaluated on updates only)."""
    found: list[bool] = []
    walk(e, lambda n, _s: found.append(isinstance(n, Ident) and n.name == "oldSelf"))
    return any(found)


def check_identifiers(e: Expr) -> None:
    """Every identifier is ``self``, ``oldSelf`` or a macro variable in scope; raises ``CelError``."""

    def visit(n: Expr, scope: frozenset[str]) -> None:
        if isinstance(n, Ident) and n.name not in scope:
            raise CelError(f"undeclared reference to '{n.name}'")

    walk(e, visit)


def check_fields(e: Expr, fields_at: Callable[[tuple[str, ...]], frozenset[str] | None]) -> None:
    """Reject selections of fields the schema does not declare (cel-go's type check: "undefined field").

    ``fields_at(path)`` names the properties of the object at a path below ``self`` (``"[]"`` steps into
    list items or map values), or None when it is not a closed object (unknown fields are kept, or the
    path leaves the schema)."""

    def path_of(n: Expr) -> tuple[str, ...] | None:
        match n:
            case Ident(name="self" | "oldSelf"):
                return ()
            case Select(operand=o, field=f, test_only=False):
                p = path_of(o)
                return None if p is None else (*p, f)
            case Index(operand=o):
                p = path_of(o)
                return None if p is None else (*p, "[]")
        return None

    def visit(n: Expr, scope: frozenset[str]) -> None:
        if not isinstance(n, Select):
            return
        p = path_of(n.operand)
        if p is None:
            return
        known = fields_at(p)
        if known is not None and n.field not in known:
            raise CelError(f"undefined field '{n.field}'")

    walk(e, visit)
