"""UPDATE messages (RFC 4271 §4.3) with revised error handling (RFC 7606) and End-of-RIB (RFC 4724 §2).

Theory of operation: ``decode_update`` always advances by each attribute's declared length, so one bad
attribute never desynchronises the next. Each problem becomes an ``UpdateMessageError`` with its RFC 7606
handling; they fold with ``max()``. Session-reset and AFI/SAFI-disable raise. Treat-as-withdraw returns
an ``Update`` whose reachable prefixes have been moved to the withdrawn side, and attribute-discard
returns one without the bad attributes; either way ``Update.errors`` says what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from struct import Struct

from .attr_base import OPTIONAL, OPTIONAL_TRANSITIVE, PARTIAL, Malformed, PathAttribute
from .attributes import ATTRIBUTES, MpReachNlri, MpUnreachNlri, UnknownAttribute
from .constants import HEADER_SIZE, IPV4_UNICAST, MARKER, PREFIX_FAMILIES, AttrType, Family, MessageType
from .errors import Handling, UpdateMessageError, UpdateSubcode
from .mp import NlriError, mp_family
from .negotiated import DEFAULT, Negotiated
from .prefix import Prefix, decode_prefixes, encode_prefixes

_U16 = Struct(">H")
_HDR = Struct(">16sHB")
_MANDATORY = (AttrType.ORIGIN, AttrType.AS_PATH)
_UPDATE = MessageType.UPDATE


@dataclass(frozen=True, slots=True)
class Update:
    """An UPDATE (RFC 4271 §4.3): IPv4 unicast in the classic fields, other families in MP attributes."""

    withdrawn: tuple[Prefix, ...] = ()
    attributes: tuple[PathAttribute, ...] = ()
    nlri: tuple[Prefix, ...] = ()
    #: Non-fatal RFC 7606 errors found while decoding (not part of equality).
    errors: tuple[UpdateMessageError, ...] = field(default=(), compare=False)

    TYPE = _UPDATE

    def __post_init__(self) -> None:
        for p in self.withdrawn:
            if p[0] != 1:
                raise ValueError(f"classic withdrawn routes are IPv4 only, got {p}")
        for p in self.nlri:
            if p[0] != 1:
                raise ValueError(f"classic NLRI are IPv4 only, got {p}")

    def get(self, cls: type[PathAttribute]) -> PathAttribute | None:
        """The attribute of ``cls``'s type, if present."""
        for a in self.attributes:
            if a.type_code == cls.TYPE:
                return a
        return None

    @property
    def handling(self) -> Handling | None:
        """Strongest RFC 7606 handling applied while decoding, or None if the message was clean."""
        return max((e.handling for e in self.errors), default=None)

    def announced(self) -> list[tuple[Family, Prefix]]:
        """Every reachable prefix with its family (classic NLRI and MP_REACH_NLRI)."""
        out = [(IPV4_UNICAST, p) for p in self.nlri]
        for a in self.attributes:
            if isinstance(a, MpReachNlri):
                fam = a.family
                out += [(fam, p) for p in a.nlri]
        return out

    def withdrawals(self) -> list[tuple[Family, Prefix]]:
        """Every withdrawn prefix with its family (classic field and MP_UNREACH_NLRI)."""
        out = [(IPV4_UNICAST, p) for p in self.withdrawn]
        for a in self.attributes:
            if isinstance(a, MpUnreachNlri):
                fam = a.family
                out += [(fam, p) for p in a.withdrawn]
        return out

    @property
    def end_of_rib(self) -> Family | None:
        """The family this UPDATE marks End-of-RIB for, if it is one (RFC 4724 §2)."""
        if self.withdrawn or self.nlri:
            return None
        if not self.attributes:
            return IPV4_UNICAST
        if len(self.attributes) == 1:
            a = self.attributes[0]
            if isinstance(a, MpUnreachNlri) and not a.withdrawn:
                return a.family
        return None


def end_of_rib(family: Family = IPV4_UNICAST) -> Update:
    """The End-of-RIB marker for ``family`` (RFC 4724 §2)."""
    if family == IPV4_UNICAST:
        return Update()
    return Update(attributes=(MpUnreachNlri(family.afi, family.safi, ()),))


def encode_attributes(
    attributes: tuple[PathAttribute, ...] | list[PathAttribute], ctx: Negotiated = DEFAULT
) -> bytes:
    """The path attributes field (RFC 4271 §4.3)."""
    return b"".join([a.encode(ctx) for a in attributes])


def frame(msg_type: int, body: bytes) -> bytes:
    """Prefix ``body`` with the 19-octet header (RFC 4271 §4.1)."""
    return _HDR.pack(MARKER, HEADER_SIZE + len(body), msg_type) + body


def encode_update(update: Update, ctx: Negotiated = DEFAULT) -> bytes:
    """One UPDATE message; raises ``ValueError`` if it exceeds the negotiated size (use ``pack_updates``)."""
    add_path = IPV4_UNICAST in ctx.add_path_tx
    withdrawn = encode_prefixes(update.withdrawn, add_path)
    attrs = encode_attributes(update.attributes, ctx)
    body = b"".join(
        (
            _U16.pack(len(withdrawn)),
            withdrawn,
            _U16.pack(len(attrs)),
            attrs,
            encode_prefixes(update.nlri, add_path),
        )
    )
    if HEADER_SIZE + len(body) > ctx.max_message_size:
        raise ValueError(f"UPDATE of {HEADER_SIZE + len(body)} octets exceeds {ctx.max_message_size}")
    return frame(_UPDATE, body)


# Decoded attribute blocks, per Negotiated object, keyed by (bytes, has classic NLRI). A table transfer
# repeats the same block in every UPDATE; sharing one frozen result saves both time and memory.
_CacheEntry = tuple[tuple[PathAttribute, ...], tuple[UpdateMessageError, ...]]
_CACHE: dict[int, tuple[Negotiated, dict[tuple[bytes, bool], _CacheEntry]]] = {}
_CACHE_MAX = 4096
_MP_TYPES = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)
_AS4_TYPES = (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)


def _error(
    subcode: int, data: bytes, reason: str, handling: Handling, attr_type: int | None
) -> UpdateMessageError:
    return UpdateMessageError(subcode, data, reason, handling, attr_type)


def decode_attributes(
    block: bytes, ctx: Negotiated = DEFAULT, has_nlri: bool = False
) -> tuple[tuple[PathAttribute, ...], list[UpdateMessageError]]:
    """Parse a path attributes field (RFC 4271 §4.3, RFC 7606 §3-§5).

    Returns the good attributes and the errors found (not yet folded). Raises for session reset and
    AFI/SAFI disable (an MP attribute whose NLRI cannot be located).
    """
    out: list[PathAttribute] = []
    errors: list[UpdateMessageError] = []
    seen: set[int] = set()
    registry = ATTRIBUTES
    n = len(block)
    i = 0
    while i < n:
        at = i
        if n - i < 3:
            # RFC 7606 §4: too few octets left for an attribute header.
            errors.append(
                _error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    b"",
                    "attribute header underrun",
                    Handling.TREAT_AS_WITHDRAW,
                    None,
                )
            )
            break
        flags = block[i]
        type_code = block[i + 1]
        if flags & 0x10:
            if n - i < 4:
                errors.append(
                    _error(
                        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                        b"",
                        "attribute header underrun",
                        Handling.TREAT_AS_WITHDRAW,
                        type_code,
                    )
                )
                break
            start = i + 4
            end = start + ((block[i + 2] << 8) | block[i + 3])
        else:
            start = i + 3
            end = start + block[i + 2]
        if end > n:
            # RFC 7606 §4: the last attribute overruns the field; the NLRI can still be found.
            errors.append(
                _error(
                    UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                    block[at:n],
                    "attribute overruns the path attributes field",
                    Handling.TREAT_AS_WITHDRAW,
                    type_code,
                )
            )
            break
        i = end
        if type_code in seen:
            if type_code in _MP_TYPES:
                raise _error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    b"",
                    f"attribute {type_code} repeated",
                    Handling.SESSION_RESET,
                    type_code,
                )
            # RFC 7606 §3(g): keep the first, discard the others.
            errors.append(
                _error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    block[at:end],
                    f"attribute {type_code} repeated",
                    Handling.ATTRIBUTE_DISCARD,
                    type_code,
                )
            )
            continue
        seen.add(type_code)
        value = block[start:end]
        cls = registry.get(type_code)
        if cls is None:
            if not flags & OPTIONAL:
                raise _error(
                    UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    block[at:end],
                    f"unrecognised well-known attribute {type_code}",
                    Handling.SESSION_RESET,
                    type_code,
                )
            out.append(UnknownAttribute(type_code, flags & 0xE0, value))
            continue
        is_mp = type_code in _MP_TYPES
        expected = cls.FLAGS
        flag_error = (flags & 0xC0) != expected or bool(flags & PARTIAL and expected != OPTIONAL_TRANSITIVE)
        if is_mp:
            family = mp_family(value)
            if family is None:
                raise _error(
                    UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                    block[at:end],
                    "MP attribute too short to name its AFI/SAFI",
                    Handling.SESSION_RESET,
                    type_code,
                )
            if flag_error:
                # RFC 7606 §5.3/§3(j): MP attributes with flags inconsistent with RFC 4760 are incorrect.
                raise _error(
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                    block[at:end],
                    f"bad flags {flags:#04x} for attribute {type_code}",
                    Handling.AFI_SAFI_DISABLE,
                    type_code,
                )
            if family not in PREFIX_FAMILIES:
                # A family this codec does not decode (and so never negotiates): ignore it (RFC 4760 §7).
                errors.append(
                    _error(
                        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                        block[at:end],
                        f"family {family} not supported",
                        Handling.ATTRIBUTE_DISCARD,
                        type_code,
                    )
                )
                continue
        elif flag_error:
            # RFC 7606 §3(c): a flags conflict makes the attribute malformed, handled as treat-as-withdraw
            # unless the attribute's own handling of malformed values is stronger.
            errors.append(
                _error(
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                    block[at:end],
                    f"bad flags {flags:#04x} for attribute {type_code}",
                    max(cls.MALFORMED, Handling.TREAT_AS_WITHDRAW),
                    type_code,
                )
            )
            continue
        elif ctx.ebgp and type_code == AttrType.LOCAL_PREF:
            # RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored, well-formed or not.
            continue
        elif ctx.four_octet_as and type_code in _AS4_TYPES:
            # RFC 6793 §6: a NEW speaker discards AS4_PATH/AS4_AGGREGATOR received from a NEW speaker.
            errors.append(
                _error(
                    UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                    block[at:end],
                    f"attribute {type_code} from a 4-octet AS speaker",
                    Handling.ATTRIBUTE_DISCARD,
                    type_code,
                )
            )
            continue
        try:
            attr = cls.decode_value(value, ctx)
        except NlriError as exc:
            raise _error(exc.subcode, block[at:end], exc.reason, exc.handling, type_code) from None
        except Malformed as exc:
            errors.append(
                _error(
                    exc.subcode,
                    exc.data if exc.data is not None else block[at:end],
                    exc.reason,
                    cls.MALFORMED,
                    type_code,
                )
            )
            continue
        out.append(attr)
    # RFC 7606 §3(d): missing well-known mandatory attributes when there is something to reach.
    if has_nlri or _reaches(out):
        needed: tuple[int, ...] = _MANDATORY + ((AttrType.NEXT_HOP,) if has_nlri else ())
        for t in needed:
            if t not in seen:
                errors.append(
                    _error(
                        UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
                        bytes((t,)),
                        f"missing well-known attribute {t}",
                        Handling.TREAT_AS_WITHDRAW,
                        t,
                    )
                )
    return tuple(out), errors


def _cache_for(ctx: Negotiated) -> dict[tuple[bytes, bool], _CacheEntry]:
    # Keyed by identity: hashing a Negotiated for every UPDATE would cost more than the lookup saves.
    entry = _CACHE.get(id(ctx))
    if entry is None or entry[0] is not ctx:
        if len(_CACHE) > 64:
            _CACHE.clear()
        entry = (ctx, {})
        _CACHE[id(ctx)] = entry
    return entry[1]


def _reaches(attrs: Sequence[PathAttribute]) -> bool:
    return any(isinstance(a, MpReachNlri) and a.nlri for a in attrs)


def _has_mp(attrs: tuple[PathAttribute, ...]) -> bool:
    for a in attrs:
        t = type(a)
        if t is MpReachNlri or t is MpUnreachNlri:
            return True
    return False


def clear_cache() -> None:
    """Forget decoded attribute blocks (benchmarks start cold with this)."""
    _CACHE.clear()


def decode_update(body: bytes, ctx: Negotiated = DEFAULT) -> Update:
    """Decode an UPDATE body (after the header), applying RFC 7606; raises ``UpdateMessageError`` to reset."""
    n = len(body)
    if n < 4:
        raise UpdateMessageError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "UPDATE too short")
    wlen = (body[0] << 8) | body[1]
    if 4 + wlen > n:
        raise UpdateMessageError(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "withdrawn routes length overruns"
        )
    alen = (body[2 + wlen] << 8) | body[3 + wlen]
    if 4 + wlen + alen > n:
        raise UpdateMessageError(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "path attribute length overruns"
        )
    add_path = IPV4_UNICAST in ctx.add_path_rx if ctx.add_path_rx else False
    withdrawn = decode_prefixes(body[2 : 2 + wlen], 1, add_path) if wlen else []
    nlri = decode_prefixes(body[4 + wlen + alen :], 1, add_path) if 4 + wlen + alen < n else []
    block = body[4 + wlen : 4 + wlen + alen]
    has_nlri = bool(nlri)
    cache = _cache_for(ctx)
    key = (block, has_nlri)
    cached = cache.get(key)
    if cached is not None:
        attrs, errs = cached
    else:
        attrs, err_list = decode_attributes(block, ctx, has_nlri)
        errs = tuple(err_list)
        # MP attributes carry NLRI, which differ per message: caching those blocks would only churn.
        if not _has_mp(attrs):
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[key] = (attrs, errs)
    if not errs:
        return _trusted(tuple(withdrawn), attrs, tuple(nlri), ())
    worst = max(errs, key=lambda e: e.handling)
    if worst.handling >= Handling.AFI_SAFI_DISABLE:
        raise worst
    if worst.handling == Handling.TREAT_AS_WITHDRAW and not has_nlri and not _reaches(attrs):
        # RFC 7606 §5.2: with no reachable NLRI there is nothing to treat as withdrawn, so any error
        # stronger than attribute-discard resets the session.
        raise UpdateMessageError(
            worst.subcode, worst.data, worst.reason, Handling.SESSION_RESET, worst.attr_type
        )
    if worst.handling == Handling.TREAT_AS_WITHDRAW:
        return _treat_as_withdraw(withdrawn, attrs, nlri, errs)
    return _trusted(tuple(withdrawn), attrs, tuple(nlri), errs)


def _trusted(
    withdrawn: tuple[Prefix, ...],
    attrs: tuple[PathAttribute, ...],
    nlri: tuple[Prefix, ...],
    errors: tuple[UpdateMessageError, ...],
) -> Update:
    # The decoder has already checked every field; skip __post_init__'s per-prefix walk.
    u = object.__new__(Update)
    object.__setattr__(u, "withdrawn", withdrawn)
    object.__setattr__(u, "attributes", attrs)
    object.__setattr__(u, "nlri", nlri)
    object.__setattr__(u, "errors", errors)
    return u


def _treat_as_withdraw(
    withdrawn: list[Prefix],
    attrs: tuple[PathAttribute, ...],
    nlri: list[Prefix],
    errors: tuple[UpdateMessageError, ...],
) -> Update:
    """RFC 7606 §2: every prefix the UPDATE names becomes a withdrawal; no attributes survive."""
    by_family: dict[Family, list[Prefix]] = {}
    for a in attrs:
        if isinstance(a, MpReachNlri):
            by_family.setdefault(a.family, []).extend(a.nlri)
        elif isinstance(a, MpUnreachNlri):
            by_family.setdefault(a.family, []).extend(a.withdrawn)
    mp = tuple(MpUnreachNlri(f.afi, f.safi, tuple(p)) for f, p in by_family.items())
    return _trusted(tuple(withdrawn) + tuple(nlri), mp, (), errors)
