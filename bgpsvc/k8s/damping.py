"""Flap damping of the desired set: rise, fall and a minimum interval between UPDATEs per prefix.

Level-triggered and pure: ``damp`` takes what the cluster wants now, what was advertised, a small
frozen history and ``now``; it returns what to advertise, the next history and the next deadline at
which the answer can change (the reconcile loop runs again then). ExaBGP's healthcheck ``rise``/
``fall`` is the anchor, in seconds rather than check counts, per prefix:

- a prefix that becomes wanted is advertised once it has been wanted continuously for ``rise`` s;
- a prefix that stops being wanted is withdrawn once it has been unwanted for ``fall`` s (0: at once);
- no prefix changes (announce, new attributes, withdraw) twice within ``min_update_interval`` s.

The first step (no history: a start or restart) advertises everything wanted at once, so the first
table a graceful-restart helper sees is complete. The history holds only the prefixes with a change
pending or a recent update, so it stays small however large the table is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..rib import RouteAttrs
from ..wire import Prefix
from .policy import Damping

NEVER = -math.inf


@dataclass(frozen=True, slots=True)
class Track:
    """One prefix's history: since when its wanted presence is what it is, and its last UPDATE."""

    since: float = NEVER
    last_update: float = NEVER


@dataclass(frozen=True, slots=True)
class DampingState:
    """The history ``damp`` needs besides the previous wanted and advertised sets."""

    tracks: Mapping[Prefix, Track] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Damped:
    """What ``damp`` decided."""

    advertised: Mapping[Prefix, RouteAttrs]
    state: DampingState
    #: The earliest time the answer can change without a cluster change (None: not before one).
    deadline: float | None
    #: Wanted routes not (yet) advertised as wanted, and why (for ``plan``/status).
    held: Mapping[Prefix, str]


def damp(
    wanted: Mapping[Prefix, RouteAttrs],
    previous_wanted: Mapping[Prefix, RouteAttrs] | None,
    advertised: Mapping[Prefix, RouteAttrs] | None,
    state: DampingState | None,
    *,
    now: float,
    config: Damping,
) -> Damped:
    """The routes to advertise at ``now`` (module docstring), from the previous step's sets and history."""
    if advertised is None or previous_wanted is None or state is None or not config.active:
        return Damped(wanted, DampingState(), None, {})
    candidates = set(state.tracks)
    if wanted is not previous_wanted or wanted is not advertised:
        candidates.update(p for p, a in wanted.items() if advertised.get(p) != a)
        candidates.update(p for p in advertised if p not in wanted)
        candidates.update(p for p in previous_wanted if p not in wanted)
    if not candidates:
        return Damped(advertised, state, None, {})
    out = dict(advertised)
    tracks: dict[Prefix, Track] = {}
    held: dict[Prefix, str] = {}
    deadline: float | None = None
    for p in candidates:
        w, a = wanted.get(p), advertised.get(p)
        track = state.tracks.get(p, Track())
        since = track.since
        if (w is None) != (previous_wanted.get(p) is None):
            since = now  # presence changed in this step
        last = track.last_update
        if w != a:
            ready_at, why = _ready_at(config, w, a, since, last)
            if now >= ready_at:
                if w is None:
                    out.pop(p, None)
                else:
                    out[p] = w
                last = now
            else:
                deadline = ready_at if deadline is None else min(deadline, ready_at)
                if w is not None:
                    held[p] = why
        pending = out.get(p) != w
        if pending or last + config.min_update_interval > now:
            tracks[p] = Track(since, last)
    return Damped(out, DampingState(tracks), deadline, held)


def _ready_at(
    config: Damping, w: RouteAttrs | None, a: RouteAttrs | None, since: float, last: float
) -> tuple[float, str]:
    """When the change from ``a`` to ``w`` may go out, and what holds it until then."""
    ready_at, why = last + config.min_update_interval, "min_update_interval"
    if a is None and since + config.rise > ready_at:
        ready_at, why = since + config.rise, "rise"
    elif w is None and since + config.fall > ready_at:
        ready_at, why = since + config.fall, "fall"
    return ready_at, why
