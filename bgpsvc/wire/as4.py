"""Talking to RFC 6793 "OLD" (2-octet AS) speakers: AS_TRANS, AS4_PATH and AS4_AGGREGATOR (RFC 6793 §4.2)."""

from __future__ import annotations

from .aspath import As4Path, AsPath, AsPathSegment
from .attr_base import PathAttribute
from .attributes import Aggregator, As4Aggregator
from .constants import AS_TRANS, AttrType, SegmentType


def two_octet_path(path: AsPath) -> tuple[AsPath, As4Path | None]:
    """AS_PATH and AS4_PATH a NEW speaker sends to an OLD one (RFC 6793 §4.2.2).

    AS numbers above 65535 become AS_TRANS in AS_PATH; AS4_PATH, sent only when such a number is
    present, carries the true path without confederation segments.
    """
    if all(a <= 0xFFFF for a in path.asns):
        return path, None
    as4 = tuple(seg for seg in path.segments if seg.type in (SegmentType.AS_SEQUENCE, SegmentType.AS_SET))
    trans = AsPath(
        tuple(
            AsPathSegment(s.type, tuple(a if a <= 0xFFFF else AS_TRANS for a in s.asns))
            for s in path.segments
        )
    )
    return trans, As4Path(as4) if as4 else None


def merge_as4_path(as_path: AsPath, as4_path: As4Path | None) -> AsPath:
    """Reconstruct the true AS path from AS_PATH and AS4_PATH (RFC 6793 §4.2.3).

    If AS4_PATH is longer than AS_PATH it is ignored; otherwise the leading AS_PATH entries that
    AS4_PATH does not cover are kept and AS4_PATH is appended. Confederation segments in AS_PATH are
    kept in front, as the RFC's path-length counting excludes them. Segments are not merged.
    """
    if as4_path is None or not as4_path.segments:
        return as_path
    as_len = as_path.path_length()
    as4_len = as4_path.path_length()
    if as4_len > as_len:
        return as_path
    keep = as_len - as4_len
    head: list[AsPathSegment] = []
    for seg in as_path.segments:
        if keep == 0:
            if seg.type in (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET):
                head.append(seg)
            continue
        if seg.type in (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET):
            head.append(seg)
        elif seg.type == SegmentType.AS_SET:
            head.append(seg)
            keep -= 1
        elif len(seg.asns) <= keep:
            head.append(seg)
            keep -= len(seg.asns)
        else:
            head.append(AsPathSegment(seg.type, seg.asns[:keep]))
            keep = 0
    segments = [*head, *as4_path.segments]
    return AsPath(tuple(segments))


def _replace(
    attrs: tuple[PathAttribute, ...], drop: set[int], add: list[PathAttribute]
) -> tuple[PathAttribute, ...]:
    kept = [a for a in attrs if a.type_code not in drop]
    return tuple(sorted(kept + add, key=lambda a: a.type_code))


def split_as4(attrs: tuple[PathAttribute, ...]) -> tuple[PathAttribute, ...]:
    """Attributes as a NEW speaker sends them to an OLD (2-octet) peer (RFC 6793 §4.2.2).

    AS_PATH gets AS_TRANS in place of 4-octet AS numbers plus an AS4_PATH with the true path;
    AGGREGATOR likewise with AS4_AGGREGATOR. Encode the result with a 2-octet ``Negotiated``.
    """
    add: list[PathAttribute] = []
    drop: set[int] = {AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR}
    for a in attrs:
        if isinstance(a, AsPath):
            trans, as4 = two_octet_path(a)
            drop.add(AttrType.AS_PATH)
            add.append(trans)
            if as4 is not None:
                add.append(as4)
        elif isinstance(a, Aggregator) and a.asn > 0xFFFF:
            drop.add(AttrType.AGGREGATOR)
            add += [Aggregator(AS_TRANS, a.address), As4Aggregator(a.asn, a.address)]
    return _replace(attrs, drop, add)


def merge_as4(attrs: tuple[PathAttribute, ...]) -> tuple[PathAttribute, ...]:
    """The true attributes of a route received from an OLD (2-octet) peer (RFC 6793 §4.2.3).

    If AGGREGATOR carries an AS other than AS_TRANS, AS4_AGGREGATOR and AS4_PATH are ignored.
    """
    by_type = {a.type_code: a for a in attrs}
    as_path = by_type.get(AttrType.AS_PATH)
    as4_path = by_type.get(AttrType.AS4_PATH)
    agg = by_type.get(AttrType.AGGREGATOR)
    as4_agg = by_type.get(AttrType.AS4_AGGREGATOR)
    drop: set[int] = {AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR}
    add: list[PathAttribute] = []
    if isinstance(agg, Aggregator) and agg.asn != AS_TRANS:
        return _replace(attrs, drop, add)
    if isinstance(agg, Aggregator) and isinstance(as4_agg, As4Aggregator):
        drop.add(AttrType.AGGREGATOR)
        add.append(Aggregator(as4_agg.asn, as4_agg.address))
    if isinstance(as_path, AsPath) and isinstance(as4_path, As4Path):
        drop.add(AttrType.AS_PATH)
        add.append(merge_as4_path(as_path, as4_path))
    return _replace(attrs, drop, add)
