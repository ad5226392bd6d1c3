"""Routes in a config: route attributes (inline ``routes:``, ``kubernetes.attributes``) and routes files.

A routes file has one route per line, ``PREFIX [key=value ...]`` (lists comma-separated, ``#``
comments), read with the same converters as the YAML, so an error names the file and line:
``routes.txt:3.as_path: expected an integer, got 'abc'``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import ipaddress
import socket
from collections.abc import Iterator, Mapping
from itertools import repeat
from operator import methodcaller
from typing import Any

from ..rib import RouteAttrs
from ..wire import Prefix, community, large_community
from ..wire.prefix import prefixes_from_packed
from .schema import ConfigError, Section, build, to_asn, to_int, to_ip, to_str

ORIGINS = {"igp": 0, "egp": 1, "incomplete": 2}
_NO_INTS: tuple[int, ...] = ()
_NO_LARGE: tuple[tuple[int, int, int], ...] = ()


def parse_route_attrs(s: Section) -> RouteAttrs:
    """Route attributes shared by inline routes, routes files and Kubernetes classes."""

    def communities(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list such as ['64512:100', NO_EXPORT]")
        return tuple(community(str(c)) for c in v)

    def larges(v: Any) -> tuple[tuple[int, int, int], ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list such as ['64512:1:2']")
        return tuple(large_community(str(c)) for c in v)

    def origin(v: Any) -> int:
        if v not in ORIGINS:
            raise ValueError("must be igp, egp or incomplete")
        return ORIGINS[v]

    def as_path(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise ValueError("expected a list of AS numbers")
        return tuple(to_asn(a) for a in v)

    nh = s.get("next_hop", to_ip, None)
    kw: dict[str, Any] = {
        "origin": s.get("origin", origin, 0),
        "as_path": s.get("as_path", as_path, _NO_INTS),
        "med": s.get("med", to_int(0, 0xFFFFFFFF), None),
        "local_pref": s.get("local_pref", to_int(0, 0xFFFFFFFF), None),
        "communities": s.get("communities", communities, _NO_INTS),
        "large_communities": s.get("large_communities", larges, _NO_LARGE),
        "next_hop": ipaddress.ip_address(nh) if nh else None,
    }
    return build(RouteAttrs, kw, s.path)


def _prefix(v: Any) -> Prefix:
    return Prefix.from_network(to_str(v))


_FAMILY = {True: (socket.AF_INET6, 2, 128), False: (socket.AF_INET, 1, 32)}


def _file_prefix(text: str) -> Prefix:
    """``ADDRESS/LENGTH`` through the C address parser: 300k lines parse in ~0.3 s instead of ~4 s with
    ``ipaddress`` (bench/transfer.py preloads a routes file); anything unusual takes ``_prefix``, which
    also words the error."""
    addr, sep, length = text.partition("/")
    if sep and length.isdigit():
        family, afi, bits = _FAMILY[":" in addr]
        n = int(length)
        try:
            packed = socket.inet_pton(family, addr)
        except OSError:
            packed = b""
        size = (n + 7) >> 3
        if packed and n <= bits and not any(packed[size:]):
            return Prefix(afi, n, packed[:size])  # checks the host bits of the last octet kept
    return _prefix(text)


def parse_routes(data: object, path: str) -> dict[Prefix, RouteAttrs]:
    """The inline ``routes:`` list."""
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of routes")
    out: dict[Prefix, RouteAttrs] = {}
    for i, item in enumerate(data):
        s = Section(item if isinstance(item, Mapping) else {"prefix": item}, f"{path}[{i}]")
        prefix = s.require("prefix", _prefix)
        attrs = parse_route_attrs(s)
        s.finish()
        out[prefix] = attrs
    return out


def _route_line_item(pairs: list[str], where: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"{where}: expected key=value, got {pair!r}")
        if key in ("communities", "large_communities", "as_path"):
            item[key] = [x for x in value.split(",") if x]
        elif key in ("med", "local_pref"):
            item[key] = int(value) if value.isdigit() else value
        else:
            item[key] = value
    return item


_V4 = functools.partial(socket.inet_pton, socket.AF_INET)


#: Characters of the file handled per batch by the host-route fast path: bounds the transient lists
#: (tokens, addresses, packed forms) to a few MB whatever the file's size (1M lines: -60 MB of peak RSS).
_BATCH = 1 << 20


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic collection while a table's prefixes are made: they hold no cycles, and the collections
    their allocation would trigger walk the growing table (300k lines: 0.42 -> 0.31 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _host_routes(text: str) -> dict[Prefix, RouteAttrs] | None:
    """A file of nothing but IPv4 /32s (the shape of a big host-route file) parsed in C-level loops:
    1M lines in ~0.4 s instead of ~4 s. None when the file has another shape or a bad line (the
    line-by-line parser then runs and names the line)."""
    if "#" in text or "=" in text:
        return None
    out: dict[Prefix, RouteAttrs] = {}
    plain = RouteAttrs()
    start = 0
    with _collector_paused():
        while start < len(text):
            end = text.find("\n", start + _BATCH)
            end = len(text) if end < 0 else end + 1
            tokens = text[start:end].split()
            start = end
            if not all(map(methodcaller("endswith", "/32"), tokens)):
                return None
            try:
                packed = list(map(_V4, [t[:-3] for t in tokens]))
            except OSError:
                return None
            del tokens
            out.update(zip(prefixes_from_packed(1, 32, packed), repeat(plain)))
    return out


def parse_routes_file(text: str, name: str) -> dict[Prefix, RouteAttrs]:
    """One route per line: ``PREFIX [key=value ...]``; ``#`` comments; lists comma-separated."""
    bulk = _host_routes(text)
    if bulk is not None:
        return bulk
    out: dict[Prefix, RouteAttrs] = {}
    # Lines with the same attributes share one RouteAttrs: the Adj-RIB-Out then builds them once.
    interned: dict[tuple[str, ...], RouteAttrs] = {(): RouteAttrs()}
    plain = interned[()]
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if "#" in raw else raw.strip()
        if not line:
            continue
        prefix_text, *pairs = line.split() if " " in line or "\t" in line else (line,)
        try:
            prefix = _file_prefix(prefix_text)
        except ValueError as exc:
            raise ConfigError(f"{name}:{lineno}: {exc}") from None
        if not pairs:
            out[prefix] = plain
            continue
        where = f"{name}:{lineno}"
        known = interned.get(tuple(pairs))
        if known is None:
            s = Section(_route_line_item(pairs, where), where)
            known = parse_route_attrs(s)
            s.finish()
            interned[tuple(pairs)] = known
        out[prefix] = known
    return out
