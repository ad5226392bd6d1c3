"""Reconfiguring a running ``bgpsvc run`` against two FRR routers, without a restart (issue 9).

Topology: the node namespace (bgpsvc, the venv's console script, config without ``listen:`` so it
listens on port 179 as the program does by default) joined to router r1 (192.0.2.1, AS 64501) and
router r2 (192.0.2.17, AS 64502) by their own links. Every step edits the config file; some are
picked up by the file watch (what a ConfigMap update does), some by SIGHUP. After each step the
sessions that should not move have kept FRR's counts of established and dropped connections, and our
``/status`` uptime kept growing:

1. add r2: it comes up; r1 untouched;
2. change the route's community: both routers get the new community, no session reset;
3. change r2's hold time: r2 alone is reset, gracefully (Cease / Administrative Reset), and comes back
   with the new hold time;
4. an invalid file: one clear log line, the running configuration stays;
5. remove r1: it gets Cease / Peer De-configured and loses the route; r2 untouched.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .netlab import Frr, Lab, Netns, wait_until

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))
NODE_R1, NODE_R2 = "192.0.2.11", "192.0.2.27"
R1, R2 = "192.0.2.1", "192.0.2.17"
LOCAL_AS = 64512
ROUTE = "198.51.100.0/24"
CONTROL = 9179


def frr_config(router_id: str, asn: int, neighbor: str) -> str:
    return f"""
router bgp {asn}
 bgp router-id {router_id}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {neighbor} remote-as {LOCAL_AS}
 neighbor {neighbor} timers connect 1
 address-family ipv4 unicast
  neighbor {neighbor} activate
 exit-address-family
exit
"""


def peer(address: str, asn: int, hold: int = 30) -> dict[str, Any]:
    return {
        "name": f"r{1 if address == R1 else 2}",
        "address": address,
        "peer_as": asn,
        "hold_time": hold,
        "connect_retry_time": 1,
        "families": ["ipv4-unicast"],
    }


def config(peers: list[dict[str, Any]], community: str = "64512:100") -> dict[str, Any]:
    return {
        "local_as": LOCAL_AS,
        "router_id": NODE_R1,
        "control": {"address": "127.0.0.1", "port": CONTROL},
        "drain_time": 3,  # long enough to see GRACEFUL_SHUTDOWN at FRR before a session is renewed
        "peers": peers,
        "routes": [{"prefix": ROUTE, "communities": [community]}],
    }


class Speaker:
    """``bgpsvc run`` in the node namespace; its config file rewritten in place; ended by PID."""

    def __init__(self, ns: Netns, tmp: Path) -> None:
        self.ns = ns
        self.cfg = tmp / "bgpsvc.yaml"
        self.err = tmp / "bgpsvc.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, data: dict[str, Any]) -> None:
        self.write(data)
        with self.err.open("wb") as err:
            self.proc = self.ns.popen([BGPSVC, "run", "-c", str(self.cfg)], stdout=err, stderr=err)

    def write(self, data: dict[str, Any]) -> None:
        tmp = self.cfg.with_suffix(".new")
        tmp.write_text(yaml.safe_dump(data))
        tmp.replace(self.cfg)  # atomically, as a ConfigMap update swaps the file

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.err.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        out = self.ns.run([BGPSVC, "status", "--json", "--control", f"127.0.0.1:{CONTROL}"]).stdout
        data: dict[str, Any] = json.loads(out)
        return data

    def peer(self, name: str) -> dict[str, Any]:
        return next(p for p in self.status()["peers"] if p["name"] == name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def net(lab: Lab, frr_factory: Callable[..., Frr], tmp_path: Path) -> Iterator[tuple[Speaker, Frr, Frr]]:
    node, r1ns, r2ns = lab.netns("node"), lab.netns("r1"), lab.netns("r2")
    lab.veth(r1ns, node, f"{R1}/28", f"{NODE_R1}/28")
    lab.veth(r2ns, node, f"{R2}/28", f"{NODE_R2}/28")
    r1 = frr_factory(r1ns, frr_config(R1, 64501, NODE_R1), "r1")
    r2 = frr_factory(r2ns, frr_config(R2, 64502, NODE_R2), "r2")
    sp = Speaker(node, tmp_path)
    try:
        yield sp, r1, r2
    finally:
        sp.stop()
        print(sp.log())


def session(frr: Frr, addr: str) -> tuple[int, int]:
    """FRR's count of sessions established and dropped with ``addr``: unchanged means not reset.
    (``bgpTimerUpEstablishedEpoch`` is derived from the uptime and wobbles by a second.)"""
    n = frr.neighbor(addr)
    return int(n["connectionsEstablished"]), int(n["connectionsDropped"])


def communities(frr: Frr) -> list[str]:
    paths = frr.json(f"show bgp ipv4 unicast {ROUTE}").get("paths") or []
    return str(paths[0].get("community", {}).get("string", "")).split() if paths else []


def test_peers_and_attributes_change_live_and_only_what_changed_resets(
    net: tuple[Speaker, Frr, Frr],
) -> None:
    sp, r1, r2 = net
    p1, p2 = peer(R1, 64501), peer(R2, 64502)
    sp.start(config([p1]))
    r1.wait_state(NODE_R1, timeout=40)
    wait_until(lambda: communities(r1) == ["64512:100"], timeout=20, what="the route at r1")
    listening = sp.ns.run(["ss", "-Hltn", "sport = :179"]).stdout
    assert "0.0.0.0:179" in listening and "[::]:179" in listening, listening
    r1_session = session(r1, NODE_R1)
    up_before = sp.peer("r1")["uptime"]

    # 1. Add r2 (file watch).
    sp.write(config([p1, p2]))
    r2.wait_state(NODE_R2, timeout=40)
    wait_until(lambda: communities(r2) == ["64512:100"], timeout=20, what="the route at r2")
    assert session(r1, NODE_R1) == r1_session
    r2_session = session(r2, NODE_R2)

    # 2. A new community (SIGHUP): re-advertised to both, nobody reset.
    sp.write(config([p1, p2], community="64512:200"))
    sp.hup()
    for r in (r1, r2):
        wait_until(lambda r=r: communities(r) == ["64512:200"], timeout=20, what=f"{r.name}: new community")
    assert session(r1, NODE_R1) == r1_session and session(r2, NODE_R2) == r2_session
    assert sp.peer("r1")["uptime"] > up_before and sp.peer("r1")["flaps"] == 0

    # 3. r2's hold time: that session alone is renewed, gracefully: GRACEFUL_SHUTDOWN on our route at r2
    #    for the drain, then Cease / Administrative Reset, then a new session with the new hold time.
    sp.write(config([p1, peer(R2, 64502, hold=60)], community="64512:200"))
    wait_until(
        lambda: "graceful-shutdown" in communities(r2), timeout=20, what="GRACEFUL_SHUTDOWN at r2 first"
    )
    wait_until(lambda: session(r2, NODE_R2)[0] > r2_session[0], timeout=40, what="r2 renewed")
    r2.wait_state(NODE_R2, timeout=40)
    wait_until(lambda: sp.peer("r2").get("hold_time") == 60, timeout=20, what="hold time 60 at r2")
    assert int(r2.neighbor(NODE_R2)["bgpTimerHoldTimeMsecs"]) == 60_000
    assert communities(r1) == ["64512:200"] and session(r1, NODE_R1) == r1_session
    resets = [ln for ln in sp.log().splitlines() if "left Established" in ln]
    assert len(resets) == 1 and "peer r2 " in resets[0] and "Cease / Administrative Reset" in resets[0]

    # 4. An invalid file: refused in one line; everything stays.
    sp.write({**config([p1, peer(R2, 64502, hold=2)]), "routes": []})
    sp.hup()
    wait_until(lambda: "configuration not reloaded" in sp.log(), timeout=20, what="the refusal logged")
    # One refusal per attempt: the file watcher and the SIGHUP may both have tried this file.
    lines = [ln for ln in sp.log().splitlines() if "configuration not reloaded" in ln]
    assert 1 <= len(lines) <= 2
    for line in lines:
        assert " ERROR " in line and "peers[1].hold_time: " in line and "the running one stays" in line
    # The refusal and any application happen in one step of the loop: nothing may have changed.
    assert communities(r1) == ["64512:200"] and session(r1, NODE_R1) == r1_session

    # 5. Remove r1: Cease / Peer De-configured there, and its route goes; r2 untouched.
    r2_session = session(r2, NODE_R2)
    sp.write(config([peer(R2, 64502, hold=60)], community="64512:200"))
    r1.wait_state(NODE_R1, "!Established", timeout=30)
    wait_until(lambda: not communities(r1), timeout=20, what="route withdrawn at r1")
    assert session(r2, NODE_R2) == r2_session and [p["name"] for p in sp.status()["peers"]] == ["r2"]
    downs = [ln for ln in sp.log().splitlines() if "left Established" in ln and "peer r1 " in ln]
    assert len(downs) == 1 and "Cease / Peer Deconfigured" in downs[0]
    assert "Traceback" not in sp.log()
