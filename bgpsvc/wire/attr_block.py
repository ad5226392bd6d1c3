"""The path attributes field of an UPDATE (RFC 4271 §4.3) and its RFC 7606 error handling.

Theory of operation: ``decode_attributes`` walks the field by each attribute's declared length, so one
bad attribute never desynchronises the next (RFC 7606 §4). Each attribute goes, in order, through the
checks below; the first that finds a problem decides its outcome:

1. TLV header underrun or overrun of the field (§4)               -> treat-as-withdraw, stop
2. repeated type code (§3(g))                                       -> discard; MP ones reset
3. type code not in ``ATTRIBUTES``                                  -> kept if optional, else reset
4. MP attributes: AFI/SAFI, flags, family (§5.3, §3(j), RFC 4760 §7) -> reset / disable / discard
5. flags conflict (§3(c))                                           -> treat-as-withdraw or stronger
6. not acceptable from this peer (``_DISCARDED_FROM``)              -> ignored or discarded
7. the class's ``decode_value``                                     -> its ``MALFORMED`` handling

An attribute whose flags are exactly its type's, and that no peer rule touches, cannot fail 3-6 and
goes straight to 7 (the common case, kept fast). What it decodes to is interned by its octets, per
session (``interned_for``): the same octets again are one dict lookup and the same frozen object. In a
full table most ORIGIN, NEXT_HOP, AS_PATH and MED octets repeat; on the 200k-prefix table of
bench/codec.py it takes decoding from 54 to 24 us per UPDATE (same run, shared and loaded machine).

Soft outcomes (attribute discard, treat-as-withdraw) are returned as ``UpdateMessageError`` values
that name the attribute, the handling, the RFC sections and a reason; the session logs each once.
Session reset and AFI/SAFI disable raise. Nothing here logs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .attr_base import (
    EXTENDED_LENGTH,
    OPTIONAL,
    OPTIONAL_TRANSITIVE,
    PARTIAL,
    TRANSITIVE,
    Malformed,
    PathAttribute,
    keep_wire,
)
from .attr_errors import discarded, header_underrun, malformed, missing_mandatory, overrun, repeated
from .attributes import ATTRIBUTES, UnknownAttribute
from .constants import PREFIX_FAMILIES, AttrType, attr_name
from .errors import Handling, UpdateMessageError, UpdateSubcode
from .mp import MpReachNlri, mp_family
from .negotiated import DEFAULT, Negotiated

_DISCARD = Handling.ATTRIBUTE_DISCARD
_WITHDRAW = Handling.TREAT_AS_WITHDRAW
_DISABLE = Handling.AFI_SAFI_DISABLE
_RESET = Handling.SESSION_RESET
_MP_TYPES = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)
_MP_REACH_BIT = 1 << AttrType.MP_REACH_NLRI
#: The type codes seen in a block are kept as a bit mask (bit t for type code t): an int, where a set
#: was one more GC-tracked object per UPDATE.
_MANDATORY_WITH_NLRI_BITS = (1 << AttrType.ORIGIN) | (1 << AttrType.AS_PATH) | (1 << AttrType.NEXT_HOP)
_FLAG_BITS = OPTIONAL | TRANSITIVE  # the bits that must match the attribute type (§3(c))

Rule = tuple[Callable[[Negotiated], bool], str | None, str]
#: Attributes this peer must not send, dropped whatever they hold: type -> (applies to the session?,
#: RFC section or None to drop silently, reason). RFC 4271 §5.1.5 says LOCAL_PREF from an external
#: peer is "ignored", so it is dropped without an error; the others are attribute discard.
_DISCARDED_FROM: dict[int, Rule] = {
    AttrType.LOCAL_PREF: (lambda ctx: ctx.ebgp, None, "LOCAL_PREF from an external peer"),
    AttrType.ORIGINATOR_ID: (lambda ctx: ctx.ebgp, "RFC 7606 §7.9", "ORIGINATOR_ID from an external peer"),
    AttrType.CLUSTER_LIST: (lambda ctx: ctx.ebgp, "RFC 7606 §7.10", "CLUSTER_LIST from an external peer"),
    # A NEW speaker discards these when they come from another NEW speaker.
    AttrType.AS4_PATH: (lambda ctx: ctx.four_octet_as, "RFC 6793 §6", "AS4_PATH from a 4-octet AS speaker"),
    AttrType.AS4_AGGREGATOR: (
        lambda ctx: ctx.four_octet_as,
        "RFC 6793 §6",
        "AS4_AGGREGATOR from a 4-octet AS speaker",
    ),
}

_FLAGS_MASK = OPTIONAL | TRANSITIVE | PARTIAL  # the low four bits are ignored (RFC 4271 §4.3)
#: Types whose decoding depends only on their value once the flags are exactly the type's own:
#: type -> (flags, class, its bound ``decode_value``, whether its octets depend on the AS width), so
#: that the hot loop does one lookup.
_PLAIN: dict[int, tuple[int, type[PathAttribute], Callable[[bytes, Negotiated], PathAttribute], bool]] = {
    code: (cls.FLAGS, cls, cls.decode_value, cls.AS_WIDTH_DEPENDENT)
    for code, cls in ATTRIBUTES.items()
    if code not in _MP_TYPES and code not in _DISCARDED_FROM
}

#: One attribute's outcome: kept, an error to report (soft handling), or nothing (dropped silently).
Outcome = PathAttribute | UpdateMessageError | None


def encode_attributes(attributes: Sequence[PathAttribute], ctx: Negotiated = DEFAULT) -> bytes:
    """The path attributes field (RFC 4271 §4.3)."""
    return b"".join([a.encode(ctx) for a in attributes])


# Decoded attributes interned by their octets (header included), one table per Negotiated object
# (AS_PATH and AGGREGATOR decode differently per session). A table repeats the same ORIGIN, NEXT_HOP,
# AS_PATH and community sets across many attribute blocks that differ elsewhere: a hit is one dict
# lookup instead of a parse, and equal attributes become one shared frozen object. Only attributes
# that decoded cleanly on the plain path (below) are stored, so a hit implies the same outcome.
# Bound per session: ``ctx.intern_max`` (negotiated.py says how it is sized). A full table takes no
# new entries (until the session ends and its table goes): what came first, the common ORIGIN, NEXT_HOP
# and community octets, stays. Clearing it wholesale instead cost a refill with more misses and more
# GC-tracked survivors: 1M-prefix full table, 11.8-13.7 -> 7.6-9.2 us per UPDATE (min of 3, two
# alternating runs, 2^17 entries); halving it was slower still.
_INTERNED: dict[int, tuple[Negotiated, dict[bytes, PathAttribute]]] = {}


def interned_for(ctx: Negotiated) -> dict[bytes, PathAttribute]:
    """The intern table of ``ctx`` (keyed by identity: hashing a Negotiated per UPDATE costs more)."""
    entry = _INTERNED.get(id(ctx))
    if entry is None or entry[0] is not ctx:
        if len(_INTERNED) > 64:
            _INTERNED.clear()
        entry = (ctx, {})
        _INTERNED[id(ctx)] = entry
    return entry[1]


def clear_interned() -> None:
    """Forget interned attributes (benchmarks start cold with this)."""
    _INTERNED.clear()


def decode_attributes(
    block: bytes, ctx: Negotiated = DEFAULT, has_nlri: bool = False
) -> tuple[tuple[PathAttribute, ...], list[UpdateMessageError]]:
    """Parse a path attributes field (RFC 4271 §4.3, RFC 7606 §3-§5, §7).

    Returns the good attributes and the soft errors found (not yet folded). Raises for session reset
    and AFI/SAFI disable. ``has_nlri``: the UPDATE carries classic NLRI (NEXT_HOP is then mandatory).
    """
    attrs, errors, _ = decode_block(block, ctx, has_nlri, interned_for(ctx))
    return attrs, list(errors)


class Lead:
    """The leading attributes of a session's last attribute block that were all interned: their
    octets, what they decoded to, and the type code mask after them (see ``decode_block``)."""

    __slots__ = ("attrs", "octets", "seen")

    def __init__(self) -> None:
        self.octets = b""
        self.attrs: tuple[PathAttribute, ...] = ()
        self.seen = 0

    def record(self, block: bytes, end: int, attrs: list[PathAttribute], seen: int) -> None:
        """Keep ``block``'s leading interned attributes, those before ``end``, unless there are none."""
        if end:
            self.octets = block[:end]
            self.attrs = tuple(attrs)
            self.seen = seen


def decode_block(
    block: bytes,
    ctx: Negotiated,
    has_nlri: bool,
    interned: dict[bytes, PathAttribute],
    lead: Lead | None = None,
) -> tuple[tuple[PathAttribute, ...], tuple[UpdateMessageError, ...], int]:
    """``decode_attributes`` with the session's intern table given; also returns the type codes seen,
    as a bit mask (bit ``t`` for type code ``t``). This loop takes only attributes that are interned
    or plain (module docstring) and decode cleanly; at the first other one ``_decode_rest`` takes the
    rest of the field with every check. An int mask, no errors list and no header-underrun tests here
    took a fulltable UPDATE (bench/codec.py) from 11.8 to 9.9 us, with update.py's block cache.

    ``lead``, the session's (update.py keeps one per session): a block that starts with the octets of
    the last block's leading interned attributes reuses what they decoded to; the first miss of a
    block that does not records its own. Same octets from the start, same attributes: each is a whole
    TLV of the bytes compared, decoded cleanly, and the duplicate mask after them is the one kept.
    Blocks that differ only after ORIGIN, AS_PATH and NEXT_HOP (bench/codec.py distinct, the shape of
    per-Service communities) took 2.19 -> 1.80 us per block; the full table, whose blocks mostly share
    only ORIGIN, 2.56 -> 2.53 (min of 31 alternating runs).
    """
    out: list[PathAttribute]
    if lead is not None and lead.octets and block.startswith(lead.octets):
        # The session's last leading attributes again: one comparison instead of a lookup each.
        out = list(lead.attrs)
        seen = lead.seen
        i = len(lead.octets)
        lead = None
    else:
        out = []
        seen = 0
        i = 0
    n = len(block)
    try:
        while i < n:
            # IndexError here is a header underrun, for _decode_rest to report.
            end = i + 3 + block[i + 2]
            type_code = block[i + 1]
            if seen >> type_code & 1:
                break
            raw = block[i:end]
            attr = interned.get(raw)
            if attr is None:
                # Checked only on a miss: an interned key is a whole attribute whose length octets
                # match its size, which a raw cut short by the field's end, or read with a 1-octet
                # length where Extended Length says 2, never does (1.63 -> 1.38 us per all-hit
                # fulltable block).
                if lead is not None:
                    lead.record(block, i, out, seen)
                    lead = None
                flags = raw[0]
                if end > n or flags & EXTENDED_LENGTH:
                    break
                plain = _PLAIN.get(type_code)
                if plain is None or plain[0] != flags & _FLAGS_MASK:
                    break
                try:
                    attr = plain[2](raw[3:], ctx)
                except Malformed:
                    break  # _decode_rest decodes it again and reports it
                if len(interned) < ctx.intern_max:
                    if flags == plain[0] and (ctx.four_octet_as or not plain[3]):
                        # The octets read are the attribute's encoding (attr_base.py): keep them, as
                        # the table does. Past the table's bound none are kept: 1M prefixes decoded
                        # and held take +5 MB over no kept octets (230 MB), where keeping all took +24.
                        keep_wire(attr, raw)
                    interned[raw] = attr
            seen |= 1 << type_code
            out.append(attr)
            i = end
        else:
            if has_nlri:
                if seen & _MANDATORY_WITH_NLRI_BITS == _MANDATORY_WITH_NLRI_BITS:
                    return tuple(out), (), seen
            elif not seen & _MP_REACH_BIT:
                return tuple(out), (), seen
    except IndexError:
        pass
    return _decode_rest(block, i, out, seen, ctx=ctx, has_nlri=has_nlri, interned=interned)


def _decode_rest(
    block: bytes,
    i: int,
    out: list[PathAttribute],
    seen: int,
    *,
    ctx: Negotiated,
    has_nlri: bool,
    interned: dict[bytes, PathAttribute],
) -> tuple[tuple[PathAttribute, ...], tuple[UpdateMessageError, ...], int]:
    """The attributes from offset ``i`` on, with every check; ``out`` and ``seen`` hold those before."""
    errors: list[UpdateMessageError] = []
    n = len(block)
    while i < n:
        # The TLV header (RFC 4271 §4.3), read inline.
        if i + 3 > n:
            errors.append(header_underrun(block, i))
            break
        flags = block[i]
        if flags & EXTENDED_LENGTH:
            if i + 4 > n:
                errors.append(header_underrun(block, i))
                break
            start = i + 4
            end = start + ((block[i + 2] << 8) | block[i + 3])
        else:
            start = i + 3
            end = start + block[i + 2]
        if end > n:
            # The last attribute overruns the field; the NLRI after it can still be found (§4).
            errors.append(overrun(block[i:], block[i + 1]))
            break
        raw = block[i:end]
        i = end
        type_code = raw[1]
        if seen >> type_code & 1:
            errors.append(repeated(type_code, raw))
            continue
        seen |= 1 << type_code
        attr = interned.get(raw)
        if attr is not None:
            out.append(attr)
            continue
        plain = _PLAIN.get(type_code)
        if plain is not None and plain[0] == flags & _FLAGS_MASK:
            # A recognised attribute with exactly its type's flags and no rule that depends on the
            # session: decoded without the checks of _decode_one.
            try:
                attr = plain[2](block[start:end], ctx)
            except Malformed as exc:
                errors.append(malformed(plain[1], exc, raw))
                continue
            if len(interned) < ctx.intern_max:
                if flags == plain[0] and (ctx.four_octet_as or not plain[3]):
                    keep_wire(attr, raw)
                interned[raw] = attr
            out.append(attr)
            continue
        outcome = _decode_one(flags, type_code, raw, block[start:end], ctx)
        if isinstance(outcome, UpdateMessageError):
            errors.append(outcome)
        elif outcome is not None:
            out.append(outcome)
    if has_nlri:
        if seen & _MANDATORY_WITH_NLRI_BITS != _MANDATORY_WITH_NLRI_BITS:
            errors += missing_mandatory(seen, True)
    elif seen & _MP_REACH_BIT and reaches(out):
        errors += missing_mandatory(seen, False)
    return tuple(out), tuple(errors), seen


def _decode_one(flags: int, type_code: int, raw: bytes, value: bytes, ctx: Negotiated) -> Outcome:
    """One attribute, dispatched through the registry; ``raw`` is header and value (RFC 4271 §6.3 Data)."""
    cls = ATTRIBUTES.get(type_code)
    if cls is None:
        return _unrecognised(flags, type_code, raw, value)
    if type_code in _MP_TYPES:
        error = _mp_precheck(cls, flags, raw, value)
        if error is not None:
            return error
    elif _flags_conflict(flags, cls.FLAGS):
        # §3(c): treat-as-withdraw unless the attribute's own handling of malformed values is stronger.
        return UpdateMessageError(
            UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
            raw,
            f"bad flags {flags:#04x} for {attr_name(type_code)}",
            handling=max(cls.MALFORMED, _WITHDRAW),
            attr_type=type_code,
            rfc="RFC 7606 §3(c)",
        )
    else:
        rule = _DISCARDED_FROM.get(type_code)
        if rule is not None and rule[0](ctx):
            _, rfc, reason = rule
            return None if rfc is None else discarded(type_code, raw, reason, rfc)
    try:
        return cls.decode_value(value, ctx)
    except Malformed as exc:
        return malformed(cls, exc, raw)


def _flags_conflict(flags: int, expected: int) -> bool:
    """Optional/Transitive bits other than the type's, or Partial where only optional transitive
    attributes may carry it (RFC 4271 §4.3, RFC 7606 §3(c))."""
    return (flags & _FLAG_BITS) != expected or bool(flags & PARTIAL and expected != OPTIONAL_TRANSITIVE)


def _mp_precheck(cls: type[PathAttribute], flags: int, raw: bytes, value: bytes) -> UpdateMessageError | None:
    """MP_REACH/MP_UNREACH before their value is parsed (RFC 7606 §5.3, §3(j); RFC 4760 §7)."""
    type_code = int(cls.TYPE)
    family = mp_family(value)
    if family is None:
        # Not even the AFI/SAFI can be read, so no family can be disabled.
        raise UpdateMessageError(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
            raw,
            f"{attr_name(type_code)} too short to name its AFI/SAFI",
            handling=_RESET,
            attr_type=type_code,
            rfc="RFC 7606 §5.3",
        )
    if _flags_conflict(flags, cls.FLAGS):
        raise UpdateMessageError(
            UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
            raw,
            f"bad flags {flags:#04x} for {attr_name(type_code)}",
            handling=_DISABLE,
            attr_type=type_code,
            rfc="RFC 7606 §5.3, §3(j)",
        )
    if family not in PREFIX_FAMILIES:
        # A family this codec does not decode, and so never negotiates: ignore it.
        return UpdateMessageError(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
            raw,
            f"family {family} not supported",
            handling=_DISCARD,
            attr_type=type_code,
            rfc="RFC 4760 §7",
        )
    return None


def _unrecognised(flags: int, type_code: int, raw: bytes, value: bytes) -> Outcome:
    """An unknown optional attribute is kept byte-exact; an unknown well-known one resets (RFC 4271 §6.3)."""
    if not flags & OPTIONAL:
        raise UpdateMessageError(
            UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
            raw,
            f"unrecognised well-known attribute {type_code}",
            handling=_RESET,
            attr_type=type_code,
            rfc="RFC 4271 §6.3",
        )
    return UnknownAttribute(type_code, flags & 0xE0, value)


def reaches(attrs: Sequence[PathAttribute]) -> bool:
    """Some MP_REACH_NLRI carries reachable prefixes."""
    return any(isinstance(a, MpReachNlri) and a.nlri for a in attrs)
