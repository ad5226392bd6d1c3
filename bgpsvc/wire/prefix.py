"""IP prefixes and their NLRI encoding (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

A ``Prefix`` is an immutable tuple ``(afi, length, packed, path_id)`` where ``packed`` holds only the
significant octets with host bits zeroed, i.e. exactly the wire form after the length octet. This is a
measured departure from the frozen-dataclass house style: prefixes are the hot path (hundreds of
thousands per table), and a tuple subclass can be created from C (``tuple.__new__``, which ``_make``
wraps in a Python frame), hashes fast and encodes as a single concatenation. ``Prefix(...)`` validates;
the decoders use the trusted ``tuple.__new__`` path only
after checking the bytes themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from struct import Struct, iter_unpack
from typing import NamedTuple

from .errors import Handling, UpdateMessageError, UpdateSubcode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_BITS = {1: 32, 2: 128}
_LEN_BYTE = [bytes((i,)) for i in range(256)]
# Mask that keeps the significant bits of the last octet of a prefix of length n (n % 8 != 0).
_LAST_MASK = [(0xFF << (8 - (n % 8))) & 0xFF if n % 8 else 0xFF for n in range(129)]
_PATH_ID = Struct(">I")
_first = itemgetter(0)
_tuple_new = tuple.__new__


class _PrefixFields(NamedTuple):
    afi: int
    length: int
    packed: bytes
    path_id: int


class Prefix(_PrefixFields):
    """An IPv4 or IPv6 prefix with an optional ADD-PATH path identifier (RFC 4271 §4.3, RFC 7911 §3)."""

    __slots__ = ()

    def __new__(cls, afi: int, length: int, packed: bytes, path_id: int = 0) -> Prefix:
        bits = _BITS.get(afi)
        if bits is None:
            raise ValueError(f"unsupported AFI {afi}")
        if not 0 <= length <= bits:
            raise ValueError(f"prefix length {length} out of range for AFI {afi}")
        if len(packed) != (length + 7) >> 3:
            raise ValueError(f"prefix /{length} needs {(length + 7) >> 3} octets, got {len(packed)}")
        if length % 8 and packed[-1] & ~_LAST_MASK[length] & 0xFF:
            raise ValueError("host bits set in prefix")
        if not 0 <= path_id <= 0xFFFFFFFF:
            raise ValueError("path identifier out of range")
        return tuple.__new__(cls, (afi, length, bytes(packed), path_id))

    @classmethod
    def from_network(cls, network: IPNetwork | str, path_id: int = 0, strict: bool = True) -> Prefix:
        """Build from an ``ipaddress`` network or a string such as ``"192.0.2.0/24"``."""
        net = ipaddress.ip_network(network, strict=strict) if isinstance(network, str) else network
        length = net.prefixlen
        packed = net.network_address.packed[: (length + 7) >> 3]
        return tuple.__new__(cls, (1 if net.version == 4 else 2, length, packed, path_id))

    @classmethod
    def host(cls, address: IPAddress | str, path_id: int = 0) -> Prefix:
        """A /32 or /128 for one address."""
        addr = ipaddress.ip_address(address) if isinstance(address, str) else address
        return tuple.__new__(cls, (1 if addr.version == 4 else 2, addr.max_prefixlen, addr.packed, path_id))

    @property
    def network(self) -> IPNetwork:
        """This prefix as an ``ipaddress`` network."""
        size = 4 if self[0] == 1 else 16
        full = self[2] + bytes(size - len(self[2]))
        if self[0] == 1:
            return ipaddress.IPv4Network((full, self[1]))
        return ipaddress.IPv6Network((full, self[1]))

    def __str__(self) -> str:
        text = str(self.network)
        return f"{text}#{self[3]}" if self[3] else text

    def __repr__(self) -> str:
        return f"Prefix({str(self)!r})"


def _invalid(reason: str, handling: Handling) -> UpdateMessageError:
    return UpdateMessageError(UpdateSubcode.INVALID_NETWORK_FIELD, b"", reason, handling, rfc="RFC 7606 §5.3")


# Uniform-length fast paths: (afi, length) -> (unpack format, record size). Host routes dominate
# what bgpsvc sends and receives, and these let C split the buffer with no Python-level loop.
_UNIFORM = {
    (1, 32): (">x4s", 5),
    (1, 24): (">x3s", 4),
    (2, 128): (">x16s", 17),
    (2, 64): (">x8s", 9),
}


def decode_prefixes(
    data: bytes, afi: int, add_path: bool = False, handling: Handling = Handling.SESSION_RESET
) -> list[Prefix]:
    """Decode a run of NLRI (RFC 4271 §4.3; RFC 7911 §3 when ``add_path``).

    Raises ``UpdateMessageError(INVALID_NETWORK_FIELD)`` with ``handling`` on a length beyond the
    address size or a prefix that overruns the field (RFC 7606 §5.3).
    """
    n = len(data)
    if not n:
        return []
    bits = _BITS[afi]
    cls = Prefix
    if not add_path:
        first = data[0]
        if n == 1 + ((first + 7) >> 3) and first <= bits:
            # Exactly one prefix (one route per UPDATE is common with distinct attributes).
            packed = data[1:]
            if first & 7 and packed[-1] & ~_LAST_MASK[first] & 0xFF:
                packed = packed[:-1] + _LEN_BYTE[packed[-1] & _LAST_MASK[first]]
            return [_tuple_new(cls, (afi, first, packed, 0))]
        uniform = _UNIFORM.get((afi, first))
        if uniform is not None:
            fmt, size = uniform
            if n % size == 0 and data[::size] == _LEN_BYTE[first] * (n // size):
                return list(
                    map(
                        _tuple_new,
                        repeat(cls),
                        zip(repeat(afi), repeat(first), map(_first, iter_unpack(fmt, data)), repeat(0)),
                    )
                )
        return _decode_mixed(data, afi, handling)
    out: list[Prefix] = []
    append = out.append
    i = 0
    path_id = 0
    while i < n:
        if add_path:
            if i + 5 > n:
                raise _invalid("truncated path identifier", handling)
            path_id = int.from_bytes(data[i : i + 4], "big")
            i += 4
        length = data[i]
        if length > bits:
            raise _invalid(f"prefix length {length} exceeds {bits}", handling)
        end = i + 1 + ((length + 7) >> 3)
        if end > n:
            raise _invalid("prefix overruns NLRI field", handling)
        packed = data[i + 1 : end]
        if length & 7 and packed[-1] & ~_LAST_MASK[length] & 0xFF:
            # Trailing bits are irrelevant (RFC 4271 §4.3); clear them so equal prefixes compare equal.
            packed = packed[:-1] + _LEN_BYTE[packed[-1] & _LAST_MASK[length]]
        append(_tuple_new(cls, (afi, length, packed, path_id)))
        i = end
    return out


# Octets of a prefix of each length, length octet included; 0 for lengths beyond the address size.
_SIZES = {afi: [1 + ((n + 7) >> 3) if n <= bits else 0 for n in range(256)] for afi, bits in _BITS.items()}


def _decode_mixed(data: bytes, afi: int, handling: Handling) -> list[Prefix]:
    """NLRI of mixed lengths without path identifiers, one table lookup per prefix for its size."""
    sizes = _SIZES[afi]
    cls = Prefix
    out: list[Prefix] = []
    append = out.append
    n = len(data)
    i = 0
    while i < n:
        length = data[i]
        size = sizes[length]
        if not size:
            raise _invalid(f"prefix length {length} exceeds {_BITS[afi]}", handling)
        end = i + size
        if end > n:
            raise _invalid("prefix overruns NLRI field", handling)
        packed = data[i + 1 : end]
        if length & 7 and packed[-1] & ~_LAST_MASK[length] & 0xFF:
            # Trailing bits are irrelevant (RFC 4271 §4.3); clear them so equal prefixes compare equal.
            packed = packed[:-1] + _LEN_BYTE[packed[-1] & _LAST_MASK[length]]
        append(_tuple_new(cls, (afi, length, packed, 0)))
        i = end
    return out


def encode_prefix_list(prefixes: Sequence[Prefix], add_path: bool = False) -> list[bytes]:
    """Each prefix's NLRI encoding, in order (the packer splits these across messages)."""
    lb = _LEN_BYTE
    if add_path:
        pid = _PATH_ID.pack
        return [pid(p[3]) + lb[p[1]] + p[2] for p in prefixes]
    return [lb[p[1]] + p[2] for p in prefixes]


def encode_prefixes(prefixes: Sequence[Prefix], add_path: bool = False) -> bytes:
    """A run of NLRI (RFC 4271 §4.3)."""
    return b"".join(encode_prefix_list(prefixes, add_path))
