"""Flap damping: the pure ``damp`` (rise, fall, minimum UPDATE interval, deadlines) and its use by
``reconcile_step``; a property test drives random flapping through it and checks the promises."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.damping import Damped, DampingState, damp
from bgpsvc.k8s.desired import desired_routes
from bgpsvc.k8s.policy import Damping
from bgpsvc.k8s.reconcile import Reconciler, StepResult, reconcile_step
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Prefix

from .test_desired import POLICY, P, eps, snap, svc
from .test_reconcile import frozen

A, B = P("198.51.100.1/32"), P("198.51.100.2/32")
R1, R2 = RouteAttrs(med=1), RouteAttrs(med=2)
Routes = Mapping[Prefix, RouteAttrs]


class Run:
    """Steps of ``damp``, each one taking the previous step's output as a reconcile loop does."""

    def __init__(self, config: Damping, first: Routes, t0: float = 0.0) -> None:
        self.config = config
        self.wanted: Routes = first
        self.out = damp(first, None, None, None, now=t0, config=config)

    def step(self, wanted: Routes, now: float) -> Damped:
        self.out = damp(wanted, self.wanted, self.out.advertised, self.out.state, now=now, config=self.config)
        self.wanted = wanted
        return self.out


def test_first_step_advertises_everything_at_once() -> None:
    run = Run(Damping(rise=5, fall=5, min_update_interval=5), {A: R1, B: R2})
    assert run.out.advertised == {A: R1, B: R2} and run.out.deadline is None and not run.out.state.tracks


def test_inactive_config_is_the_identity() -> None:
    run = Run(Damping(), {A: R1})
    wanted = {B: R2}
    assert run.step(wanted, 1.0).advertised is wanted and run.out.deadline is None


def test_rise_holds_a_new_route_until_it_has_been_wanted_long_enough() -> None:
    run = Run(Damping(rise=2.0), {})
    out = run.step({A: R1}, 10.0)
    assert out.advertised == {} and out.deadline == 12.0 and out.held == {A: "rise"}
    assert run.step({A: R1}, 11.0).advertised == {}  # still rising (something else changed)
    out = run.step({A: R1}, 12.0)
    assert out.advertised == {A: R1} and out.deadline is None and not out.state.tracks


def test_rise_restarts_when_the_route_goes_away_meanwhile() -> None:
    run = Run(Damping(rise=2.0), {})
    run.step({A: R1}, 10.0)
    run.step({}, 11.0)
    out = run.step({A: R1}, 11.5)
    assert out.advertised == {} and out.deadline == 13.5
    assert run.step({A: R1}, 13.0).advertised == {} and run.step({A: R1}, 13.5).advertised == {A: R1}


def test_fall_zero_withdraws_at_once_and_fall_holds_a_withdrawal() -> None:
    assert Run(Damping(rise=1.0), {A: R1}).step({}, 5.0).advertised == {}
    run = Run(Damping(fall=3.0), {A: R1})
    out = run.step({}, 5.0)
    assert out.advertised == {A: R1} and out.deadline == 8.0 and out.held == {}  # not wanted: not "held"
    assert run.step({A: R1}, 6.0).advertised == {A: R1}  # back before the fall: nothing was sent
    assert run.out.deadline is None and not run.out.state.tracks


def test_min_update_interval_spaces_every_change_of_a_prefix() -> None:
    run = Run(Damping(min_update_interval=2.0), {A: R1})
    assert run.step({A: R2}, 1.0).advertised == {A: R2}  # the first change goes at once
    out = run.step({A: R1}, 1.5)
    assert out.advertised == {A: R2} and out.deadline == 3.0 and out.held == {A: "min_update_interval"}
    out = run.step({}, 2.0)  # wanted gone: the withdrawal waits too
    assert out.advertised == {A: R2} and out.deadline == 3.0
    assert run.step({}, 3.0).advertised == {} and set(run.out.state.tracks) == {A}
    assert run.step({}, 5.0).advertised == {} and not run.out.state.tracks  # history forgotten


def test_other_prefixes_are_not_delayed() -> None:
    run = Run(Damping(min_update_interval=10.0), {A: R1})
    run.step({}, 1.0)
    out = run.step({A: R1, B: R2}, 1.1)
    assert out.advertised == {B: R2} and out.deadline == 11.0


# ------------------------------------------------------------------------------------------ property


changes = st.lists(
    st.tuples(
        st.floats(0.01, 3.0),  # seconds since the previous change
        st.fixed_dictionaries({}, optional={A: st.sampled_from([R1, R2]), B: st.just(R1)}),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    changes,
    st.sampled_from([0.0, 0.5, 1.0]),
    st.sampled_from([0.0, 0.7]),
    st.sampled_from([0.0, 0.3, 2.0]),
)
def test_damped_flapping_keeps_its_promises(
    seq: list[tuple[float, dict[Prefix, RouteAttrs]]], rise: float, fall: float, interval: float
) -> None:
    """Whatever the flapping: no prefix is updated twice within the interval, nothing is announced that
    was not wanted for ``rise`` s, and once the cluster is quiet, running at each deadline converges on
    exactly the wanted set, with an empty history."""
    config = Damping(rise, fall, interval)
    run = Run(config, {A: R1}, 0.0)
    now, wanted_since, updates = 0.0, {A: 0.0}, {A: [-math.inf], B: [-math.inf]}
    advertised = dict(run.out.advertised)

    def check(out: Damped, now: float, wanted: Mapping[Prefix, RouteAttrs]) -> None:
        for p in (A, B):
            if out.advertised.get(p) != advertised.get(p):
                assert now - updates[p][-1] >= interval - 1e-9, (p, now, updates[p])
                updates[p].append(now)
                if p not in advertised:
                    assert now - wanted_since[p] >= rise - 1e-9
            if out.deadline is not None:
                assert out.deadline > now
        advertised.clear()
        advertised.update(out.advertised)

    for gap, wanted in seq:
        now += gap
        for p in (A, B):
            if p in wanted and p not in run.wanted:
                wanted_since[p] = now
        check(run.step(wanted, now), now, wanted)
    for _ in range(10):
        if run.out.deadline is None:
            break
        now = run.out.deadline
        check(run.step(run.wanted, now), now, run.wanted)
    assert run.out.deadline is None and run.out.advertised == run.wanted
    now += max(interval, 0.0) + 1
    assert not run.step(run.wanted, now).state.tracks


# --------------------------------------------------------------------------------- in reconcile_step


def test_reconcile_step_returns_the_deadline_and_applies_the_change_when_it_comes() -> None:
    policy = replace(POLICY, damping=Damping(rise=1.0, min_update_interval=4.0))
    web = svc("web", ("10.96.0.10",))
    down = frozen(snap(web, eps("web", "IPv4", ("10.244.1.5", "node-a", False))))
    up = frozen(snap(web, eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
    host = P("10.96.0.10/32")
    first = reconcile_step(up, "node-a", policy, None, now=100.0)
    assert host in first.routes
    gone = reconcile_step(down, "node-a", policy, first, now=101.0)  # fall 0: at once
    assert host not in gone.routes and gone.deadline is None
    back = reconcile_step(up, "node-a", policy, gone, now=101.2)
    assert host not in back.routes and host in back.wanted and back.deadline == 105.0
    assert back.held == {host: "min_update_interval"} and back.stats.held == 1
    early: StepResult = reconcile_step(up, "node-a", policy, back, now=104.0)
    assert early is not back and early.routes is back.routes  # same snapshot, before the deadline
    due = reconcile_step(up, "node-a", policy, early, now=105.0)
    assert host in due.routes and due.deadline is None and due.stats.announced == 1
    assert due.routes == desired_routes(up, "node-a", policy)


def test_a_withdrawal_held_by_fall_keeps_its_class() -> None:
    policy = replace(POLICY, damping=Damping(fall=2.0))
    web = svc("web", ("10.96.0.10",))
    up = frozen(snap(web, eps("web", "IPv4", ("10.244.1.5", "node-a", True))))
    first = reconcile_step(up, "node-a", policy, None, now=0.0)
    falling = reconcile_step(frozen(snap(web)), "node-a", policy, first, now=1.0)
    assert falling.classes[P("10.96.0.10/32")] == "cluster-ip" and falling.deadline == 3.0
    assert set(falling.classes) == set(falling.routes)
    assert isinstance(falling.damping, DampingState)


# ----------------------------------------------------------------------------------- the loop itself


class Source:
    """An informer stand-in: always synced; ``snapshot()`` is a new mapping after each ``put``."""

    def __init__(self, objs: dict[Any, Any]) -> None:
        self.store = dict(objs)
        self.snap: Mapping[Any, Any] = MappingProxyType(dict(self.store))
        self.synced, self.healthy, self.relists = True, True, 0

    def put(self, key: Any, value: Any) -> None:
        self.store[key] = value
        self.snap = MappingProxyType(dict(self.store))

    @property
    def size(self) -> int:
        return len(self.store)

    def snapshot(self) -> Mapping[Any, Any]:
        return self.snap


def test_the_loop_runs_again_at_the_deadline_without_any_change() -> None:
    """The endpoint turns ready once; with ``rise`` the route is not applied then, but the loop wakes at
    the deadline by itself (no watch event) and applies it."""

    async def main() -> list[tuple[float, bool]]:
        policy = replace(POLICY, damping=Damping(rise=0.3))
        web = svc("web", ("10.96.0.10",))
        down = eps("web", "IPv4", ("10.244.1.5", "node-a", False))
        services, slices = Source({web.key: web}), Source({down.key: down})
        applied: list[tuple[float, bool]] = []
        loop = asyncio.get_running_loop()
        rec = Reconciler(
            services,
            slices,
            Source({}),
            node="node-a",
            policy=policy,
            apply=lambda routes, _changed: applied.append((loop.time(), P("10.96.0.10/32") in routes)),
            debounce=0,
        )
        task = asyncio.create_task(rec.run())
        await asyncio.sleep(0.1)
        t_ready = loop.time()
        slices.put(down.key, eps("web", "IPv4", ("10.244.1.5", "node-a", True)))
        rec.mark_dirty()
        for _ in range(100):  # bounded: 2 s
            await asyncio.sleep(0.02)
            if applied[-1][1]:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return [(t - t_ready, up) for t, up in applied]

    applied = asyncio.run(main())
    assert [up for _, up in applied] == [False, False, True], applied
    assert applied[-1][0] >= 0.3  # not before the rise time, and without another change
