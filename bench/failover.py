"""Failover after a hard node failure, in the e2e traffic lab: with BFD, and with BGP hold timers only.

The lab is tests/e2e/trafficlab.py (run as root): a client, an FRR top-of-rack router with 8-way
multipath (L4 hash), three node namespaces each running a bgpsvc node speaker against the in-repo API
server and an HTTP server per service IP. Services: a Cluster one (198.51.100.20, reached through the
range every node advertises) and a Local one (198.51.100.10/32, endpoints on node-1 and node-2).

Each case builds a fresh lab, sends requests continuously (one at a time, each on a new connection,
1 s timeout) to both services, then fails node-1 hard:

* ``link``: its link drops everything (tc; the carrier stays up, so only timers can notice);
* ``freeze``: its speaker and web servers are stopped with SIGSTOP (the kernel still ACKs TCP).

Measured, from the moment of the failure:

* **route gone**: when the router's kernel route no longer has node-1 as a next hop, for the range and
  for the Local /32 (``ip -ts monitor route`` in the router namespace; a 20 ms poll of ``ip -j route``
  as a cross-check);
* **failed requests**: how many, and the window from the first failed request's start to the last
  one's end (requests hashed to node-1 time out until the route is gone);
* why the router dropped the session (FRR's last NOTIFICATION / reset reason).

Cases: ``bfd`` (BFD 100 ms x 3 on the router and the speakers; BGP hold time 90 s), ``hold9`` (no BFD,
hold time 9 s), ``hold90`` (no BFD, hold time 90 s: takes minutes, so by default only with ``link``).
The router is a graceful-restart helper (the e2e lab needs it for rolling restarts) and the speakers
set the RFC 8538 N bit by default, so after a hold timer expiry the router keeps the node's routes as
stale for the restart time (120 s) before dropping them. ``hold9-plain`` / ``hold90-plain``: the same
without the N bit (``graceful_restart: {notification: false}``), i.e. the hold time alone.

    sudo .venv/bin/python bench/failover.py [--cases bfd,hold9,hold90] [--failures link,freeze] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bgpsvc.lab import netlab  # noqa: E402
from tests.e2e.trafficlab import (  # noqa: E402
    CLUSTER_IP,
    LOCAL_IP,
    RANGE,
    FibChange,
    Req,
    TrafficLab,
    node_name,
    speaker_v4,
)
from tests.integration.speaker import BgpsvcProcess  # noqa: E402

LOCAL = f"{LOCAL_IP}/32"
CASES: dict[str, dict[str, Any]] = {
    "bfd": {"bfd": True, "hold_time": 90},
    "hold9": {"hold_time": 9},
    "hold90": {"hold_time": 90},
    "hold9-plain": {"hold_time": 9},
    "hold90-plain": {"hold_time": 90},
}
#: Cases whose speakers do not set the RFC 8538 N bit: the router then keeps no stale routes after a
#: hold timer expiry (with it, it keeps them for the restart time, 120 s here).
PLAIN = {"hold9-plain", "hold90-plain"}
LABELS = {
    "bfd": "BFD 100 ms x 3",
    "hold9": "hold 9 s",
    "hold90": "hold 90 s",
    "hold9-plain": "hold 9 s, no N",
    "hold90-plain": "hold 90 s, no N",
}
REQUEST_TIMEOUT = 1.0
NODE1 = speaker_v4(1)


def log(msg: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Poller:
    """Polls the router's kernel routes for the two service prefixes every ``interval`` seconds."""

    def __init__(self, tl: TrafficLab, interval: float = 0.02) -> None:
        self.tl, self.interval = tl, interval
        self.samples: list[tuple[float, set[int], set[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append((t, self.tl.via(RANGE), self.tl.via(LOCAL)))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def gone(self, t0: float, which: int) -> float | None:
        """Seconds after ``t0`` of the first sample without node 1 (``which``: 1 range, 2 local)."""
        return next((s[0] - t0 for s in self.samples if s[0] >= t0 and 1 not in s[which]), None)


def fib_gone(changes: list[FibChange], t0: float, prefix: str) -> float | None:
    """Seconds after ``t0`` of the first kernel route change of ``prefix`` that leaves node-1 out."""
    for c in changes:
        if c.t < t0 or c.text.startswith("Deleted"):
            continue
        if c.text.split()[0] == prefix and NODE1 not in c.text:
            return c.t - t0
    return None


def failures(reqs: list[Req], t0: float, target: str) -> dict[str, Any]:
    mine = [r for r in reqs if r.target == target and r.t >= t0 - REQUEST_TIMEOUT]
    bad = [r for r in mine if not r.ok]
    out: dict[str, Any] = {"sent": len(mine), "failed": len(bad)}
    if bad:
        out["first_s"] = min(r.t for r in bad) - t0
        out["last_end_s"] = max(r.t + r.ms / 1000 for r in bad) - t0
        out["window_s"] = out["last_end_s"] - out["first_s"]
        out["reasons"] = sorted({r.what for r in bad})
    return out


def bring_up(tl: TrafficLab, bfd: bool, plain: bool) -> None:
    tl.apply_services([1, 2])
    for i in (1, 2, 3):
        tl.serve(i, CLUSTER_IP)
    for i in (1, 2):
        tl.serve(i, LOCAL_IP)
    # One after the other (TrafficLab.start_speakers starts them in parallel): on a loaded machine three
    # interpreters starting at once can miss the control endpoint's start-up wait.
    tl.speakers = []
    for i, ns in enumerate(tl.nodes, 1):
        cfg = tl.speaker_config(i)
        cfg["graceful_restart"]["notification"] = not plain
        tl.speakers.append(BgpsvcProcess(ns, cfg, node_name(i)))
    for sp in tl.speakers:
        sp.start()
    for i in (1, 2, 3):
        tl.frr.wait_state(speaker_v4(i), timeout=60)
    tl.converge(RANGE, {1, 2, 3}, timeout=60)
    tl.converge(LOCAL, {1, 2}, timeout=60)
    if bfd:
        want = sorted(speaker_v4(i) for i in (1, 2, 3))
        netlab.wait_until(
            lambda: sorted(p["peer"] for p in tl.frr.json("show bfd peers") if p["status"] == "up") == want,
            timeout=30,
            what="BFD up with every node",
        )
        time.sleep(2.0)  # the Poll Sequences settle the 100 ms rate


def run_case(case: str, how: str, limit: float) -> dict[str, Any]:
    """One fresh lab, one failure of node-1, the figures."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bgpsvc-failover-{case}-{how}-"))
    lab = netlab.Lab()
    tl: TrafficLab | None = None
    try:
        frr_factory = lambda ns, conf, name=None, **kw: lab.frr(ns, conf, name, **kw)  # noqa: E731
        tl = TrafficLab(lab, frr_factory, tmp, **CASES[case])
        bring_up(tl, tl.bfd, case in PLAIN)
        fib = tl.watch_fib(f"{case}-{how}")
        poller = Poller(tl).start()
        traffic = tl.traffic(f"{case}-{how}", [CLUSTER_IP, LOCAL_IP], timeout=REQUEST_TIMEOUT,
                             duration=limit + 60)  # fmt: skip
        time.sleep(2.0)
        log(f"{case}/{how}: failing node-1")
        t0 = time.monotonic()
        tl.fail_node(1, how)
        netlab.wait_until(lambda: 1 not in tl.via(RANGE) and 1 not in tl.via(LOCAL), timeout=limit,
                          interval=0.05, what="node-1 out of the router's routes")  # fmt: skip
        waited = time.monotonic() - t0
        time.sleep(3.0)
        reqs = traffic.stop()
        poller.stop()
        changes = fib.stop()
        nb = tl.neighbor(1)
        row = {
            "case": case,
            "failure": how,
            "waited_s": waited,
            "range_gone_s": fib_gone(changes, t0, RANGE),
            "local_gone_s": fib_gone(changes, t0, LOCAL_IP),
            "range_gone_poll_s": poller.gone(t0, 1),
            "local_gone_poll_s": poller.gone(t0, 2),
            "cluster": failures(reqs, t0, CLUSTER_IP),
            "local": failures(reqs, t0, LOCAL_IP),
            "router_reason": nb.get("lastNotificationReason") or nb.get("lastResetDueTo"),
            "router_reset": nb.get("lastResetDueTo"),
        }
        log(f"{case}/{how}: node-1 gone after {waited:.2f} s ({row['router_reason']})")
        return row
    finally:
        if tl is not None:
            tl.stop()
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Hard failure of node-1 under continuous requests (1 s timeout each); times in seconds after the",
        "failure. 'gone': the router's kernel route without node-1 (ip monitor; poll in brackets).",
        "",
        f"{'case':<16}{'failure':<8}{'range gone':>16}{'/32 gone':>16}{'Cluster failed':>16}"
        f"{'window':>8}{'Local failed':>14}{'window':>8}  router's reason",
    ]
    for r in rows:
        c, lo = r["cluster"], r["local"]
        lines.append(
            f"{LABELS[r['case']]:<16}{r['failure']:<8}"
            f"{fmt(r['range_gone_s']) + ' (' + fmt(r['range_gone_poll_s']) + ')':>16}"
            f"{fmt(r['local_gone_s']) + ' (' + fmt(r['local_gone_poll_s']) + ')':>16}"
            f"{str(c['failed']) + '/' + str(c['sent']):>16}{fmt(c.get('window_s')):>8}"
            f"{str(lo['failed']) + '/' + str(lo['sent']):>14}{fmt(lo.get('window_s')):>8}"
            f"  {r['router_reason']}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="bfd,hold9,hold9-plain,hold90,hold90-plain")
    ap.add_argument("--failures", default="link,freeze")
    ap.add_argument("--hold90-failures", default="link", help="failures run for hold90 (each takes minutes)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    problems = netlab.frr_available()
    if problems:
        print("bench/failover.py needs: " + "; ".join(problems), file=sys.stderr)
        return 2
    rows = []
    for case in args.cases.split(","):
        hows = args.hold90_failures if case.startswith("hold90") else args.failures
        for how in hows.split(","):
            limit = 30.0 if case == "bfd" else 3 * CASES[case]["hold_time"] + 180
            rows.append(run_case(case, how, limit))
    print(json.dumps(rows, indent=1) if args.json else report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
