"""IP prefixes and their NLRI encoding (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

A ``Prefix`` is an immutable ``bytes`` value: one octet AFI, one octet length, the significant octets of
the address with host bits zeroed (exactly the wire form after the length octet), then the four-octet
ADD-PATH path identifier only when it is not zero. ``p[0]`` is the AFI and ``p[1]`` the length; ``afi``,
``length``, ``packed`` and ``path_id`` name the parts. This is a measured departure from the
frozen-dataclass house style: prefixes are the hot path (a million per table), and one flat bytes
object is 56 bytes where a named tuple of four fields with its own address bytes was 128 (1M-route
speaker: -72 MB), hashes once and is cached, compares with ``memcmp``, and is made from the wire form
by C-level slicing. Equal prefixes are equal values; the order is (afi, length, address, path id).
``Prefix(...)`` validates; the decoders use the trusted ``bytes.__new__`` path only after
checking the bytes themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import add, itemgetter
from struct import Struct, iter_unpack
from typing import Any

from .errors import Handling, UpdateMessageError, UpdateSubcode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_BITS = {1: 32, 2: 128}
_LEN_BYTE = [bytes((i,)) for i in range(256)]
# Mask that keeps the significant bits of the last octet of a prefix of length n (n % 8 != 0).
_LAST_MASK = [(0xFF << (8 - (n % 8))) & 0xFF if n % 8 else 0xFF for n in range(129)]
# End of the address octets in a Prefix of length n (AFI and length octets first).
_END = [2 + ((n + 7) >> 3) for n in range(256)]
_AFI_BYTE = {1: b"\x01", 2: b"\x02"}
_PATH_ID = Struct(">I")
_first = itemgetter(0)
_second = itemgetter(1)


class Prefix(bytes):
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
        return _trusted(afi, length, bytes(packed), path_id)

    @classmethod
    def from_network(cls, network: IPNetwork | str, path_id: int = 0, strict: bool = True) -> Prefix:
        """Build from an ``ipaddress`` network or a string such as ``"192.0.2.0/24"``."""
        net = ipaddress.ip_network(network, strict=strict) if isinstance(network, str) else network
        length = net.prefixlen
        packed = net.network_address.packed[: (length + 7) >> 3]
        return _trusted(1 if net.version == 4 else 2, length, packed, path_id)

    @classmethod
    def host(cls, address: IPAddress | str, path_id: int = 0) -> Prefix:
        """A /32 or /128 for one address."""
        addr = ipaddress.ip_address(address) if isinstance(address, str) else address
        return _trusted(1 if addr.version == 4 else 2, addr.max_prefixlen, addr.packed, path_id)

    @property
    def afi(self) -> int:
        return self[0]

    @property
    def length(self) -> int:
        return self[1]

    @property
    def packed(self) -> bytes:
        """The significant octets of the address (the NLRI form after the length octet)."""
        return bytes(self[2 : _END[self[1]]])

    @property
    def path_id(self) -> int:
        return int.from_bytes(self[_END[self[1]] :], "big")

    @property
    def nlri(self) -> bytes:
        """The RFC 4271 §4.3 encoding without a path identifier: length octet, then the address octets."""
        return bytes(self[1 : _END[self[1]]])

    @property
    def network(self) -> IPNetwork:
        """This prefix as an ``ipaddress`` network."""
        packed = self.packed
        if self[0] == 1:
            return ipaddress.IPv4Network((packed + bytes(4 - len(packed)), self[1]))
        return ipaddress.IPv6Network((packed + bytes(16 - len(packed)), self[1]))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Prefix, (self[0], self[1], self.packed, self.path_id))

    def __str__(self) -> str:
        text = str(self.network)
        pid = self.path_id
        return f"{text}#{pid}" if pid else text

    def __repr__(self) -> str:
        return f"Prefix({str(self)!r})"


#: ``bytes.__new__(Prefix, octets)``: the trusted constructor, called from C by ``map`` in the fast
#: paths (``map(_new, repeat(Prefix), ...)``: 0.5 us a prefix; through ``functools.partial`` 0.65 us).
_new = bytes.__new__


def _from_bytes(octets: bytes) -> Prefix:
    return _new(Prefix, octets)


def _trusted(afi: int, length: int, packed: bytes, path_id: int = 0) -> Prefix:
    head = _AFI_BYTE.get(afi, b"") + _LEN_BYTE[length]
    if path_id:
        return _from_bytes(head + packed + _PATH_ID.pack(path_id))
    return _from_bytes(head + packed)


def prefixes_from_packed(afi: int, length: int, packed: Iterable[bytes]) -> list[Prefix]:
    """Trusted batch construction (no path ids) from address octets already checked by the caller."""
    head = _AFI_BYTE[afi] + _LEN_BYTE[length]
    return list(map(_new, repeat(Prefix), map(add, repeat(head), packed)))


def _invalid(reason: str, handling: Handling) -> UpdateMessageError:
    return UpdateMessageError(UpdateSubcode.INVALID_NETWORK_FIELD, b"", reason, handling, rfc="RFC 7606 §5.3")


# Uniform-length fast paths: (afi, length) -> (unpack format of one NLRI record, record size). Host
# routes dominate what bgpsvc sends and receives, and these let C split the buffer with no Python loop.
# Setting up the C pipeline costs about 8,000 instructions more than the loop of ``_mixed``, and each
# prefix then about 2,700 where that loop takes about 4,200, so a run takes this path from
# ``_UNIFORM_MIN`` prefixes on: two /24s took 15,500 instructions here and 10,400 in ``_mixed``; 32
# took 96,500 here and 135,200 there. The full table of bench/codec.py, whose UPDATEs of one length
# carry 2-3 prefixes, decodes in 1.2% fewer instructions per UPDATE for it.
_UNIFORM = {
    (1, 32): (">5s", 5),
    (1, 24): (">4s", 4),
    (2, 128): (">17s", 17),
    (2, 64): (">9s", 9),
}
_UNIFORM_MIN = 6


#: Octets of one NLRI record (length octet included) of length n, for every octet value n.
_RECORD = [1 + ((n + 7) >> 3) for n in range(256)]
#: Host bits of the last octet of a prefix of length n (0 when n is a multiple of 8, or beyond 128).
_HOST_BITS = [~_LAST_MASK[n] & 0xFF if n <= 128 else 0 for n in range(256)]


def decode_prefixes(
    data: bytes, afi: int, add_path: bool = False, handling: Handling = Handling.SESSION_RESET
) -> list[Prefix]:
    """Decode a run of NLRI (RFC 4271 §4.3; RFC 7911 §3 when ``add_path``).

    Raises ``UpdateMessageError(INVALID_NETWORK_FIELD)`` with ``handling`` on a length beyond the
    address size or a prefix that overruns the field (RFC 7606 §5.3).
    """
    return list(decode_prefix_tuple(data, afi, add_path, handling)) if data else []


def decode_prefix_tuple(
    data: bytes, afi: int, add_path: bool = False, handling: Handling = Handling.SESSION_RESET
) -> tuple[Prefix, ...]:
    """``decode_prefixes`` as a tuple, what an ``Update`` or MP attribute holds: no list to copy.

    One prefix alone is checked first, with table lookups for its size and host bits (the one-prefix
    field of an UPDATE of distinct attribute sets: 0.32 us; an IPv4-only copy of these paths saved
    0.03 us more, not worth a second copy); then a run of one length split in C, when long enough
    (``_UNIFORM_MIN``); then the mixed-length loop.
    """
    if add_path:
        return _with_path_ids(data, _AFI_BYTE[afi], _BITS[afi], handling)
    n = len(data)
    if not n:
        return ()
    first = data[0]
    if n == _RECORD[first] and first <= _BITS[afi] and not data[-1] & _HOST_BITS[first]:
        return (_new(Prefix, _AFI_BYTE[afi] + data),)
    afi_byte = _AFI_BYTE[afi]
    if n >= _RECORD[first] * _UNIFORM_MIN:
        uniform = _UNIFORM.get((afi, first))
        if uniform is not None:
            fmt, size = uniform
            if n % size == 0 and data[::size] == _LEN_BYTE[first] * (n // size):
                # Each record is the Prefix after its AFI octet: C-level split, prepend, construct.
                records = map(_first, iter_unpack(fmt, data))
                return tuple(map(_new, repeat(Prefix), map(add, repeat(afi_byte), records)))
    return _mixed(data, afi_byte, _BITS[afi], handling)


def _mixed(data: bytes, afi_byte: bytes, bits: int, handling: Handling) -> tuple[Prefix, ...]:
    """A run of mixed-length NLRI without path ids (a full table: 1-5 prefixes of /8-/24 per
    UPDATE). Table lookups for the record size and host bits, no path-id test and no Python-level
    constructor call per prefix: 1.84 -> 1.62 us per bench/codec.py fulltable UPDATE on average (41%
    of them take this path)."""
    out: list[Prefix] = []
    append = out.append
    n = len(data)
    i = 0
    while i < n:
        length = data[i]
        end = i + _RECORD[length]
        if length > bits:
            raise _invalid(f"prefix length {length} exceeds {bits}", handling)
        if end > n:
            raise _invalid("prefix overruns NLRI field", handling)
        host = data[end - 1] & _HOST_BITS[length]
        if host:
            # Trailing bits are irrelevant (RFC 4271 §4.3); clear them so equal prefixes compare equal.
            append(_new(Prefix, afi_byte + data[i : end - 1] + _LEN_BYTE[data[end - 1] ^ host]))
        else:
            append(_new(Prefix, afi_byte + data[i:end]))
        i = end
    return tuple(out)


def _with_path_ids(data: bytes, afi_byte: bytes, bits: int, handling: Handling) -> tuple[Prefix, ...]:
    """``_mixed`` with a 4-octet path identifier before each record (RFC 7911 §3); a zero one is
    dropped, as ``Prefix`` stores none."""
    out: list[Prefix] = []
    append = out.append
    n = len(data)
    i = 0
    while i < n:
        if i + 5 > n:
            raise _invalid("truncated path identifier", handling)
        pid = data[i : i + 4]
        if pid == b"\0\0\0\0":
            pid = b""
        i += 4
        length = data[i]
        end = i + _RECORD[length]
        if length > bits:
            raise _invalid(f"prefix length {length} exceeds {bits}", handling)
        if end > n:
            raise _invalid("prefix overruns NLRI field", handling)
        host = data[end - 1] & _HOST_BITS[length]
        if host:
            append(_new(Prefix, afi_byte + data[i : end - 1] + _LEN_BYTE[data[end - 1] ^ host] + pid))
        else:
            append(_new(Prefix, afi_byte + data[i:end] + pid))
        i = end
    return tuple(out)


def encode_prefix_list(prefixes: Sequence[Prefix], add_path: bool = False) -> list[bytes]:
    """Each prefix's NLRI encoding, in order (the packer splits these across messages)."""
    end = _END
    if add_path:
        pid = _PATH_ID.pack
        return [pid(int.from_bytes(p[end[p[1]] :], "big")) + p[1 : end[p[1]]] for p in prefixes]
    return [p[1 : end[p[1]]] for p in prefixes]


def uniform_nlri(prefixes: Sequence[Prefix]) -> tuple[bytes, int] | None:
    """The NLRI run of prefixes that are all of one length with no path id, and the size of one
    record; None otherwise. Joined and stripped of the AFI octets in C (``del buf[::size]``): 100k /32s
    in ~3 ms, where one slice per prefix took ~25 ms."""
    if not prefixes or len(set(map(len, prefixes))) != 1 or len(set(map(_second, prefixes))) != 1:
        return None
    first = prefixes[0]
    size = len(first)
    if size != _END[first[1]]:
        return None  # a path id: the sizes agree, the lengths do not imply them
    run = bytearray(b"".join(prefixes))
    del run[::size]
    return bytes(run), size - 1


def encode_prefixes(prefixes: Sequence[Prefix], add_path: bool = False) -> bytes:
    """A run of NLRI (RFC 4271 §4.3)."""
    run = None if add_path else uniform_nlri(prefixes)
    return run[0] if run is not None else b"".join(encode_prefix_list(prefixes, add_path))
