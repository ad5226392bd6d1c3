"""End-to-end, issue 11: traffic-aware advertisement through FRR 8.4 (topology: ``trafficlab.py``).

* Weighted ECMP: bgpsvc attaches a Link Bandwidth community proportional to each node's ready endpoints
  of a Local Service; FRR (weighted ECMP on by default when every path carries one) installs kernel
  next-hop weights, and the client's flows (new source port each, L4 hashing) split accordingly. The
  same routes with ``bgp bestpath bandwidth ignore`` on the router split evenly. Moving endpoints moves
  the split through UPDATEs on the established sessions.
* Failover without a catching aggregate: two sites (two clusters, two groups of speakers) advertise the
  same LoadBalancer IP from a host-routes-only range with ``require_ready_endpoint``; site B's routes
  carry a longer AS path. When site A's Service has no ready endpoint its nodes withdraw the /32 and
  traffic goes to site B; it comes back when A's endpoints return.
* Flap damping: readiness flapping at 5 Hz for 10 s; a damped node sends at most the configured number
  of UPDATEs, an undamped one follows every flap.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.integration.netlab import wait_until

from .test_traffic import assert_no_loss, failed, names
from .trafficlab import (
    LOCAL_IP,
    ROUTER_AS,
    Req,
    TrafficLab,
    between,
    converged_at,
    endpoint_slice,
    node_name,
    service,
    summarize,
)

Figures = Callable[[str], None]
LOCAL = f"{LOCAL_IP}/32"
ALL = {1, 2, 3}
#: Requests per measured split: at 2000 flows a 75 % share has a standard deviation of 1 point, so the
#: ±5 point band is five of them.
REQUESTS = 2000
TOLERANCE = 5.0  # percentage points
LB_IP, LB_RANGE = "192.0.2.200", "192.0.2.192/27"  # the LoadBalancer range: host routes only


def shares(reqs: list[Req]) -> dict[int, float]:
    """Node -> percentage of the answered requests."""
    by = Counter(r.what for r in reqs if r.ok)
    total = sum(by.values()) or 1
    return {i: 100.0 * by.get(node_name(i), 0) / total for i in sorted(ALL)}


def split_text(split: dict[int, float]) -> str:
    return "/".join(f"{split[i]:.1f}" for i in sorted(split))


def assert_split(label: str, reqs: list[Req], expected: dict[int, float], figures: Figures) -> None:
    split = shares(reqs)
    figures(
        f"{label}: {split_text(split)} % (expected {split_text(expected)} ± {TOLERANCE:g}) "
        f"of {len(reqs)} requests"
    )
    assert not failed(reqs), summarize(label, reqs)
    for i in ALL:
        assert abs(split[i] - expected[i]) <= TOLERANCE, (label, split)


def sessions(tl: TrafficLab) -> dict[int, int]:
    return {i: int(tl.neighbor(i)["connectionsEstablished"]) for i in ALL}


def set_weights(tl: TrafficLab, want: dict[int, int]) -> float:
    """Wait until the router's kernel route for the Local IP has exactly these next-hop weights."""
    t0 = time.monotonic()
    wait_until(lambda: tl.weights(LOCAL) == want, timeout=20, interval=0.05, what=f"{LOCAL} weights {want}")
    return time.monotonic() - t0


def test_weighted_ecmp_splits_by_ready_endpoints(
    traffic_lab: Callable[..., TrafficLab], figures: Figures
) -> None:
    tl = traffic_lab()
    tl.kube_extra[0] = {"link_bandwidth": {"classes": ["cluster-ip"]}}
    tl.api.apply(service("local", LOCAL_IP, local=True))
    tl.api.apply(endpoint_slice("local", {1: 3, 2: 1}))
    for i in ALL:
        tl.serve(i, LOCAL_IP)  # every node could answer: only the routes decide who does
    tl.start_speakers()
    tl.converge(LOCAL, {1, 2})
    before = sessions(tl)
    path = tl.path_from(LOCAL, 1)
    assert path is not None and "LB:64512:375000" in str(path.get("extendedCommunity")), path
    set_weights(tl, {1: 75, 2: 25})
    figures(f"weighted ECMP: router kernel weights {tl.weights(LOCAL)} for endpoints 3/1/0")
    assert_split(
        "weighted ECMP, endpoints 3/1/0",
        tl.burst("weighted", LOCAL_IP, REQUESTS),
        {1: 75, 2: 25, 3: 0},
        figures,
    )

    tl.frr.configure(f"router bgp {ROUTER_AS}\n bgp bestpath bandwidth ignore\nexit\n")
    set_weights(tl, {1: 1, 2: 1})
    plain = tl.burst("unweighted", LOCAL_IP, REQUESTS)
    assert_split(
        "plain ECMP (router ignores the bandwidth), endpoints 3/1/0", plain, {1: 50, 2: 50, 3: 0}, figures
    )
    tl.frr.configure(f"router bgp {ROUTER_AS}\n no bgp bestpath bandwidth\nexit\n")
    set_weights(tl, {1: 75, 2: 25})

    updates = {i: tl.updates_received(i) for i in ALL}
    tl.api.apply(endpoint_slice("local", {1: 1, 2: 1, 3: 2}))
    took = set_weights(tl, {1: 25, 2: 25, 3: 50})
    figures(f"endpoints 3/1/0 -> 1/1/2: router weights {tl.weights(LOCAL)} after {took:.3f} s")
    assert_split(
        "weighted ECMP, endpoints 1/1/2",
        tl.burst("moved", LOCAL_IP, REQUESTS),
        {1: 25, 2: 25, 3: 50},
        figures,
    )
    sent = {i: tl.updates_received(i) - updates[i] for i in ALL}
    figures(
        f"endpoint move: UPDATEs per node {sent}, sessions re-established: none ({sessions(tl)} == {before})"
    )
    assert sessions(tl) == before, "a weight change must be an UPDATE, never a session reset"
    # node-1 (3 -> 1 endpoints) re-advertised with a new bandwidth, node-3 announced, node-2 (1 -> 1) silent.
    assert sent[1] >= 1 and sent[3] >= 1 and sent[2] == 0, sent


# --------------------------------------------------------------------------------------------------
# failover between two sites
# --------------------------------------------------------------------------------------------------


def lb_service() -> dict[str, Any]:
    svc = service("global", "198.51.100.30", local=False)
    svc["spec"]["type"] = "LoadBalancer"
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}
    return svc


def test_failover_to_the_other_site_and_back(
    traffic_lab: Callable[..., TrafficLab], figures: Figures
) -> None:
    tl = traffic_lab(second_site={3})
    host_routes = {"cidr": LB_RANGE, "aggregation": "host-routes-only", "require_ready_endpoint": True}
    tl.kube_extra[0] = {"service_loadbalancer_ips": [host_routes]}
    tl.kube_extra[3] = {"attributes": {"loadbalancer-ip": {"as_path": [64512, 64512]}}}  # B: the backup
    site_a, site_b = tl.api, tl.site_api(3)
    for api in (site_a, site_b):
        api.apply(lb_service())
    site_a.apply(endpoint_slice("global", {1: 1}))
    site_b.apply(endpoint_slice("global", {3: 1}))
    for i in ALL:
        tl.serve(i, LB_IP)
    tl.start_speakers()
    lb = f"{LB_IP}/32"
    tl.converge(lb, {1, 2})
    assert tl.path_from(lb, 3) is not None, "site B advertises the LoadBalancer IP too (longer AS path)"

    fib = tl.watch_fib("failover", match=(f"{LB_IP} ",))
    # A short client timeout: a request caught by the switch fails fast instead of hiding the next ones.
    traffic = tl.traffic("failover", [LB_IP], timeout=0.3)
    time.sleep(1)
    # Site A scales to zero: its pods stop answering (kube-proxy rejects) and its slice has no ready
    # endpoint; A's nodes withdraw the /32 and the router falls back to site B.
    t_down = time.monotonic()
    for i in (1, 2):
        tl.unserve(i, LB_IP)
    site_a.apply(endpoint_slice("global", {1: 1}, ready=False))
    tl.converge(lb, {3})
    t_switch = time.monotonic()
    time.sleep(2)
    # Site A's endpoints return: the pod serves before it is marked ready.
    for i in (1, 2):
        tl.serve(i, LB_IP)
    t_up = time.monotonic()
    site_a.apply(endpoint_slice("global", {1: 1}))
    tl.converge(lb, {1, 2})
    t_back = time.monotonic()
    time.sleep(1.5)
    reqs = traffic.stop()
    changes = fib.stop()

    t_b = converged_at(between(reqs, 0, t_up), LB_IP, names({3}), t_down)
    t_a = converged_at(reqs, LB_IP, names({1, 2}), t_up)
    figures(
        f"failover: router on site B {t_switch - t_down:.3f} s after A's scale-down, traffic on B after "
        f"{(t_b - t_down) if t_b is not None else float('nan'):.3f} s; back on A {t_back - t_up:.3f} s / "
        f"traffic {(t_a - t_up) if t_a is not None else float('nan'):.3f} s after A's endpoints returned"
    )
    figures(summarize("failover: before", between(reqs, 0, t_down)))
    figures(summarize("failover: switching to B", between(reqs, t_down, t_switch)))
    figures(summarize("failover: on B", between(reqs, t_switch, t_up)))
    figures(summarize("failover: A back", between(reqs, t_up)))
    assert t_b is not None and t_a is not None
    assert t_b - t_down < 10, "a generous bound: traffic must move to site B"
    on_b = between(reqs, t_switch, t_up)
    assert on_b and not failed(on_b) and set(Counter(r.what for r in on_b)) == names({3})
    assert_no_loss("failover: A back", between(reqs, t_up), changes, figures)
    assert set(Counter(r.what for r in between(reqs, t_back + 0.5) if r.ok)) <= names({1, 2})


# --------------------------------------------------------------------------------------------------
# flap damping
# --------------------------------------------------------------------------------------------------

FLAP_HZ, FLAP_SECONDS = 5, 10.0
DAMPING = {"rise": 1.0, "fall": 0.0, "min_update_interval": 2.0}


def test_flapping_readiness_is_damped(traffic_lab: Callable[..., TrafficLab], figures: Figures) -> None:
    """Node-1 is damped, node-2 is not; both have a Local endpoint whose readiness flaps."""
    tl = traffic_lab()
    tl.kube_extra[1] = {"damping": DAMPING}
    tl.api.apply(service("local", LOCAL_IP, local=True))
    tl.api.apply(endpoint_slice("local", {1: 1, 2: 1}))
    for i in (1, 2):
        tl.serve(i, LOCAL_IP)
    tl.start_speakers()
    tl.converge(LOCAL, {1, 2})
    time.sleep(1)
    before = {i: tl.updates_received(i) for i in (1, 2)}
    t0 = time.monotonic()
    flips = 0
    while (now := time.monotonic()) < t0 + FLAP_SECONDS:
        tick = int((now - t0) * FLAP_HZ * 2)  # two readiness changes per cycle
        tl.api.apply(endpoint_slice("local", {1: 1, 2: 1}, ready=tick % 2 == 1))
        flips += 1
        time.sleep(max(0.0, t0 + (tick + 1) / (FLAP_HZ * 2) - time.monotonic()))
    tl.api.apply(endpoint_slice("local", {1: 1, 2: 1}))
    t_end = time.monotonic()
    tl.converge(LOCAL, {1, 2}, timeout=20)
    t_settled = time.monotonic()
    time.sleep(DAMPING["min_update_interval"] + 0.5)
    sent = {i: tl.updates_received(i) - before[i] for i in (1, 2)}
    window = t_settled - t0
    # At most one UPDATE per min_update_interval for the one flapping prefix, plus the first.
    bound = math.floor(window / DAMPING["min_update_interval"]) + 1
    figures(
        f"flapping at {FLAP_HZ} Hz for {FLAP_SECONDS:g} s ({flips} readiness writes): damped node-1 "
        f"(rise {DAMPING['rise']:g} s, min interval {DAMPING['min_update_interval']:g} s) sent {sent[1]} "
        f"UPDATEs (bound {bound} over {window:.1f} s), undamped node-2 sent {sent[2]}; "
        f"re-advertised {t_settled - t_end:.2f} s after the flapping stopped"
    )
    assert sent[1] <= bound
    assert sent[2] > bound, "the undamped node must follow the flapping (or the test flapped nothing)"
