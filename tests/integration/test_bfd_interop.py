"""Our BFD (bgpsvc.bfd + bgpsvc.aio.bfd) against real FRR bfdd and BIRD 2 in network namespaces.

Our side runs in a ``BfdThread`` whose thread joined the "us" namespace, so its sockets live there.
Asserted: sessions Up over IPv4 and IPv6 (and multihop with FRR), intervals negotiated as configured
on both sides, Down detected in both directions (traffic dropped on the link, our side stopped),
the peer's AdminDown reported as no failure (RFC 5882), and forged TTL 254 packets dropped and
counted while the same packet with TTL 255 is believed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.aio.bfd import BfdThread
from bgpsvc.bfd import (
    BfdConfig,
    BfdEvent,
    ChangeReason,
    ControlPacket,
    DropReason,
    SessionKey,
    State,
    encode_control,
)
from bgpsvc.lab.netns import in_netns

from . import netlab

US4, PEER4 = "192.0.2.1", "192.0.2.2"
US6, PEER6 = "2001:db8::1", "2001:db8::2"
BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"


def _need(path: str, what: str) -> None:
    if not os.access(path, os.X_OK):
        msg = f"{path} missing: install {what}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def _join(ns: netlab.Netns) -> Callable[[], None]:
    """A thread_init that moves the calling thread into ``ns`` (setns(2), per thread)."""

    def join() -> None:
        fd = os.open(f"/var/run/netns/{ns.name}", os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    return join


class Ours:
    """Our BFD in namespace ``ns``: a BfdThread collecting its events."""

    def __init__(self, ns: netlab.Netns) -> None:
        self.events: list[BfdEvent] = []
        self.thread = BfdThread(on_event=self.events.append, thread_init=_join(ns))
        self.thread.start()

    def state(self, peer: str, multihop: bool = False) -> State:
        return self.thread.status(SessionKey(peer, multihop=multihop)).state

    def wait(self, peer: str, state: State, timeout: float = 15, multihop: bool = False) -> None:
        netlab.wait_until(lambda: self.state(peer, multihop) is state, timeout=timeout,
                          what=f"our session to {peer} {state}")  # fmt: skip

    def changes(self, peer: str) -> list[BfdEvent]:
        return [e for e in list(self.events) if e.key.peer == peer]


@pytest.fixture
def link(lab: netlab.Lab) -> tuple[netlab.Netns, netlab.Netns, str, str]:
    us, peer = lab.netns("us"), lab.netns("peer")
    if_us, if_peer = lab.veth(us, peer, f"{US4}/24 {US6}/64", f"{PEER4}/24 {PEER6}/64")
    return us, peer, if_us, if_peer


@pytest.fixture
def ours(link: tuple[netlab.Netns, netlab.Netns, str, str]) -> Iterator[Ours]:
    o = Ours(link[0])
    try:
        yield o
    finally:
        o.thread.stop()


def forge(ns: netlab.Netns, src: str, dst: str, pkt: ControlPacket, ttl: int) -> None:
    """Send ``pkt`` from ``src`` (in ``ns``) to ``dst``:3784 with IP TTL / hop limit ``ttl``."""

    def send() -> None:
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            s.bind((src, 0))
            s.sendto(encode_control(pkt), (dst, 3784))

    in_netns(ns.name, send)


def check_ttl_enforced(ours: Ours, ns: netlab.Netns, src: str, dst: str) -> None:
    """Forged Down packets with TTL 254 are dropped and counted; with TTL 255 the same one is believed."""
    key = SessionKey(src)
    st = ours.thread.status(key)
    assert st.state is State.UP
    forged = ControlPacket(State.DOWN, 3, st.remote_discr, your_discriminator=st.local_discr)
    for _ in range(3):
        forge(ns, src, dst, forged, ttl=254)
    netlab.wait_until(lambda: dict(ours.thread.status(key).dropped).get(DropReason.TTL) == 3,
                      timeout=5, what="3 TTL drops counted")  # fmt: skip
    assert ours.state(src) is State.UP and ours.thread.status(key).flaps == 0
    forge(ns, src, dst, forged, ttl=255)  # control: the TTL alone made the difference
    netlab.wait_until(lambda: ours.thread.status(key).flaps == 1, timeout=5, what="forged Down believed")
    ev = next(e for e in reversed(ours.changes(src)) if e.old is State.UP)
    assert ev.reason is ChangeReason.NEIGHBOR_DOWN and ev.is_failure
    ours.wait(src, State.UP)  # the real peer brings it back


# ------------------------------------------------------------------ FRR bfdd

FRR_CONF = f"""
bfd
 peer {US4}
  receive-interval 100
  transmit-interval 150
  detect-multiplier 4
 !
 peer {US6}
  receive-interval 200
  transmit-interval 250
 !
 peer {US4} multihop local-address {PEER4}
  receive-interval 300
  transmit-interval 300
 !
!
"""


@pytest.fixture
def frr(link: tuple[netlab.Netns, netlab.Netns, str, str], frr_factory: Any) -> netlab.Frr:
    _need(str(netlab.FRR_BIN_DIR / "bfdd"), "FRR bfdd (Debian package frr)")
    router: netlab.Frr = frr_factory(link[1], FRR_CONF, "bfdpeer", daemons=("zebra", "bfdd"))
    return router


def frr_peer(frr: netlab.Frr, peer: str, multihop: bool = False) -> dict[str, Any]:
    return next(p for p in frr.json("show bfd peers") if p["peer"] == peer and p["multihop"] is multihop)


def test_frr_sessions_up_with_negotiated_intervals(frr: netlab.Frr, ours: Ours) -> None:
    t = ours.thread
    t.add_session(BfdConfig(SessionKey(PEER4), desired_min_tx_us=200_000, required_min_rx_us=120_000))
    t.add_session(BfdConfig(SessionKey(PEER6), desired_min_tx_us=100_000, required_min_rx_us=110_000))
    t.add_session(BfdConfig(SessionKey(PEER4, multihop=True), detect_mult=5))
    for peer, mh in ((PEER4, False), (PEER6, False), (PEER4, True)):
        ours.wait(peer, State.UP, multihop=mh)
    netlab.wait_until(lambda: all(p["status"] == "up" for p in frr.json("show bfd peers")), timeout=10,
                      what="FRR sees all three sessions up")  # fmt: skip
    v4 = frr_peer(frr, US4)
    assert (v4["remote-transmit-interval"], v4["remote-receive-interval"]) == (200, 120)
    assert v4["remote-detect-multiplier"] == 3 and v4["remote-id"] == t.status(SessionKey(PEER4)).local_discr
    s4 = t.status(SessionKey(PEER4))
    assert (s4.remote_desired_min_tx_us, s4.remote_min_rx_us, s4.remote_detect_mult) == (150_000, 100_000, 4)
    assert s4.tx_interval_us == 200_000  # max(our 200 ms tx, their 100 ms rx)
    assert s4.detection_time_us == 4 * 150_000  # their mult x max(our 120 ms rx, their 150 ms tx)
    v6 = frr_peer(frr, US6)
    assert (v6["remote-transmit-interval"], v6["remote-receive-interval"]) == (100, 110)
    assert t.status(SessionKey(PEER6)).tx_interval_us == 200_000  # their 200 ms rx wins
    mh = frr_peer(frr, US4, multihop=True)
    assert mh["remote-detect-multiplier"] == 5 and mh["remote-transmit-interval"] == 300
    assert all(s.dropped == () for s in t.statuses())


def test_frr_down_detected_both_ways(
    frr: netlab.Frr, ours: Ours, link: tuple[netlab.Netns, netlab.Netns, str, str]
) -> None:
    us, _, if_us, _ = link
    ours.thread.add_session(BfdConfig(SessionKey(PEER4), 100_000, 100_000, 3))
    ours.wait(PEER4, State.UP)
    netlab.wait_until(lambda: frr_peer(frr, US4)["status"] == "up", timeout=10, what="FRR up")
    netlab.drop_traffic(us, if_us, True)
    ours.wait(PEER4, State.DOWN, timeout=5)
    ev = ours.changes(PEER4)[-1]
    assert ev.reason is ChangeReason.DETECTION_TIME_EXPIRED and ev.is_failure
    netlab.wait_until(lambda: frr_peer(frr, US4)["status"] == "down", timeout=5, what="FRR down")
    assert frr_peer(frr, US4)["diagnostic"] == "control detection time expired"
    netlab.drop_traffic(us, if_us, False)
    ours.wait(PEER4, State.UP, timeout=15)
    # Our side stops without a word: FRR's detection timer must notice.
    ours.thread.stop()
    netlab.wait_until(
        lambda: frr_peer(frr, US4)["status"] == "down", timeout=5, what="FRR notices we stopped"
    )
    assert frr_peer(frr, US4)["diagnostic"] == "control detection time expired"


def test_frr_shutdown_is_not_a_failure_and_our_admin_down_neither(frr: netlab.Frr, ours: Ours) -> None:
    key = SessionKey(PEER4)
    ours.thread.add_session(BfdConfig(key, 100_000, 100_000, 3))
    ours.wait(PEER4, State.UP)
    frr.configure(f"bfd\n peer {US4}\n  shutdown\n !\n!\n")
    ours.wait(PEER4, State.DOWN, timeout=5)
    ev = ours.changes(PEER4)[-1]
    assert ev.reason is ChangeReason.NEIGHBOR_ADMIN_DOWN and not ev.is_failure
    frr.configure(f"bfd\n peer {US4}\n  no shutdown\n !\n!\n")
    ours.wait(PEER4, State.UP, timeout=15)
    ours.thread.admin_down(key)
    netlab.wait_until(lambda: frr_peer(frr, US4)["remote-diagnostic"] == "administratively down",
                      timeout=5, what="FRR sees our AdminDown")  # fmt: skip
    assert frr_peer(frr, US4)["status"] == "down"


def test_frr_wrong_ttl_dropped_and_counted(
    frr: netlab.Frr, ours: Ours, link: tuple[netlab.Netns, netlab.Netns, str, str]
) -> None:
    ours.thread.add_session(BfdConfig(SessionKey(PEER4), 100_000, 100_000, 3))
    ours.thread.add_session(BfdConfig(SessionKey(PEER6), 100_000, 100_000, 3))
    ours.wait(PEER4, State.UP)
    ours.wait(PEER6, State.UP)
    check_ttl_enforced(ours, link[1], PEER4, US4)
    check_ttl_enforced(ours, link[1], PEER6, US6)


# ------------------------------------------------------------------ BIRD 2


class Bird:
    """BIRD 2 in a namespace: ``bird -f -c conf -s sock -P pid``, ended by its PID."""

    def __init__(self, ns: netlab.Netns, config: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bgpsvc-bird-"))
        self.conf, self.sock = self.dir / "bird.conf", self.dir / "bird.ctl"
        self.conf.write_text(f'log "{self.dir}/bird.log" all;\n{config}')
        self.out = (self.dir / "bird.out").open("wb")
        argv = [BIRD, "-f", "-c", str(self.conf), "-s", str(self.sock), "-P", str(self.dir / "bird.pid")]
        self.proc = ns.popen(argv, stdout=self.out, stderr=subprocess.STDOUT)
        netlab.wait_until(self._ready, timeout=15, interval=0.1, what="BIRD control socket")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise netlab.AbortWait(f"bird exited {self.proc.returncode}: {self.log()}")
        return self.sock.exists() and "ready" in self.birdc("show status")

    def birdc(self, command: str) -> str:
        argv = [BIRDC, "-s", str(self.sock), *command.split()]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout

    def sessions(self) -> dict[str, dict[str, Any]]:
        """``show bfd sessions``: address -> state, TX interval and detection timeout in ms."""
        out: dict[str, dict[str, Any]] = {}
        for line in self.birdc("show bfd sessions").splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[2] in ("Up", "Down", "Init", "AdminDown"):
                out[parts[0]] = {"state": parts[2], "interval": round(float(parts[-2]) * 1000),
                                 "timeout": round(float(parts[-1]) * 1000)}  # fmt: skip
        return out

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "bird.log").read_text()[-2000:] + (self.dir / "bird.out").read_text()[-2000:]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


BIRD_CONF = f"""
router id {PEER4};
protocol device {{ }}
protocol bfd b1 {{
  interface "*" {{ min rx interval 100 ms; min tx interval 150 ms; multiplier 4; }};
  neighbor {US4};
  neighbor {US6};
}}
"""


@pytest.fixture
def bird(link: tuple[netlab.Netns, netlab.Netns, str, str]) -> Iterator[Bird]:
    _need(BIRD, "BIRD 2 (Debian package bird2)")
    _need(BIRDC, "birdc (Debian package bird2)")
    b = Bird(link[1], BIRD_CONF)
    try:
        yield b
    finally:
        b.stop()


def test_bird_sessions_up_with_negotiated_intervals(bird: Bird, ours: Ours) -> None:
    ours.thread.add_session(
        BfdConfig(SessionKey(PEER4), desired_min_tx_us=200_000, required_min_rx_us=120_000)
    )
    ours.thread.add_session(
        BfdConfig(SessionKey(PEER6), desired_min_tx_us=100_000, required_min_rx_us=300_000)
    )
    ours.wait(PEER4, State.UP)
    ours.wait(PEER6, State.UP)
    netlab.wait_until(lambda: [s["state"] for s in bird.sessions().values()] == ["Up", "Up"],
                      timeout=10, what="BIRD sees both sessions up")  # fmt: skip
    sessions = bird.sessions()
    # BIRD's TX = max(its 150 ms, our rx); its timeout = our mult 3 x max(its 100 ms rx, our tx)
    assert sessions[US4] == {"state": "Up", "interval": 150, "timeout": 600}
    assert sessions[US6] == {"state": "Up", "interval": 300, "timeout": 300}
    s4 = ours.thread.status(SessionKey(PEER4))
    assert (s4.remote_desired_min_tx_us, s4.remote_min_rx_us, s4.remote_detect_mult) == (150_000, 100_000, 4)
    assert s4.tx_interval_us == 200_000 and s4.detection_time_us == 4 * 150_000


def test_bird_down_detected_both_ways_and_wrong_ttl(
    bird: Bird, ours: Ours, link: tuple[netlab.Netns, netlab.Netns, str, str]
) -> None:
    us, peer_ns, if_us, _ = link
    ours.thread.add_session(BfdConfig(SessionKey(PEER4), 100_000, 100_000, 3))
    ours.wait(PEER4, State.UP)
    netlab.wait_until(lambda: bird.sessions().get(US4, {}).get("state") == "Up", timeout=10, what="BIRD up")
    check_ttl_enforced(ours, peer_ns, PEER4, US4)
    netlab.drop_traffic(us, if_us, True)
    ours.wait(PEER4, State.DOWN, timeout=5)
    assert ours.changes(PEER4)[-1].reason is ChangeReason.DETECTION_TIME_EXPIRED
    netlab.wait_until(lambda: bird.sessions()[US4]["state"] == "Down", timeout=5, what="BIRD down")
    netlab.drop_traffic(us, if_us, False)
    ours.wait(PEER4, State.UP, timeout=15)
    netlab.wait_until(lambda: bird.sessions()[US4]["state"] == "Up", timeout=10, what="BIRD up again")
    ours.thread.stop()
    netlab.wait_until(
        lambda: bird.sessions()[US4]["state"] == "Down", timeout=5, what="BIRD notices we stopped"
    )
