"""Service addresses against the configured ranges: parsed once (cached), matched most specific first."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..wire import Prefix
from .policy import AdvertisePolicy, IPNetwork, ServiceRange

_FAMILY = {4: "IPv4", 6: "IPv6"}  # IP version -> Service ipFamilies / EndpointSlice addressType
#: (version, network as int, prefix length, network, settings)
Range = tuple[int, int, int, IPNetwork, ServiceRange]
Parsed = tuple[int, int, Prefix, str]  # (version, address as int, host prefix, family name)
_IP_CACHE: dict[str, Parsed | None] = {}
#: Bound on the parse cache: 256k addresses is several times the Service IPs of a very large cluster
#: (a few MB); cleared wholesale when full, so churn cannot grow it without limit.
_IP_CACHE_MAX = 1 << 18


def parse_ip(ip: str) -> Parsed | None:
    """(version, address as int, host prefix, family), cached: the same IPs are seen every reconcile."""
    hit = _IP_CACHE.get(ip, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    try:
        addr = ipaddress.ip_address(ip)
        val: Parsed | None = (addr.version, int(addr), Prefix.host(addr), _FAMILY[addr.version])
    except ValueError:
        val = None
    if len(_IP_CACHE) >= _IP_CACHE_MAX:
        _IP_CACHE.clear()
    _IP_CACHE[ip] = val
    return val


def ranges_of(nets: Iterable[IPNetwork], policy: AdvertisePolicy) -> tuple[Range, ...]:
    # Longest first, so the first match is the most specific entry.
    return tuple(
        sorted(
            ((n.version, int(n.network_address), n.prefixlen, n, policy.range_spec(n)) for n in nets),
            key=lambda r: -r[2],
        )
    )


def containing(parsed: Parsed, ranges: tuple[Range, ...]) -> Range | None:
    version, value = parsed[0], parsed[1]
    for entry in ranges:
        r_version, r_net, r_len = entry[0], entry[1], entry[2]
        bits = 32 if r_version == 4 else 128
        if r_version == version and (value >> (bits - r_len)) == (r_net >> (bits - r_len)):
            return entry
    return None
