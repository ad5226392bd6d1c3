"""The traffic-shaping parts of the ``kubernetes:`` section: per-range settings, ``link_bandwidth`` and
``damping``, read against their dataclasses in ``bgpsvc.k8s.policy`` (the one source of fields)."""

from __future__ import annotations

import ipaddress
from typing import Any

from ..k8s.policy import Damping, IPNetwork, LinkBandwidth, ServiceRange
from .schema import ConfigError, Section, build, read_fields

Ranges = tuple[tuple[IPNetwork, ...], tuple[ServiceRange, ...]]
_NO_CLASSES: tuple[str, ...] = ()


def _network(text: object, path: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(str(text).strip())
    except ValueError as exc:
        raise ConfigError(f"{path}: {str(text).strip()!r}: {exc}") from None


def read_ranges(s: Section, key: str) -> Ranges:
    """A range list: CIDRs (a list, or one comma-separated string), where an entry may instead be a
    mapping ``{cidr, aggregation, aggregation_length, require_ready_endpoint}``."""
    raw = s.raw(key)
    path = s.sub(key)
    if raw is None:
        return (), ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{path}: expected a list of CIDRs (or of {{cidr: ..., aggregation: ...}})")
    nets: list[IPNetwork] = []
    specs: list[ServiceRange] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if isinstance(item, dict):
            rs = Section(item, where)
            net = _network(rs.require("cidr", str), f"{where}.cidr")
            kw: dict[str, Any] = read_fields(ServiceRange, rs, skip=frozenset({"network"}))
            rs.finish()
            specs.append(build(ServiceRange, {"network": net, **kw}, where))
        elif str(item).strip():
            net = _network(item, where)
        else:
            continue
        if net in nets:
            raise ConfigError(f"{where}: {net} is listed twice")
        nets.append(net)
    return tuple(nets), tuple(specs)


def read_link_bandwidth(raw: object, path: str) -> LinkBandwidth:
    """``link_bandwidth: {classes: [...], per_endpoint_mbps, transitive, asn}``."""
    if raw is None:
        return LinkBandwidth()
    s = Section(raw, path)
    kw = read_fields(LinkBandwidth, s)
    classes = s.get("classes", _classes, _NO_CLASSES)
    s.finish()
    return build(LinkBandwidth, {**kw, "classes": classes}, path)


def _classes(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
        raise ValueError("expected a list of route classes, e.g. [cluster-ip, loadbalancer-ip]")
    return tuple(v)


def read_damping(raw: object, path: str) -> Damping:
    """``damping: {rise, fall, min_update_interval}`` (seconds)."""
    if raw is None:
        return Damping()
    s = Section(raw, path)
    kw = read_fields(Damping, s)
    s.finish()
    return build(Damping, kw, path)
