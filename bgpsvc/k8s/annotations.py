"""Per-Service BGP attributes from annotations, merged over the route class's attributes.

``bgpsvc.io/communities: "64512:100, NO_EXPORT"``, ``bgpsvc.io/large-communities: "64512:1:2"``,
``bgpsvc.io/local-pref: "200"`` and ``bgpsvc.io/med: "10"``. Communities are added to the class's;
LOCAL_PREF and MED replace the class's value. A Service whose annotations do not parse is advertised
with the class attributes alone (never dropped), and the problem is reported (log, ``bgpsvc plan``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..rib import RouteAttrs
from ..wire import community, large_community
from ..wire.communities import LargeCommunity

COMMUNITIES = "bgpsvc.io/communities"
LARGE_COMMUNITIES = "bgpsvc.io/large-communities"
LOCAL_PREF = "bgpsvc.io/local-pref"
MED = "bgpsvc.io/med"
ATTRIBUTE_ANNOTATIONS = (COMMUNITIES, LARGE_COMMUNITIES, LOCAL_PREF, MED)

Annotations = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ServiceAttrs:
    """What a Service's annotations add to (communities) or replace in (LOCAL_PREF, MED) its routes."""

    communities: tuple[int, ...] = ()
    large_communities: tuple[LargeCommunity, ...] = ()
    local_pref: int | None = None
    med: int | None = None

    def merge(self, base: RouteAttrs) -> RouteAttrs:
        """``base`` with these attributes merged over it (RFC 1997 / RFC 8092 sets, RFC 4271 §5.1.4-5)."""
        return replace(
            base,
            communities=(*base.communities, *self.communities),
            large_communities=(*base.large_communities, *self.large_communities),
            local_pref=self.local_pref if self.local_pref is not None else base.local_pref,
            med=self.med if self.med is not None else base.med,
        )

    def combine(self, other: ServiceAttrs) -> ServiceAttrs:
        """Two Services on one route: communities of both; the first one's LOCAL_PREF/MED win."""
        return ServiceAttrs(
            tuple(sorted({*self.communities, *other.communities})),
            tuple(sorted({*self.large_communities, *other.large_communities})),
            self.local_pref if self.local_pref is not None else other.local_pref,
            self.med if self.med is not None else other.med,
        )


def _items(text: str) -> list[str]:
    return [x for x in text.replace(",", " ").split() if x]


def _u32(text: str, what: str) -> int:
    if not text.strip().isdigit() or int(text) > 0xFFFFFFFF:
        raise ValueError(f"{what} {text!r} is not a number 0..4294967295")
    return int(text)


def _parse(annotations: Annotations) -> ServiceAttrs | None:
    """The Service's attributes (None: no attribute annotation); ValueError naming the annotation."""
    found = {k: v for k, v in annotations if k in ATTRIBUTE_ANNOTATIONS}
    if not found:
        return None
    out = ServiceAttrs()
    for key, value in sorted(found.items()):
        try:
            if key == COMMUNITIES:
                out = replace(out, communities=tuple(sorted({community(c) for c in _items(value)})))
            elif key == LARGE_COMMUNITIES:
                larges = {large_community(c) for c in _items(value)}
                out = replace(out, large_communities=tuple(sorted(larges)))
            elif key == LOCAL_PREF:
                out = replace(out, local_pref=_u32(value, "LOCAL_PREF"))
            else:
                out = replace(out, med=_u32(value, "MED"))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return out


_CACHE: dict[Annotations, ServiceAttrs | str | None] = {}
#: Distinct annotation sets are few (most Services have none or share a template); the bound only keeps
#: churn from growing the cache without limit.
_CACHE_MAX = 1 << 14


def service_attrs(annotations: Annotations) -> ServiceAttrs | str | None:
    """Parsed attributes, None when the Service sets none, or the error text (cached)."""
    hit = _CACHE.get(annotations, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    try:
        value: ServiceAttrs | str | None = _parse(annotations)
    except ValueError as exc:
        value = str(exc)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[annotations] = value
    return value


def combined(parts: Iterable[ServiceAttrs]) -> ServiceAttrs | None:
    """The attributes of several Services sharing one route, in the order given (None: none)."""
    out: ServiceAttrs | None = None
    for part in parts:
        out = part if out is None else out.combine(part)
    return out
