"""A parser for the subset of CEL (Common Expression Language, cel-spec ``doc/langdef.md``) that CRD
``x-kubernetes-validations`` rules use in the lab API server.

Supported: int/double/string/bool/null literals, lists and maps, ``self``/``oldSelf``, field selection,
indexing, ``has()``, the comprehension macros ``all``/``exists``/``exists_one``/``map``/``filter``, the
operators ``! - * / % + < <= > >= == != in && || ?:``, and the functions listed in ``FUNCTIONS``/
``METHODS`` (a few of Kubernetes' CEL libraries among them). Everything else (uint and bytes literals,
``.?`` optionals, message construction, unknown functions or identifiers) is a ``CelError`` at compile
time, so a rule the lab cannot evaluate fails CRD registration instead of being silently accepted.
Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class CelError(ValueError):
    """A rule outside the supported subset, or malformed."""


# -- AST --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Select:
    operand: Expr
    field: str
    test_only: bool = False  # has(operand.field)


@dataclass(frozen=True, slots=True)
class Index:
    operand: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    target: Expr | None
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class MapLit:
    entries: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Cond:
    test: Expr
    then: Expr
    other: Expr


@dataclass(frozen=True, slots=True)
class Macro:
    """``target.all(var, pred)`` and friends; ``map`` may carry a filter (``args`` of 1 or 2)."""

    name: str
    target: Expr
    var: str
    args: tuple[Expr, ...]


Expr = Lit | Ident | Select | Index | Call | ListLit | MapLit | Unary | Binary | Cond | Macro

#: Global functions and their arities.
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "size": (1,),
    "int": (1,),
    "double": (1,),
    "string": (1,),
    "bool": (1,),
    "matches": (2,),
    "isIP": (1,),
    "isCIDR": (1,),
    "ip": (1,),
    "cidr": (1,),
}
#: Receiver-style functions and their arities (excluding the receiver).
METHODS: dict[str, tuple[int, ...]] = {
    "size": (0,),
    "contains": (1,),
    "startsWith": (1,),
    "endsWith": (1,),
    "matches": (1,),
    "lowerAscii": (0,),
    "upperAscii": (0,),
    "trim": (0,),
    "join": (0, 1),
    "split": (1,),
    "indexOf": (1,),
    "isSorted": (0,),
    "sum": (0,),
    "min": (0,),
    "max": (0,),
    "family": (0,),
    "prefixLength": (0,),
    "containsIP": (1,),
    "containsCIDR": (1,),
    "ip": (0,),
}
MACROS = {"all": 2, "exists": 2, "exists_one": 2, "map": (2, 3), "filter": 2}
ROOTS = frozenset({"self", "oldSelf"})
_RESERVED = frozenset(
    """as break const continue else for function if import let loop package namespace return var void
    while""".split()  # noqa: SIM905
)

# -- lexer ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+|//[^\n]*)
    |(?P<bytes>[bB][rR]?["']|[rR][bB]["'])
    |(?P<str>[rR]?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
    |(?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)
    |(?P<int>0[xX][0-9a-fA-F]+[uU]?|\d+[uU]?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\|\||&&|==|!=|<=|>=|\.\?|[-+*/%!<>?:.,\[\]{}()])""",
    re.VERBOSE,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESC_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2}|.)", re.DOTALL)


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        if e in _ESCAPES:
            return _ESCAPES[e]
        if e in "\\\"'`?":
            return e
        raise CelError(f"invalid escape sequence \\{e}")

    return _ESC_RE.sub(one, body)


def _string(text: str) -> str:
    raw = text[0] in "rR"
    if raw:
        text = text[1:]
    q = 3 if text[:3] in ('"""', "'''") else 1
    body = text[q:-q]
    return body if raw else _unescape(body)


def tokenize(src: str) -> list[tuple[str, Any]]:
    """(kind, value) tokens: ``lit``, ``ident``, ``op``; raises ``CelError``."""
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise CelError(f"Syntax error: token recognition error at: {src[pos]!r} (offset {pos})")
        pos = m.end()
        kind, text = m.lastgroup, m.group()
        if kind == "ws":
            continue
        if kind == "bytes":
            raise CelError("bytes literals are not supported")
        if kind == "str":
            out.append(("lit", _string(text)))
        elif kind == "float":
            out.append(("lit", float(text)))
        elif kind == "int":
            if text[-1] in "uU":
                raise CelError(f"uint literal {text} is not supported")
            out.append(("lit", int(text, 0)))
        elif kind == "ident":
            if text in ("true", "false"):
                out.append(("lit", text == "true"))
            elif text == "null":
                out.append(("lit", None))
            elif text == "in":
                out.append(("op", "in"))
            elif text in _RESERVED:
                raise CelError(f"reserved identifier {text!r}")
            else:
                out.append(("ident", text))
        else:
            if text == ".?":
                raise CelError("optional field selection (.?) is not supported")
            out.append(("op", text))
    out.append(("eof", None))
    return out


# -- parser -----------------------------------------------------------------------------------------

_RELOPS = ("<", "<=", ">", ">=", "==", "!=", "in")
_LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), _RELOPS, ("+", "-"), ("*", "/", "%"))


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        kind, v = self.toks[self.i]
        return kind == "op" and (value is None or v == value)

    def take(self, value: str) -> None:
        kind, v = self.toks[self.i]
        if kind != "op" or v != value:
            shown = "end of input" if kind == "eof" else repr(v)
            raise CelError(f"Syntax error: expected {value!r}, found {shown}")
        self.i += 1

    def expr(self) -> Expr:
        test = self.binary(0)
        if self.peek("?"):
            self.i += 1
            then = self.binary(0)
            self.take(":")
            return Cond(test, then, self.expr())
        return test

    def binary(self, level: int) -> Expr:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.toks[self.i][0] == "op" and self.toks[self.i][1] in _LEVELS[level]:
            op = self.toks[self.i][1]
            self.i += 1
            left = Binary(op, left, self.binary(level + 1))
        return left

    def unary(self) -> Expr:
        if self.peek("!") or self.peek("-"):
            op = self.toks[self.i][1]
            self.i += 1
            operand = self.unary()
            if op == "-" and isinstance(operand, Lit) and type(operand.value) in (int, float):
                return Lit(-operand.value)
            return Unary(op, operand)
        return self.member(self.primary())

    def args(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        while not self.peek(close):
            out.append(self.expr())
            if not self.peek(close):
                self.take(",")
        self.take(close)
        return tuple(out)

    def member(self, e: Expr) -> Expr:
        while True:
            if self.peek("."):
                self.i += 1
                kind, name = self.toks[self.i]
                if kind != "ident":
                    raise CelError(f"Syntax error: expected a field name after '.', found {name!r}")
                self.i += 1
                if self.peek("("):
                    self.i += 1
                    e = _method(e, name, self.args(")"))
                else:
                    e = Select(e, name)
            elif self.peek("["):
                self.i += 1
                idx = self.expr()
                self.take("]")
                e = Index(e, idx)
            else:
                return e

    def primary(self) -> Expr:
        kind, v = self.toks[self.i]
        self.i += 1
        if kind == "lit":
            return Lit(v)
        if kind == "ident":
            if self.peek("("):
                self.i += 1
                return _function(v, self.args(")"))
            if self.peek("{"):
                raise CelError(f"message construction ({v}{{...}}) is not supported")
            return Ident(v)
        if kind == "op" and v == "(":
            e = self.expr()
            self.take(")")
            return e
        if kind == "op" and v == "[":
            return ListLit(self.args("]"))
        if kind == "op" and v == "{":
            entries: list[tuple[Expr, Expr]] = []
            while not self.peek("}"):
                k = self.expr()
                self.take(":")
                entries.append((k, self.expr()))
                if not self.peek("}"):
                    self.take(",")
            self.take("}")
            return MapLit(tuple(entries))
        shown = "end of input" if kind == "eof" else repr(v)
        raise CelError(f"Syntax error: unexpected {shown}")


def _arity(name: str, n: int, table: dict[str, tuple[int, ...]], what: str) -> None:
    if name not in table:
        raise CelError(f"undeclared reference to '{name}' ({what} not supported by the lab evaluator)")
    if n not in table[name]:
        raise CelError(f"found no matching overload for '{name}' with {n} argument(s)")


def _function(name: str, args: tuple[Expr, ...]) -> Expr:
    if name == "has":
        if len(args) != 1 or not isinstance(args[0], Select):
            raise CelError("invalid argument to has() macro: expected a field selection")
        return Select(args[0].operand, args[0].field, test_only=True)
    _arity(name, len(args), FUNCTIONS, "function")
    return Call(name, None, args)


def _method(target: Expr, name: str, args: tuple[Expr, ...]) -> Expr:
    if name in MACROS:
        want = MACROS[name]
        if len(args) not in (want if isinstance(want, tuple) else (want,)):
            raise CelError(f"{name}() macro takes {want} arguments, got {len(args)}")
        if not isinstance(args[0], Ident):
            raise CelError(f"{name}() macro: the first argument must be a simple name")
        return Macro(name, target, args[0].name, args[1:])
    _arity(name, len(args), METHODS, "method")
    return Call(name, target, args)


def parse(src: str) -> Expr:
    """Parse one CEL expression; raises ``CelError``."""
    if not isinstance(src, str) or not src.strip():
        raise CelError("rule is empty")
    p = _Parser(src)
    e = p.expr()
    if p.toks[p.i][0] != "eof":
        raise CelError(f"Syntax error: unexpected {p.toks[p.i][1]!r} after the expression")
    return e
