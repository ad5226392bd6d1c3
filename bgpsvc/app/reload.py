"""What changed between two configurations, in words for the reload log line."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..fsm import PeerConfig
from ..rib import RouteAttrs
from ..wire import Prefix
from .config import RunConfig

#: Changing these needs a restart of the process, not just a reload.
RESTART_ONLY = ("control", "log_format")


def _peer_changes(old: PeerConfig, new: PeerConfig) -> list[str]:
    out = []
    for f in dataclasses.fields(PeerConfig):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            out.append(f.name if f.name == "password" else f"{f.name} {a!r} -> {b!r}")
    return out


def describe_changes(
    old: RunConfig,
    new: RunConfig,
    old_routes: Mapping[Prefix, RouteAttrs],
    new_routes: Mapping[Prefix, RouteAttrs],
) -> list[str]:
    """One phrase per change: peers added, removed or changed (and how), routes, settings."""
    out: list[str] = []
    before = {(p.address, p.port): p for p in old.speaker.peers}
    after = {(p.address, p.port): p for p in new.speaker.peers}
    for key in after.keys() - before.keys():
        out.append(f"peer {after[key].label} added")
    for key in before.keys() - after.keys():
        out.append(f"peer {before[key].label} removed")
    for key in before.keys() & after.keys():
        changes = _peer_changes(before[key], after[key])
        if changes:
            reset = " (session reset)" if before[key].session_key != after[key].session_key else ""
            out.append(f"peer {after[key].label}: {', '.join(changes)}{reset}")
    for f in dataclasses.fields(old.speaker):
        if f.name != "peers" and getattr(old.speaker, f.name) != getattr(new.speaker, f.name):
            out.append(
                f"{f.name} changed (every session renewed)"
                if f.name in ("local_as", "router_id")
                else f"{f.name} changed"
            )
    added = new_routes.keys() - old_routes.keys()
    removed = old_routes.keys() - new_routes.keys()
    changed = sum(1 for p in new_routes.keys() & old_routes.keys() if new_routes[p] != old_routes[p])
    if added or removed or changed:
        out.append(f"static routes: {len(added)} added, {len(removed)} removed, {changed} changed")
    if old.kubernetes != new.kubernetes:
        out.append("kubernetes settings changed")
    out += [
        f"{name} changed: takes effect after a restart"
        for name in RESTART_ONLY
        if getattr(old, name) != getattr(new, name)
    ]
    return out
