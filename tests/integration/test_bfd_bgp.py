"""BGP coupled to BFD (RFC 5882, RFC 9384) against real routers: ``bgpsvc run`` in one namespace, FRR
(bgpd + bfdd, ``neighbor X bfd profile``) or BIRD 2 (``bfd on``) in the other.

Asserted: BGP and BFD both up with the configured 100 ms x 3 on both sides; the link silently dropped
(tc, no carrier change) takes BGP down through BFD on both sides, well before any hold timer (90 s),
and our status says why; BGP stays down while BFD is down, also when only BFD packets are dropped and
TCP still works (the router's reconnection attempts are refused); both come back with the link. Our
restart exit (SIGUSR1) sends BFD AdminDown, so FRR keeps our routes as graceful-restart helper. BFD
multihop (RFC 5883) with eBGP multihop on both sides.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpsvc.app.config import load_config

from . import netlab
from .speaker import BgpsvcProcess
from .test_bfd_interop import BIRD, BIRDC, Bird, _need

US, ROUTER = "192.0.2.1", "192.0.2.2"
US_AS, ROUTER_AS = 64512, 64500
ROUTE = "198.51.100.0/24"

FRR_CONF = f"""
bfd
 profile fast
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 !
!
router bgp {ROUTER_AS}
 bgp router-id {ROUTER}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {US} remote-as {US_AS}
 neighbor {US} timers connect 1
 neighbor {US} bfd profile fast
 address-family ipv4 unicast
  neighbor {US} activate
 exit-address-family
exit
"""


def speaker_config() -> dict[str, Any]:
    return {
        "local_as": US_AS,
        "router_id": US,
        "listen": False,
        "drain_time": 0,
        "bfd_profiles": {"fast": {"min_rx_ms": 100, "min_tx_ms": 100, "multiplier": 3}},
        "peers": [
            {
                "address": ROUTER,
                "peer_as": ROUTER_AS,
                "connect_retry_time": 1,
                "families": ["ipv4-unicast"],
                "bfd": "fast",
            }
        ],
        "routes": [{"prefix": ROUTE}],
    }


def drop_bfd(ns: netlab.Netns, ifname: str, on: bool) -> None:
    """Drop only BFD (UDP 3784) both ways on ``ifname``; TCP (BGP) still passes.

    tc only, with the modules ``drop_traffic`` needs (no gact, no prio): u32 filters on a ``clsact``
    qdisc redirect BFD datagrams into a veth whose queue holds nothing (``pfifo limit 0``).
    """
    tc = [netlab.TC]
    if not on:
        ns.run([*tc, "qdisc", "del", "dev", ifname, "clsact"])
        return
    if ns.run([netlab.IP, "link", "show", "bfdsink0"], check=False).returncode != 0:
        ns.run([netlab.IP, "link", "add", "bfdsink0", "type", "veth", "peer", "name", "bfdsink1"])
        for dev in ("bfdsink0", "bfdsink1"):
            ns.run([netlab.IP, "link", "set", dev, "up"])
        ns.run([*tc, "qdisc", "replace", "dev", "bfdsink0", "root", "pfifo", "limit", "0"])
    ns.run([*tc, "qdisc", "replace", "dev", ifname, "clsact"])
    bfd = ["u32", "match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", "3784", "0xffff"]
    for way in ("egress", "ingress"):
        ns.run([*tc, "filter", "add", "dev", ifname, way, "protocol", "ip", "prio", "1", *bfd,
                "action", "mirred", "egress", "redirect", "dev", "bfdsink0"])  # fmt: skip


class Link:
    """Our namespace, the router's, and our end of the veth between them."""

    def __init__(self, lab: netlab.Lab) -> None:
        self.us, self.router = lab.netns("us"), lab.netns("router")
        self.if_us, _ = lab.veth(self.us, self.router, f"{US}/24", f"{ROUTER}/24")


@pytest.fixture
def link(lab: netlab.Lab) -> Link:
    return Link(lab)


@pytest.fixture
def ours(link: Link) -> Iterator[BgpsvcProcess]:
    sp = BgpsvcProcess(link.us, speaker_config(), "bfd-speaker")
    try:
        yield sp
    finally:
        sp.stop()


def our_peer(sp: BgpsvcProcess) -> dict[str, Any]:
    return sp.peer(ROUTER)


def our_bfd(sp: BgpsvcProcess) -> dict[str, Any]:
    bfd: dict[str, Any] | None = our_peer(sp).get("bfd")
    assert bfd is not None, f"no BFD in our status: {our_peer(sp)}"
    return bfd


def wait_ours(sp: BgpsvcProcess, state: str, bfd: str, timeout: float = 20) -> None:
    netlab.wait_until(lambda: (our_peer(sp)["state"], our_bfd(sp)["state"]) == (state, bfd), timeout=timeout,
                      what=f"our BGP {state} and BFD {bfd}")  # fmt: skip


def assert_stays_down(sp: BgpsvcProcess, router_established: Any, seconds: float) -> None:
    """For ``seconds``: our session held Idle by BFD, the router's never Established."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peer = our_peer(sp)
        assert peer["state"] == "Idle" and peer["bfd"]["holding"], peer
        assert not router_established(), "the router re-established BGP while BFD was down"
        time.sleep(0.2)


# ------------------------------------------------------------------ FRR


@pytest.fixture
def frr(link: Link, frr_factory: Any) -> netlab.Frr:
    _need(str(netlab.FRR_BIN_DIR / "bfdd"), "FRR bfdd (Debian package frr)")
    router: netlab.Frr = frr_factory(link.router, FRR_CONF, "tor", daemons=("zebra", "bgpd", "bfdd"))
    return router


def frr_bfd(frr: netlab.Frr) -> dict[str, Any]:
    return next(p for p in frr.json("show bfd peers") if p["peer"] == US)


def test_frr_bgp_goes_down_through_bfd_and_stays_down_while_bfd_is_down(
    frr: netlab.Frr, ours: BgpsvcProcess, link: Link
) -> None:
    ours.start()
    frr.wait_state(US, "Established", timeout=30)
    netlab.wait_until(lambda: frr_bfd(frr)["status"] == "up", timeout=15, what="FRR's BFD up")
    wait_ours(ours, "Established", "Up")
    netlab.wait_until(lambda: our_bfd(ours)["tx_interval_ms"] == 100, timeout=10, what="our 100 ms")
    # The intervals as configured, on both sides (100 ms x 3: 300 ms detection).
    peer = frr_bfd(frr)
    assert (peer["remote-receive-interval"], peer["remote-transmit-interval"]) == (100, 100)
    assert (peer["receive-interval"], peer["transmit-interval"], peer["detect-multiplier"]) == (100, 100, 3)
    bfd = our_bfd(ours)
    assert (bfd["tx_interval_ms"], bfd["rx_interval_ms"], bfd["detection_time_ms"]) == (100, 100, 300)
    assert frr.neighbor(US)["peerBfdInfo"]["status"] == "Up"
    assert frr.has_route(ROUTE)

    # The link goes silent: both sides take BGP down through BFD, long before the 90 s hold time.
    # (Flaps counted from here: a loaded 2-core machine can cost a 300 ms detection one while starting.)
    flaps = bfd["flaps"]
    t0 = time.monotonic()
    netlab.drop_traffic(link.us, link.if_us, True)
    frr.wait_state(US, "!Established", timeout=10)
    wait_ours(ours, "Idle", "Down", timeout=10)
    took = time.monotonic() - t0
    assert took < 30, f"BGP went down after {took:.1f} s: that is no BFD"
    nb = frr.neighbor(US)
    # FRR took BGP down because its BFD did, and says so: Cease/BFD Down sent (RFC 9384).
    assert (nb["lastNotificationReason"], nb["lastErrorCodeSubcode"]) == ("Cease/BFD Down", "060A"), nb
    assert nb["peerBfdInfo"]["status"] == "Down"
    peer = our_peer(ours)
    assert peer["last_down"].startswith("BFD down") and "detection time expired" in peer["last_down"]
    assert peer["bfd"]["holding"] and peer["bfd"]["flaps"] == flaps + 1
    assert not frr.has_route(ROUTE), "FRR kept our route (stale?) after BFD went down"
    assert_stays_down(ours, lambda: frr.peer_state(US) == "Established", 3.0)
    netlab.drop_traffic(link.us, link.if_us, False)
    wait_ours(ours, "Established", "Up", timeout=30)
    frr.wait_state(US, "Established", timeout=10)
    netlab.wait_until(lambda: frr.has_route(ROUTE), timeout=10, what="the route back at FRR")

    # Only BFD is dropped, TCP works: BGP still goes down and stays down (FRR's reconnections refused).
    flaps = our_bfd(ours)["flaps"]
    drop_bfd(link.us, link.if_us, True)
    try:
        wait_ours(ours, "Idle", "Down", timeout=10)
        frr.wait_state(US, "!Established", timeout=10)
        assert_stays_down(ours, lambda: frr.peer_state(US) == "Established", 5.0)
        # Whoever noticed first told the other (TCP works): no stale route of ours stays behind at FRR,
        # neither after its own BFD failure nor after our Hard Reset carrying Cease/BFD Down.
        assert not frr.has_route(ROUTE), frr.best_path(ROUTE)
    finally:
        drop_bfd(link.us, link.if_us, False)
    wait_ours(ours, "Established", "Up", timeout=30)
    frr.wait_state(US, "Established", timeout=10)
    assert our_bfd(ours)["flaps"] >= flaps + 1


def test_frr_keeps_our_routes_when_we_exit_for_a_restart(frr: netlab.Frr, ours: BgpsvcProcess) -> None:
    """SIGUSR1 (graceful restart): the connection closes without NOTIFICATION first, then our BFD goes
    AdminDown (RFC 5882 §3.2: no failure). FRR, already graceful-restart helper by then, keeps our route
    as stale (FRR 8.4 takes the AdminDown for a BFD down nonetheless; had it come first, it would have
    dropped our routes with a Hard Reset)."""
    ours.start()
    frr.wait_state(US, "Established", timeout=30)
    wait_ours(ours, "Established", "Up")
    netlab.wait_until(lambda: frr.has_route(ROUTE), timeout=10, what="our route at FRR")
    ours.signal(signal.SIGUSR1)
    assert ours.wait_exit(timeout=20) == 0
    netlab.wait_until(lambda: frr_bfd(frr)["status"] == "down", timeout=5, what="FRR's BFD down")
    assert frr_bfd(frr)["remote-diagnostic"] == "administratively down"
    time.sleep(1.0)  # more than the 300 ms detection time: whatever FRR does about BFD is done by now
    path = frr.best_path(ROUTE)
    assert path is not None and path.get("stale"), path
    assert "restartTimerRemaining" in frr.neighbor(US)["gracefulRestartInfo"]["timers"]


def test_frr_multihop_bfd_takes_its_source_from_the_bgp_connection(link: Link, frr_factory: Any) -> None:
    """eBGP multihop on both sides: BFD multihop (RFC 5883, UDP 4784); ours starts once the BGP connection
    has told it our address (no local_address configured), FRR's from its own connection."""
    _need(str(netlab.FRR_BIN_DIR / "bfdd"), "FRR bfdd (Debian package frr)")
    conf = FRR_CONF.replace(f" neighbor {US} timers connect 1\n", f" neighbor {US} timers connect 1\n"
                            f" neighbor {US} ebgp-multihop 2\n")  # fmt: skip
    frr = frr_factory(link.router, conf, "tor", daemons=("zebra", "bgpd", "bfdd"))
    config = speaker_config()
    config["peers"][0]["multihop"] = 2
    sp = BgpsvcProcess(link.us, config, "bfd-multihop")
    try:
        sp.start()
        frr.wait_state(US, "Established", timeout=30)
        wait_ours(sp, "Established", "Up", timeout=30)
        bfd = our_bfd(sp)
        assert bfd["multihop"] and bfd["local_address"] == US
        peer = next(p for p in frr.json("show bfd peers") if p["peer"] == US)
        assert peer["multihop"] and peer["status"] == "up" and peer["local"] == ROUTER
        netlab.drop_traffic(link.us, link.if_us, True)
        wait_ours(sp, "Idle", "Down", timeout=10)
        frr.wait_state(US, "!Established", timeout=10)
        assert our_peer(sp)["last_down"].startswith("BFD down")
        netlab.drop_traffic(link.us, link.if_us, False)
        wait_ours(sp, "Established", "Up", timeout=30)
    finally:
        sp.stop()


# ------------------------------------------------------------------ BIRD 2

BIRD_CONF = f"""
router id {ROUTER};
protocol device {{ }}
protocol bfd {{
  interface "*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }};
}}
protocol bgp node1 {{
  local {ROUTER} as {ROUTER_AS};
  neighbor {US} as {US_AS};
  bfd on;
  connect retry time 1;
  error wait time 1, 4;
  ipv4 {{ import all; export none; }};
}}
"""


@pytest.fixture
def bird(link: Link, _netlab_session: None) -> Iterator[Bird]:
    _need(BIRD, "BIRD 2 (Debian package bird2)")
    _need(BIRDC, "birdc (Debian package bird2)")
    b = Bird(link.router, BIRD_CONF)
    try:
        yield b
    finally:
        b.stop()


def bird_bgp(bird: Bird) -> str:
    """``show protocols all node1``: the BGP state line and the last error."""
    return bird.birdc("show protocols all node1")


def bird_established(bird: Bird) -> bool:
    return "BGP state:          Established" in bird_bgp(bird)


def test_bird_bgp_goes_down_through_bfd_and_comes_back(bird: Bird, ours: BgpsvcProcess, link: Link) -> None:
    ours.start()
    netlab.wait_until(lambda: bird_established(bird), timeout=30, what="BIRD's BGP Established")
    netlab.wait_until(lambda: bird.sessions().get(US, {}).get("state") == "Up", timeout=15, what="BIRD BFD")
    wait_ours(ours, "Established", "Up")
    netlab.wait_until(lambda: our_bfd(ours)["tx_interval_ms"] == 100, timeout=10, what="our 100 ms")
    assert bird.sessions()[US] == {"state": "Up", "interval": 100, "timeout": 300}
    assert our_bfd(ours)["detection_time_ms"] == 300
    netlab.drop_traffic(link.us, link.if_us, True)
    netlab.wait_until(lambda: not bird_established(bird), timeout=10, what="BIRD's BGP down")
    wait_ours(ours, "Idle", "Down", timeout=10)
    assert "BFD session down" in bird_bgp(bird), bird_bgp(bird)
    assert our_peer(ours)["last_down"].startswith("BFD down")
    assert_stays_down(ours, lambda: bird_established(bird), 3.0)
    netlab.drop_traffic(link.us, link.if_us, False)
    wait_ours(ours, "Established", "Up", timeout=30)
    netlab.wait_until(lambda: bird_established(bird), timeout=10, what="BIRD's BGP back")


def test_speaker_config_is_valid(tmp_path: Path) -> None:
    """The config the tests above run with loads (no root needed to find a typo)."""
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(speaker_config()))
    (peer,) = load_config(f).speaker.peers
    assert peer.bfd is not None and peer.bfd.detection_time_ms == 300
