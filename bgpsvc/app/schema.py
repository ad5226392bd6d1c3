"""YAML sections read against the library's dataclasses, with errors that name the field.

The dataclasses (``PeerConfig``, ``SpeakerConfig``, ``GracefulRestartConfig``, ...) are the one source of
fields, defaults and validation: ``read_fields`` derives each field's YAML converter from its type and
``metadata`` (``kind``, ``bounds``), leaves absent fields to the dataclass default, and the dataclass's
``__post_init__`` checks the rest. Every message starts with the field's path
(``peers[1].hold_time: must be 0 or 3..65535``); an unknown key suggests the field meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..wire import IPV4_UNICAST, IPV6_UNICAST, Family

T = TypeVar("T")
Converter = Callable[[Any], Any]
FAMILIES = {
    "ipv4-unicast": IPV4_UNICAST,
    "ipv6-unicast": IPV6_UNICAST,
    "ipv4": IPV4_UNICAST,
    "ipv6": IPV6_UNICAST,
}


class ConfigError(ValueError):
    """Invalid configuration; the message starts with the file, line or field path."""


class Section:
    """A mapping being read, remembering its path and which keys were used."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def sub(self, key: str) -> str:
        """The path of ``key`` in this section."""
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: Callable[[Any], T], default: T) -> T:
        """``key`` converted, or ``default`` when absent or null."""
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        return self.convert(key, kind, self.data[key])

    def require(self, key: str, kind: Callable[[Any], T]) -> T:
        """``key`` converted; missing is an error."""
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            raise ConfigError(f"{self.sub(key)}: required")
        return self.convert(key, kind, self.data[key])

    def raw(self, key: str) -> object:
        """``key`` as parsed YAML (None when absent)."""
        self.used.add(key)
        return self.data.get(key)

    def convert(self, key: str, kind: Callable[[Any], T], value: object) -> T:
        """Run a converter; its ValueError becomes a ConfigError naming the field."""
        try:
            return kind(value)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.sub(key)}: {exc}") from None

    def finish(self) -> None:
        """Every key must have been read: an unknown one is an error with a suggestion."""
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(str(key), sorted(self.used), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{self.sub(str(key))}: unknown field{hint}")


# ---------------------------------------------------------------------------------------- converters


def to_int(lo: int, hi: int) -> Callable[[Any], int]:
    """An integer in [lo, hi] (booleans are not integers here)."""

    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"{v} is outside {lo}..{hi}")
        return v

    return conv


def to_asn(v: Any) -> int:
    """An AS number, asplain or asdot (RFC 5396)."""
    if isinstance(v, str) and "." in v:
        hi, _, lo = v.partition(".")
        if not (hi.isdigit() and lo.isdigit()) or int(hi) > 0xFFFF or int(lo) > 0xFFFF:
            raise ValueError(f"{v!r} is not an asdot AS number")
        v = (int(hi) << 16) | int(lo)
    elif isinstance(v, str) and v.isdigit():
        v = int(v)
    return to_int(1, 0xFFFFFFFF)(v)


def to_number(v: Any) -> float:
    """A non-negative number."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {v!r}")
    if v < 0:
        raise ValueError("must be >= 0")
    return float(v)


def to_positive(v: Any) -> float:
    """A number greater than zero."""
    n = to_number(v)
    if n == 0:
        raise ValueError("must be > 0")
    return n


def to_bool(v: Any) -> bool:
    """true or false."""
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def to_str(v: Any) -> str:
    """A scalar as text."""
    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise ValueError(f"expected a string, got {v!r}")
    return str(v)


def to_ip(v: Any) -> str:
    """An IP address, normalised."""
    return str(ipaddress.ip_address(to_str(v)))


def to_hold(v: Any) -> int:
    """A BGP hold time (RFC 4271 §4.2)."""
    h = to_int(0, 65535)(v)
    if h in (1, 2):
        raise ValueError("must be 0 or 3..65535 (RFC 4271 §4.2)")
    return h


def to_families(v: Any) -> tuple[Family, ...]:
    """A non-empty list of address families."""
    if not isinstance(v, list) or not v:
        raise ValueError("expected a non-empty list such as [ipv4-unicast, ipv6-unicast]")
    out = []
    for item in v:
        if item not in FAMILIES:
            raise ValueError(f"unknown family {item!r} (use ipv4-unicast or ipv6-unicast)")
        out.append(FAMILIES[item])
    return tuple(dict.fromkeys(out))


KINDS: dict[str, Converter] = {"asn": to_asn, "ip": to_ip, "families": to_families, "hold": to_hold}
_SCALARS: dict[object, Converter] = {float: to_number, bool: to_bool, str: to_str}


def converter(tp: object, meta: Mapping[str, Any]) -> Converter | None:
    """The YAML converter for a field of type ``tp`` with ``metadata`` ``meta`` (None: not a scalar)."""
    kind = meta.get("kind")
    if kind is not None:
        return KINDS[kind]
    if isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else tp
    if tp is int:
        lo, hi = meta.get("bounds", (-(2**63), 2**63 - 1))
        return to_int(lo, hi)
    return _SCALARS.get(tp)


def read_fields(cls: type[Any], s: Section, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from the scalar fields present in ``s`` (absent: the default)."""
    hints = typing.get_type_hints(cls)
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        conv = converter(hints[f.name], f.metadata)
        if conv is None:
            continue  # a nested section: the caller reads it
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            kw[f.name] = s.require(f.name, conv)
        elif s.data.get(f.name) is not None:
            kw[f.name] = s.get(f.name, conv, None)
        else:
            s.used.add(f.name)
    return kw


def build(cls: Callable[..., T], kw: Mapping[str, Any], path: str) -> T:
    """``cls(**kw)``; its ValueError ("field: why") becomes a ConfigError under ``path``."""
    try:
        return cls(**kw)
    except ValueError as exc:
        raise ConfigError(f"{path}.{exc}" if path else str(exc)) from None


# ---------------------------------------------------------------------------------------- YAML files


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML 1.2 says they are an error; PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str, name: str) -> Any:
    """Parse YAML; errors name the file, line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a control character: no line/column mark, but an offset
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        where = f"character {char} at offset {exc.position}"
        raise ConfigError(f"{name}: not valid YAML: {where}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from None


def read_text(path: Path) -> str:
    """A config file's text; errors name the file."""
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8 expected)") from None
