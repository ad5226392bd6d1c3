"""Independent BGP message decoder (test oracle) built on scapy's ``scapy.contrib.bgp``.

Tests use :func:`decode` to compare what our own codec put on the wire with what a completely
separate implementation (scapy) reads back.  Every value is interpreted by scapy's own classes
and fields; this module only normalises scapy's dissection into plain Python data, and distrusts
it:

* Before scapy runs, a small framing check written from the RFCs (not from our codec) verifies
  lengths only: header, OPEN optional parameter / capability TLVs, UPDATE sections, path
  attribute TLVs, fixed attribute sizes, AS_PATH segment sizes and prefix lengths / trailing
  bits.  A violation raises :class:`OracleMalformed` (a ``ValueError``): the bytes are broken,
  so a test must *fail*, not skip.  (scapy itself zero-fills truncated prefixes, falls back to
  field defaults for missing bytes and crashes on some short values, so it cannot tell.)
* After scapy runs, whatever scapy could not dissect, left as ``Raw``/``Padding``, or parsed in
  a way that disagrees with the (already validated) framing raises :class:`OracleUnsupported`
  rather than returning partial data.  A final sweep over every packet scapy produced makes
  sure no stray ``Raw`` layer is ignored silently.

Prefixes with non-zero trailing bits (RFC 4271 calls those bits "irrelevant") are reported as
malformed because a well-behaved encoder never produces them.

Workarounds: scapy gaps bridged with scapy's own classes
--------------------------------------------------------
1. scapy's ADD-PATH guess (``detect_add_path_prefix46``) is switched off while decoding:
   ADD-PATH (RFC 7911) is only used when negotiated and this oracle decodes plain NLRI.  Left
   on, scapy misreads ordinary NLRI such as ``10.0.0.0/8 11.0.0.0/8 0.0.0.0/0 192.0.2.0/24``
   as ADD-PATH (pinned by a self-check test).
2. scapy expects one capability per optional parameter and leaves the following ones as
   ``Raw``; that remainder is dissected again with scapy's ``BGPCapability`` dispatcher.
3. ``BGPCapGracefulRestart`` ignores the capability length and swallows the capabilities that
   follow it in the same optional parameter; it is re-dissected on exactly the bytes its length
   field declares.
4. Items of fixed-size lists -- COMMUNITIES values, LARGE_COMMUNITY values and Graceful Restart
   <AFI, SAFI, flags> tuples -- after the first are left by scapy as a ``Raw`` payload, which is
   fed back, item by item, to the same scapy class.
5. AGGREGATOR always uses scapy's 2-octet-AS layout; in 4-octet-AS mode the value is dissected
   with scapy's ``BGPPAAS4Aggregator`` (same layout as the RFC 6793 4-octet AGGREGATOR).
6. AS4_AGGREGATOR (18) is missing from scapy's attribute table (it comes back as ``Raw``); the
   value is dissected with scapy's ``BGPPAAS4Aggregator``.

Known scapy limitations (decode raises OracleUnsupported; each is pinned by a self-check test)
---------------------------------------------------------------------------------------------
* OPEN with RFC 9072 extended optional parameters (Non-Ext OP Len 255 and Non-Ext OP Type 255):
  scapy does not implement RFC 9072 and silently misparses the parameters.
* OPEN optional parameters other than Capabilities (2), e.g. the deprecated Authentication (1).
* The Outbound Route Filtering capability (3, Cisco 130): not normalised by this oracle.
* AS4_PATH with more than one segment: scapy models AS4_PATH as a single segment whose ASN list
  runs to the end of the attribute; the UPDATE body fails to dissect (or is misread).
* EXTENDED_COMMUNITIES holding a type 0x81 or 0x82 community whose sub-type is not 0x08: scapy's
  value dispatcher returns None and the UPDATE body fails to dissect.
* MP_REACH_NLRI NLRI for anything but AFI 2 / SAFI 1 (e.g. IPv4 unicast in MP_REACH, IPv6
  multicast), and next hops other than 4 bytes for AFI 1 or 16/32 bytes for AFI 2 (e.g. RFC 8950
  IPv6 next hops for IPv4 NLRI).  An empty NLRI list is fine.
* MP_UNREACH_NLRI withdrawn routes for anything but AFI 2 / SAFI 1.  An empty list is fine.
* MP_UNREACH_NLRI IPv6 withdrawn routes containing 16 consecutive 0xff bytes (for example
  ``ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128``): scapy stops the prefix list at anything that
  looks like a BGP marker and leaves the rest undissected.
* ROUTE-REFRESH carrying ORF entries or any other data after the 4-byte AFI/subtype/SAFI body.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import struct
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

# scapy.contrib.bgp logs "[bgp.py] use_2_bytes_asn: True" as a warning when it is imported.
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.config import conf  # noqa: E402
from scapy.contrib import bgp  # noqa: E402
from scapy.packet import NoPayload, Packet, Raw  # noqa: E402

__all__ = ["OracleMalformed", "OracleUnsupported", "decode"]

_HEADER_LEN = 19
_MARKER = b"\xff" * 16

# type -> (name, scapy class, minimum body length)
_MESSAGES: dict[int, tuple[str, Any, int]] = {
    1: ("OPEN", bgp.BGPOpen, 10),
    2: ("UPDATE", bgp.BGPUpdate, 4),
    3: ("NOTIFICATION", bgp.BGPNotification, 2),
    4: ("KEEPALIVE", bgp.BGPKeepAlive, 0),
    5: ("ROUTE-REFRESH", bgp.BGPRouteRefresh, 4),
}

# Capabilities with a fixed value size (RFC 4760, RFC 6793).
_FIXED_CAPABILITY_LEN = {1: 4, 65: 4}

# Path attributes with a fixed value size (RFC 4271, RFC 4456, RFC 6793); AGGREGATOR (7) depends
# on the AS number size and is added per call.
_FIXED_ATTRIBUTE_LEN = {1: 1, 3: 4, 4: 4, 5: 4, 6: 0, 9: 4, 18: 8}

# Path attributes made of fixed-size items (RFC 1997, RFC 4456, RFC 4360, RFC 8092).
_ATTRIBUTE_ITEM_LEN = {8: 4, 10: 4, 16: 8, 32: 12}

# Maximum prefix length per AFI, for the NLRI encodings checked by the framing pass (SAFI 1, 2).
_AFI_MAX_BITS = {1: 32, 2: 128}

_lock = threading.Lock()


class OracleUnsupported(Exception):
    """scapy cannot decode (all of) this message faithfully; the caller should skip the case."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OracleMalformed(ValueError):
    """The bytes break a BGP length/layout rule (checked without scapy): a test should fail."""


def decode(data: bytes, *, four_octet_as: bool = True) -> dict[str, object]:
    """Decode exactly one BGP message (19-byte header included) with scapy and normalise it.

    ``four_octet_as`` selects the AS number size of AS_PATH and AGGREGATOR (RFC 6793 "NEW" vs
    "OLD" speaker); scapy's global setting is switched only for the duration of the call.

    Returns ``{"type": int, "length": int}`` plus, per message type:

    * OPEN: ``version``, ``my_as``, ``hold_time``, ``bgp_id`` (dotted quad), ``capabilities``:
      ``[(code, value_bytes), ...]`` over every Capabilities optional parameter, in wire order.
    * UPDATE: ``withdrawn`` and ``nlri`` (prefix strings such as ``"192.0.2.0/24"``) and
      ``attributes``: ``[(type_code, flags, value), ...]`` in wire order.  ``value`` is an int
      for ORIGIN, MED and LOCAL_PREF; ``[(segment_type, [asn, ...]), ...]`` for AS_PATH and
      AS4_PATH; a str for NEXT_HOP and ORIGINATOR_ID; None for ATOMIC_AGGREGATE;
      ``(asn, "a.b.c.d")`` for AGGREGATOR and AS4_AGGREGATOR; a list of ints for COMMUNITIES;
      a list of str for CLUSTER_LIST; ``{"afi", "safi", "next_hops", "nlri"}`` for
      MP_REACH_NLRI; ``{"afi", "safi", "withdrawn"}`` for MP_UNREACH_NLRI; a list of 8-byte
      values for EXTENDED_COMMUNITIES; a list of ``(global, local1, local2)`` for
      LARGE_COMMUNITY; the raw value bytes for any other type.
    * NOTIFICATION: ``code``, ``subcode``, ``data`` (bytes).
    * KEEPALIVE: nothing more.
    * ROUTE-REFRESH: ``afi``, ``subtype`` (RFC 7313), ``safi``.

    Raises:
        OracleMalformed: the message violates a BGP length/layout rule.
        OracleUnsupported: scapy cannot decode this message (see "Known scapy limitations").
    """
    data = bytes(data)
    _check_framing(data, four_octet_as)
    with _scapy_settings(four_octet_as):
        return _Decoder(data, four_octet_as).run()


# -- Independent framing check (RFC rules only; no scapy) ---------------------------------------


def _malformed(reason: str) -> NoReturn:
    raise OracleMalformed(reason)


def _check_framing(data: bytes, four_octet_as: bool) -> None:
    """Check the lengths and layout of a whole message; raise OracleMalformed on a violation."""
    if len(data) < _HEADER_LEN:
        _malformed(f"{len(data)} bytes is shorter than the 19-byte BGP header")
    if data[:16] != _MARKER:
        _malformed("the marker is not 16 0xff bytes")
    length, msg_type = struct.unpack_from("!HB", data, 16)
    if length != len(data):
        _malformed(f"header length {length} != {len(data)} bytes given")
    if msg_type not in _MESSAGES:
        _malformed(f"unknown BGP message type {msg_type}")
    name, _, min_body = _MESSAGES[msg_type]
    body = data[_HEADER_LEN:]
    if len(body) < min_body or (msg_type == 4 and body):
        _malformed(f"{name} with a {len(body)}-byte body")
    if msg_type == 1:
        _check_open(body)
    elif msg_type == 2:
        _check_update(body, four_octet_as)


def _tlvs(data: bytes, what: str) -> Iterator[tuple[int, bytes]]:
    """Split ``data`` into (type, value) items with a 1-byte type and a 1-byte length."""
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            _malformed(f"truncated {what} header")
        kind, size = data[pos], data[pos + 1]
        end = pos + 2 + size
        if end > len(data):
            _malformed(f"{what} {kind} runs past the end of its container")
        yield kind, data[pos + 2 : end]
        pos = end


def _check_open(body: bytes) -> None:
    opt_len, params = body[9], body[10:]
    if opt_len == 255 and params[:1] == b"\xff":
        return  # RFC 9072 extended optional parameters: scapy cannot decode them (OracleUnsupported)
    if opt_len != len(params):
        _malformed(f"optional parameters length {opt_len} != {len(params)}")
    for param_type, value in _tlvs(params, "optional parameter"):
        if param_type != 2:
            continue
        for code, cap in _tlvs(value, "capability"):
            if code in _FIXED_CAPABILITY_LEN and len(cap) != _FIXED_CAPABILITY_LEN[code]:
                _malformed(f"capability {code} has length {len(cap)}")
            if code == 64 and (len(cap) < 2 or (len(cap) - 2) % 4):
                _malformed(f"graceful restart capability has length {len(cap)}")


def _check_prefixes(data: bytes, max_bits: int, what: str) -> None:
    pos = 0
    while pos < len(data):
        bits = data[pos]
        if bits > max_bits:
            _malformed(f"{what}: prefix length {bits} > {max_bits}")
        end = pos + 1 + (bits + 7) // 8
        if end > len(data):
            _malformed(f"{what}: truncated /{bits} prefix")
        if bits % 8 and data[end - 1] & (0xFF >> (bits % 8)):
            _malformed(f"{what}: /{bits} prefix has non-zero trailing bits")
        pos = end


def _check_update(body: bytes, four_octet_as: bool) -> None:
    (withdrawn_len,) = struct.unpack_from("!H", body, 0)
    if 4 + withdrawn_len > len(body):
        _malformed("withdrawn routes run past the end of the UPDATE")
    _check_prefixes(body[2 : 2 + withdrawn_len], 32, "withdrawn routes")
    (attrs_len,) = struct.unpack_from("!H", body, 2 + withdrawn_len)
    attrs_end = 4 + withdrawn_len + attrs_len
    if attrs_end > len(body):
        _malformed("path attributes run past the end of the UPDATE")
    attrs = body[4 + withdrawn_len : attrs_end]
    pos = 0
    while pos < len(attrs):
        header = 4 if len(attrs) > pos and attrs[pos] & 0x10 else 3
        if pos + header > len(attrs):
            _malformed("truncated path attribute header")
        code = attrs[pos + 1]
        size = struct.unpack_from("!H", attrs, pos + 2)[0] if header == 4 else attrs[pos + 2]
        end = pos + header + size
        if end > len(attrs):
            _malformed(f"path attribute {code} runs past the end of the path attributes")
        _check_attribute(code, attrs[pos + header : end], four_octet_as)
        pos = end
    _check_prefixes(body[attrs_end:], 32, "NLRI")


def _check_attribute(code: int, value: bytes, four_octet_as: bool) -> None:
    fixed = {**_FIXED_ATTRIBUTE_LEN, 7: 8 if four_octet_as else 6}
    if code in fixed and len(value) != fixed[code]:
        _malformed(f"path attribute {code} has length {len(value)}")
    if code in _ATTRIBUTE_ITEM_LEN and len(value) % _ATTRIBUTE_ITEM_LEN[code]:
        _malformed(f"path attribute {code} length {len(value)} is not a multiple of its item size")
    if code in (2, 17):
        asn_size = 4 if four_octet_as or code == 17 else 2
        pos = 0
        while pos < len(value):
            if pos + 2 > len(value) or value[pos] not in (1, 2, 3, 4):
                _malformed(f"path attribute {code}: bad or truncated segment header")
            pos += 2 + value[pos + 1] * asn_size
            if pos > len(value):
                _malformed(f"path attribute {code}: segment runs past the end of the attribute")
    elif code == 14:
        if len(value) < 5 or len(value) < 5 + value[3]:
            _malformed("MP_REACH_NLRI shorter than its AFI, SAFI and next hop")
        afi, safi = struct.unpack_from("!HB", value, 0)
        if afi in _AFI_MAX_BITS and safi in (1, 2):
            _check_prefixes(value[5 + value[3] :], _AFI_MAX_BITS[afi], "MP_REACH_NLRI")
    elif code == 15:
        if len(value) < 3:
            _malformed("MP_UNREACH_NLRI shorter than its AFI and SAFI")
        afi, safi = struct.unpack_from("!HB", value, 0)
        if afi in _AFI_MAX_BITS and safi in (1, 2):
            _check_prefixes(value[3:], _AFI_MAX_BITS[afi], "MP_UNREACH_NLRI")


# -- scapy ----------------------------------------------------------------------------------------


def _never_add_path(s: bytes, max_bit_length: int) -> bool:
    """Replacement for scapy's ADD-PATH guess: this oracle decodes plain (non ADD-PATH) NLRI."""
    return False


@contextlib.contextmanager
def _scapy_settings(four_octet_as: bool) -> Iterator[None]:
    """Temporarily set scapy's AS number size and switch off its ADD-PATH guess."""
    with _lock:
        saved_asn_mode = bgp.bgp_module_conf.use_2_bytes_asn
        saved_detect = bgp.detect_add_path_prefix46
        bgp.bgp_module_conf.use_2_bytes_asn = not four_octet_as
        bgp.detect_add_path_prefix46 = _never_add_path
        try:
            yield
        finally:
            bgp.bgp_module_conf.use_2_bytes_asn = saved_asn_mode
            bgp.detect_add_path_prefix46 = saved_detect


def _scapy_error(data: bytes) -> str:
    """Dissect ``data`` again with scapy's debug mode on, to learn why the dissection failed."""
    logger = logging.getLogger("scapy.runtime")
    saved_debug, saved_disabled = conf.debug_dissector, logger.disabled
    conf.debug_dissector = True
    logger.disabled = True
    try:
        bgp.BGPHeader(data)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conf.debug_dissector, logger.disabled = saved_debug, saved_disabled
    return "scapy fell back to Raw without raising"


def _unsupported(reason: str) -> NoReturn:
    raise OracleUnsupported(reason)


def _address(text: object) -> str:
    """An address as scapy printed it, in Python's canonical form (scapy writes ``::0.226.2.1``)."""
    return str(ipaddress.ip_address(str(text)))


def _payload_len(pkt: Any) -> int:
    """Length of a packet's trailing ``Raw`` payload (0 if there is none)."""
    payload = pkt.payload
    if isinstance(payload, NoPayload):
        return 0
    if not isinstance(payload, Raw):
        _unsupported(f"scapy attached an unexpected {type(payload).__name__} layer to {type(pkt).__name__}")
    return len(payload.load)


class _Decoder:
    """One decoding run: scapy's dissection plus the bookkeeping needed to distrust it."""

    def __init__(self, data: bytes, four_octet_as: bool) -> None:
        self.data = data
        self.four_octet_as = four_octet_as
        # Every packet tree scapy produced (the message and any re-dissection), for the sweep.
        self.roots: list[Any] = []
        # ids of Raw layers whose bytes are accounted for (re-dissected, or opaque values).
        self.allowed: set[int] = set()
        # ids of packets replaced by a re-dissection or taken as raw bytes: not swept.
        self.superseded: set[int] = set()

    def run(self) -> dict[str, object]:
        data = self.data
        msg_type = data[18]
        name, cls, _ = _MESSAGES[msg_type]
        if msg_type == 5 and len(data) != _HEADER_LEN + 4:
            _unsupported("ROUTE-REFRESH with ORF entries or other data after AFI/subtype/SAFI")
        try:
            pkt = bgp.BGPHeader(data)
        except Exception as exc:
            raise OracleUnsupported(f"scapy raised while dissecting the message: {exc!r}") from exc
        self.roots.append(pkt)
        if not isinstance(pkt, bgp.BGPHeader) or int(pkt.len) != len(data) or int(pkt.type) != msg_type:
            _unsupported("scapy misread the BGP header")
        body = pkt if msg_type == 4 else pkt.payload
        if not isinstance(body, cls):
            _unsupported(f"scapy could not dissect the {name} body ({_scapy_error(data)})")
        result: dict[str, object] = {"type": msg_type, "length": len(data)}
        body_len = len(data) - _HEADER_LEN
        if msg_type == 1:
            result.update(self._open(body))
        elif msg_type == 2:
            result.update(self._update(body, body_len))
        elif msg_type == 3:
            result.update(self._notification(body, body_len))
        elif msg_type == 5:
            result.update(self._route_refresh(body, body_len))
        if not isinstance(body.payload, NoPayload):
            _unsupported(f"scapy left bytes after the {name} body as {type(body.payload).__name__}")
        self._sweep()
        return result

    def _sweep(self) -> None:
        """Fail if any Raw/Padding layer scapy produced is not accounted for."""
        stack: list[tuple[Any, str]] = [(root, type(root).__name__) for root in self.roots]
        while stack:
            pkt, where = stack.pop()
            if id(pkt) in self.superseded:
                continue
            if isinstance(pkt, Raw):
                if id(pkt) not in self.allowed:
                    _unsupported(f"scapy left {len(pkt.load)} byte(s) undissected in {where}")
                continue
            for field, value in pkt.fields.items():
                items = value if isinstance(value, list) else [value]
                stack.extend((item, f"{where}.{field}") for item in items if isinstance(item, Packet))
            if not isinstance(pkt.payload, NoPayload):
                stack.append((pkt.payload, f"{where}/{type(pkt.payload).__name__}"))

    def _dissect(self, cls: Any, data: bytes) -> Any:
        """Dissect ``data`` with a scapy class, outside the message tree (a re-dissection)."""
        try:
            pkt = cls(data)
        except Exception as exc:
            raise OracleUnsupported(f"scapy's {cls.__name__} raised {exc!r}") from exc
        self.roots.append(pkt)
        return pkt

    def _chain(self, first: Any, cls: Any) -> list[Any]:
        """``first`` plus the items scapy left in its Raw payload, dissected one at a time."""
        items = [first]
        pkt = first
        while isinstance(pkt.payload, Raw):
            self.allowed.add(id(pkt.payload))
            pkt = self._dissect(cls, pkt.payload.load)
            items.append(pkt)
        return items

    # -- OPEN ------------------------------------------------------------------------------------

    def _open(self, o: Any) -> dict[str, object]:
        params = o.opt_params
        if o.opt_param_len == 255 and params and params[0].param_type == 255:
            _unsupported("RFC 9072 extended optional parameters (not implemented by scapy)")
        capabilities: list[tuple[int, bytes]] = []
        used = 0
        for param in params:
            used += 2 + param.param_length
            if param.param_type != 2:
                _unsupported(
                    f"optional parameter type {param.param_type} (only Capabilities (2) are normalised)"
                )
            first = param.param_value
            if param.param_length == 0:
                self.superseded.add(id(first))
                continue
            if first is None or len(first.original) != param.param_length:
                _unsupported("scapy misframed an optional parameter")
            capabilities.extend(self._capabilities(first, first.original))
        if used != o.opt_param_len:
            _unsupported("scapy misframed the optional parameters")
        return {
            "version": int(o.version),
            "my_as": int(o.my_as),
            "hold_time": int(o.hold_time),
            "bgp_id": _address(o.bgp_id),
            "capabilities": capabilities,
        }

    def _capabilities(self, first: Any, raw: bytes) -> list[tuple[int, bytes]]:
        """All capabilities of one optional parameter whose value bytes are ``raw``."""
        out: list[tuple[int, bytes]] = []
        cap, remaining = first, raw
        while True:
            code, total = int(cap.code), 2 + int(cap.length)
            if code != remaining[0] or total != 2 + remaining[1]:
                _unsupported(f"scapy misread the header of capability {remaining[0]}")
            if len(remaining) - _payload_len(cap) != total:
                # scapy's class ignored the capability length: re-dissect exactly its bytes.
                self.superseded.add(id(cap))
                cap = self._dissect(type(cap), remaining[:total])
                if not isinstance(cap.payload, NoPayload):
                    _unsupported(f"scapy's {type(cap).__name__} does not consume all of capability {code}")
            elif isinstance(cap.payload, Raw):
                self.allowed.add(id(cap.payload))  # the following capabilities, dissected below
            out.append((code, self._capability_value(cap)))
            remaining = remaining[total:]
            if not remaining:
                return out
            cap = self._dissect(bgp.BGPCapability, remaining)

    def _capability_value(self, cap: Any) -> bytes:
        """The capability value, rebuilt from the fields scapy decoded."""
        if isinstance(cap, bgp.BGPCapMultiprotocol):
            value = struct.pack("!HBB", cap.afi, cap.reserved, cap.safi)
        elif isinstance(cap, bgp.BGPCapFourBytesASN):
            value = struct.pack("!I", cap.asn)
        elif isinstance(cap, bgp.BGPCapGracefulRestart):
            value = struct.pack("!H", (cap.restart_flags << 12) | cap.restart_time)
            for first in cap.entries:
                if not isinstance(first, bgp.BGPCapGracefulRestart.GRTuple):
                    _unsupported("scapy could not dissect a graceful restart <AFI, SAFI, flags> tuple")
                for entry in self._chain(first, bgp.BGPCapGracefulRestart.GRTuple):
                    value += struct.pack("!HBB", entry.afi, entry.safi, entry.flags)
        elif isinstance(cap, bgp.BGPCapORF):
            _unsupported("the Outbound Route Filtering capability is not normalised")
        elif type(cap) is bgp.BGPCapGeneric:
            value = bytes(cap.cap_data)
        else:
            _unsupported(f"unexpected scapy capability class {type(cap).__name__}")
        if len(value) != cap.length:
            _unsupported(f"scapy's {type(cap).__name__} decoded {len(value)} of {cap.length} bytes")
        return value

    # -- UPDATE ----------------------------------------------------------------------------------

    def _update(self, u: Any, body_len: int) -> dict[str, object]:
        withdrawn_len, attrs_len = int(u.withdrawn_routes_len), int(u.path_attr_len)
        withdrawn = self._prefixes(u.withdrawn_routes, withdrawn_len, bgp.BGPNLRI_IPv4, "withdrawn routes")
        attributes = []
        used = 0
        for pa in u.path_attr:
            attribute, size = self._attribute(pa)
            attributes.append(attribute)
            used += size
        if used != attrs_len:
            _unsupported(f"scapy's path attributes take {used} bytes, not {attrs_len}")
        nlri_len = body_len - 4 - withdrawn_len - attrs_len
        nlri = self._prefixes(u.nlri, nlri_len, bgp.BGPNLRI_IPv4, "NLRI")
        return {"withdrawn": withdrawn, "nlri": nlri, "attributes": attributes}

    def _prefixes(self, items: list[Any], section_len: int, cls: Any, what: str) -> list[str]:
        """Normalise scapy's prefixes and check that they fill their section exactly."""
        out = []
        used = 0
        for item in items:
            if type(item) is not cls or not isinstance(item.payload, NoPayload):
                _unsupported(f"scapy dissected {what} as {type(item).__name__}")
            bits, address = item.getfieldval("prefix")  # internal form: (length, address)
            used += 1 + (bits + 7) // 8
            try:
                out.append(str(ipaddress.ip_network(f"{address}/{bits}")))
            except ValueError as exc:
                raise OracleUnsupported(f"scapy produced a bad prefix in {what}: {exc}") from exc
        if used != section_len:
            _unsupported(f"scapy's {what} take {used} bytes, not {section_len}")
        return out

    def _attribute(self, pa: Any) -> tuple[tuple[int, int, object], int]:
        """Normalise one path attribute; also return its wire size."""
        flags, code = int(pa.type_flags), int(pa.type_code)
        extended = bool(flags & 0x10)
        declared = int(pa.attr_ext_len if extended else pa.attr_len)
        attr = pa.attribute
        raw = attr.original if attr is not None else b""
        if len(raw) != declared:
            _unsupported(f"scapy gave attribute {code} {len(raw)} value bytes, not {declared}")
        value = self._attribute_value(code, attr, raw)
        return (code, flags, value), (4 if extended else 3) + declared

    def _expect(self, attr: Any, cls: Any, code: int) -> Any:
        if type(attr) is not cls:
            _unsupported(f"scapy dissected attribute {code} as {type(attr).__name__}, not {cls.__name__}")
        return attr

    def _attribute_value(self, code: int, attr: Any, raw: bytes) -> object:
        if code == 1:
            return int(self._expect(attr, bgp.BGPPAOrigin, code).origin)
        if code == 2:
            cls = bgp.BGPPAAS4BytesPath if self.four_octet_as else bgp.BGPPAASPath
            return self._as_path(self._expect(attr, cls, code), len(raw), 4 if self.four_octet_as else 2)
        if code == 3:
            return _address(self._expect(attr, bgp.BGPPANextHop, code).next_hop)
        if code == 4:
            return int(self._expect(attr, bgp.BGPPAMultiExitDisc, code).med)
        if code == 5:
            return int(self._expect(attr, bgp.BGPPALocalPref, code).local_pref)
        if code == 6:
            self._expect(attr, bgp.BGPPAAtomicAggregate, code)
            return None
        if code in (7, 18):
            if code == 7 and not self.four_octet_as:
                agg = self._expect(attr, bgp.BGPPAAggregator, code)
            else:
                # Workaround: scapy has the 4-octet layout but does not use it for these codes.
                self.superseded.add(id(attr))
                agg = self._dissect(bgp.BGPPAAS4Aggregator, raw)
            return (int(agg.aggregator_asn), _address(agg.speaker_address))
        if code == 8:
            if not raw:
                self.superseded.add(id(attr))
                return []
            first = self._expect(attr, bgp.BGPPACommunity, code)
            communities = [int(c.community) for c in self._chain(first, bgp.BGPPACommunity)]
            if 4 * len(communities) != len(raw):
                _unsupported("scapy did not dissect every COMMUNITIES value")
            return communities
        if code == 9:
            return _address(self._expect(attr, bgp.BGPPAOriginatorID, code).originator_id)
        if code == 10:
            ids = [
                str(ipaddress.IPv4Address(int(i)))
                for i in self._expect(attr, bgp.BGPPAClusterList, code).cluster_list
            ]
            if 4 * len(ids) != len(raw):
                _unsupported("scapy did not dissect every CLUSTER_LIST value")
            return ids
        if code == 14:
            return self._mp_reach(self._expect(attr, bgp.BGPPAMPReachNLRI, code), len(raw))
        if code == 15:
            return self._mp_unreach(self._expect(attr, bgp.BGPPAMPUnreachNLRI, code), len(raw))
        if code == 16:
            return self._extended_communities(self._expect(attr, bgp.BGPPAExtComms, code), len(raw))
        if code == 17:
            return self._as4_path(self._expect(attr, bgp.BGPPAAS4Path, code), len(raw))
        if code == 32:
            values = [
                (int(seg.global_administrator), int(seg.local_data_part1), int(seg.local_data_part2))
                for first in self._expect(attr, bgp.BGPPALargeCommunity, code).segments
                for seg in self._chain(first, bgp.BGPLargeCommunitySegment)
            ]
            if 12 * len(values) != len(raw):
                _unsupported("scapy did not dissect every LARGE_COMMUNITY value")
            return values
        # Anything else: the raw value bytes, however scapy chose to dissect them.
        self.superseded.add(id(attr))
        return raw

    def _as_path(self, path: Any, size: int, asn_size: int) -> list[tuple[int, list[int]]]:
        segments = []
        used = 0
        for seg in path.segments:
            asns = [int(a) for a in seg.segment_value]
            if seg.segment_length != len(asns):
                _unsupported(f"scapy read {len(asns)} ASNs from an AS_PATH segment of {seg.segment_length}")
            used += 2 + asn_size * len(asns)
            segments.append((int(seg.segment_type), asns))
        if used != size:
            _unsupported(f"scapy's AS_PATH segments take {used} bytes, not {size}")
        return segments

    def _as4_path(self, path: Any, size: int) -> list[tuple[int, list[int]]]:
        if size == 0:
            self.superseded.add(id(path))
            return []
        asns = [int(a) for a in path.segment_value]
        if path.segment_length != len(asns) or 2 + 4 * len(asns) != size:
            _unsupported("AS4_PATH with more than one segment (scapy models a single segment)")
        return [(int(path.segment_type), asns)]

    def _mp_reach(self, mp: Any, size: int) -> dict[str, object]:
        afi, safi, nh_len = int(mp.afi), int(mp.safi), int(mp.nh_addr_len)
        if afi == 1 and nh_len == 4:
            next_hops = [_address(mp.nh_v4_addr)]
        elif afi == 2 and nh_len == 16:
            next_hops = [_address(mp.nh_v6_addr)]
        elif afi == 2 and nh_len == 32:
            next_hops = [_address(mp.nh_v6_global), _address(mp.nh_v6_link_local)]
        else:
            _unsupported(f"scapy does not dissect a {nh_len}-byte MP_REACH_NLRI next hop for AFI {afi}")
        nlri_len = size - 5 - nh_len
        if (afi, safi) == (2, 1):
            nlri = self._prefixes(mp.nlri, nlri_len, bgp.BGPNLRI_IPv6, "MP_REACH_NLRI")
        elif nlri_len:
            _unsupported(f"scapy does not dissect MP_REACH_NLRI NLRI for AFI {afi} SAFI {safi}")
        else:
            nlri = []
        return {"afi": afi, "safi": safi, "next_hops": next_hops, "nlri": nlri}

    def _mp_unreach(self, mp: Any, size: int) -> dict[str, object]:
        afi, safi = int(mp.afi), int(mp.safi)
        specific = mp.afi_safi_specific
        if size == 3:
            self.superseded.add(id(specific))
            withdrawn: list[str] = []
        elif (afi, safi) == (2, 1) and type(specific) is bgp.BGPPAMPUnreachNLRI_IPv6:
            withdrawn = self._prefixes(
                specific.withdrawn_routes, size - 3, bgp.BGPNLRI_IPv6, "MP_UNREACH_NLRI"
            )
        else:
            _unsupported(f"scapy does not dissect MP_UNREACH_NLRI routes for AFI {afi} SAFI {safi}")
        return {"afi": afi, "safi": safi, "withdrawn": withdrawn}

    def _extended_communities(self, ext: Any, size: int) -> list[bytes]:
        out = []
        for community in ext.extended_communities:
            value = community.value
            if value is None:
                _unsupported("scapy could not dissect an extended community value")
            if isinstance(value, Raw):
                self.allowed.add(id(value))  # an opaque value scapy has no class for
            item = bytes([community.type_high, community.type_low]) + bytes(value)
            if len(item) != 8:
                _unsupported(f"scapy decoded a {len(item)}-byte extended community")
            out.append(item)
        if 8 * len(out) != size:
            _unsupported("scapy did not dissect every extended community")
        return out

    # -- NOTIFICATION, ROUTE-REFRESH ---------------------------------------------------------------

    def _notification(self, n: Any, body_len: int) -> dict[str, object]:
        data = bytes(n.data or b"")
        if len(data) != body_len - 2:
            _unsupported("scapy did not return all of the NOTIFICATION data")
        return {"code": int(n.error_code), "subcode": int(n.error_subcode), "data": data}

    def _route_refresh(self, rr: Any, body_len: int) -> dict[str, object]:
        if body_len != 4:
            _unsupported("ROUTE-REFRESH with ORF entries or other data after AFI/subtype/SAFI")
        return {"afi": int(rr.afi), "subtype": int(rr.subtype), "safi": int(rr.safi)}
