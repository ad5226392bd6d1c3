"""End-to-end: BFD between the top-of-rack router and the node speakers (100 ms x 3) takes a failed node
out of the router's ECMP route, and the client's requests recover (topology: ``trafficlab.py``).

Behaviour only, no timing thresholds (bench/failover.py measures): node-1's link goes silent under
continuous traffic to the Cluster and the Local service; the router drops node-1's next hop from both
routes because BFD told BGP (FRR says Cease/BFD Down; the BGP hold time is 90 s and the waits are
bounded well below it), requests after that all succeed on the remaining nodes, and everything comes
back with the link. The failure window is reported as a figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.integration.netlab import wait_until

from .test_traffic import ALL, LOCAL, answered_by, bring_up, failed, names
from .trafficlab import CLUSTER_IP, LOCAL_IP, RANGE, TrafficLab, between, speaker_v4, summarize

Figures = Callable[[str], None]


def bfd_up_everywhere(tl: TrafficLab) -> bool:
    """The router's BFD sessions with all three nodes are up, and each speaker says so too."""
    peers = tl.frr.json("show bfd peers")
    if sorted(p["peer"] for p in peers if p["status"] == "up") != sorted(speaker_v4(i) for i in ALL):
        return False
    return all((sp.status()["peers"][0].get("bfd") or {}).get("state") == "Up" for sp in tl.speakers)


def window(reqs: list[Any], t0: float) -> str:
    bad = failed(between(reqs, t0 - 2.0))
    if not bad:
        return "no failed request"
    first, last = min(r.t for r in bad), max(r.t + r.ms / 1000 for r in bad)
    return f"{len(bad)} failed between +{first - t0:.2f} s and +{last - t0:.2f} s after the failure"


def test_bfd_takes_a_failed_node_out_of_ecmp_and_requests_recover(
    traffic_lab: Callable[..., TrafficLab], figures: Figures
) -> None:
    tl = traffic_lab(bfd=True)
    bring_up(tl, {1, 2})
    wait_until(lambda: bfd_up_everywhere(tl), timeout=30, what="BFD up on every session")

    traffic = tl.traffic("bfd-failover", [CLUSTER_IP, LOCAL_IP], timeout=1.0)
    time.sleep(1.0)
    # Flaps counted from here: a loaded 2-core machine can cost a 300 ms detection one while starting.
    flaps = tl.speaker(1).status()["peers"][0]["bfd"]["flaps"]
    t_fail = time.monotonic()
    tl.fail_node(1, "link")
    # Bounded well below the 90 s hold time: only BFD can take the next hop out this soon.
    tl.converge(RANGE, {2, 3}, timeout=45)
    tl.converge(LOCAL, {2}, timeout=45)
    nb = tl.neighbor(1)
    assert nb["bgpState"] != "Established" and nb["lastNotificationReason"] == "Cease/BFD Down", nb
    assert nb["peerBfdInfo"]["status"] == "Down"
    time.sleep(1.0)
    t_settled = time.monotonic()
    time.sleep(2.0)
    reqs = traffic.stop()
    figures(f"BFD 100 ms x 3, node-1's link dropped: {window(reqs, t_fail)}")
    after = between(reqs, t_settled)
    assert after and not failed(after), summarize("after the route change", failed(after))
    assert set(answered_by(between(after, 0, target=CLUSTER_IP))) == names({2, 3})
    assert set(answered_by(between(after, 0, target=LOCAL_IP))) == names({2})
    # Node-1's own speaker saw BFD fail too and holds its session until BFD is back.
    tl.recover_node(1, "link")
    tl.converge(RANGE, ALL, timeout=60)
    tl.converge(LOCAL, {1, 2}, timeout=60)
    peer = tl.speaker(1).status()["peers"][0]
    # Exactly one flap for the dropped link.
    assert (
        peer["state"] == "Established" and peer["bfd"]["state"] == "Up" and peer["bfd"]["flaps"] == flaps + 1
    ), peer
    assert peer["last_down"].startswith("BFD down"), peer["last_down"]
    burst = tl.burst("bfd-recovered", CLUSTER_IP, 150)
    assert not failed(burst) and set(answered_by(burst)) == names(ALL), summarize("recovered", burst)
