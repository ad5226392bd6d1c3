"""Two speakers with BFD on 127.0.0.1 / 127.0.0.2: the Speaker's BfdThread, its sessions, its events.

The coupling itself (what a failure does to BGP) is decided and tested in the sans-IO Peer
(tests/fsm/test_bfd_coupling.py); FRR and BIRD as peers are in tests/integration. Here: a session per
BFD-enabled peer, intervals as configured, the peer's AdminDown taken as no failure, a silent BFD
(the other side's BFD thread gone) taking BGP down and holding it until BFD is back, status and log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from dataclasses import replace
from typing import Any

import pytest

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.app.metrics import StatusCollector, metrics_handler
from bgpsvc.app.status import AppStatus, bfd_column
from bgpsvc.bfd import BfdStateChanged, ChangeReason
from bgpsvc.bfd import State as BfdState
from bgpsvc.fsm import BfdPeerStatus, BfdSettings, DownKind, SessionDown, State
from bgpsvc.wire import IPV4_UNICAST
from tests.loopback import free_port, wait_for

BFD = BfdSettings(min_rx_ms=100, min_tx_ms=100, multiplier=3)


def free_udp_ports() -> tuple[int, int]:
    """Two UDP ports free on 127.0.0.1 and 127.0.0.2 (BFD's single hop and multihop ports here)."""
    out: list[int] = []
    while len(out) < 2:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
                try:
                    t.bind(("127.0.0.2", port))
                except OSError:
                    continue
        out.append(port)
    return out[0], out[1]


def speaker(me: str, other: str, ases: tuple[int, int], port: int, udp: tuple[int, int]) -> Speaker:
    asn, peer_as = ases
    peer = PeerConfig(other, peer_as, port=port, local_address=me, connect_retry_time=0.5,
                      idle_hold_time=0.2, families=(IPV4_UNICAST,), bfd=BFD)  # fmt: skip
    cfg = SpeakerConfig(asn, me.replace("127.0.0", "192.0.2"), listen=((me, port),), peers=(peer,))
    return Speaker(cfg, bfd_listen=(me,), bfd_ports=udp)


def scrape(sp: Speaker) -> str:
    """What /metrics would serve."""
    return metrics_handler(StatusCollector(lambda: AppStatus(sp.status())))()[2].decode()


def as_dict(bfd: BfdPeerStatus | None) -> dict[str, Any] | None:
    """The /status JSON form of a peer's BFD part (what ``bgpsvc status`` reads)."""
    return dataclasses.asdict(bfd) if bfd is not None else None


def bfd_state(sp: Speaker) -> str | None:
    st = sp.status().peers[0].bfd
    return st.state if st is not None else None


def test_speakers_couple_bgp_to_bfd(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bgpsvc")

    async def main() -> None:
        port, udp = free_port(), free_udp_ports()
        a = speaker("127.0.0.1", "127.0.0.2", (64512, 64513), port, udp)
        b = speaker("127.0.0.2", "127.0.0.1", (64513, 64512), port, udp)
        b_events: list[object] = []

        async def watch() -> None:
            async for ev in b.events():
                b_events.append(ev.event)

        watcher = asyncio.create_task(watch())
        await asyncio.gather(a.start(), b.start())
        await a.wait_established(15)
        await b.wait_established(15)
        await wait_for(lambda: bfd_state(a) == bfd_state(b) == "Up", 10, "BFD Up on both sides")
        # The Poll Sequence brings both to 100 ms once Up (RFC 5880 §6.8.3).
        await wait_for(lambda: b.status().peers[0].bfd.tx_interval_ms == 100.0, 5, "100 ms")  # type: ignore[union-attr]
        st = b.status().peers[0].bfd
        assert st is not None and (st.detection_time_ms, st.multiplier) == (300.0, 3)
        assert st.local_address == "127.0.0.2"
        assert not st.holding and not st.multihop and st.flaps == 0

        # A's BFD dies silently (its thread ends, no AdminDown): B detects it and takes BGP down.
        a_bfd = a._bfd
        assert a_bfd.thread is not None
        a_bfd.thread.stop()
        await wait_for(lambda: b.peer("127.0.0.1").bfd_held, 5, "B's BGP held by BFD")
        down = next(e for e in b_events if isinstance(e, SessionDown) and e.was_established)
        assert down.reason.kind is DownKind.BFD_DOWN
        assert "detection time expired" in down.reason.detail
        fail = next(e for e in b_events if isinstance(e, BfdStateChanged) and e.is_failure)
        assert fail.reason is ChangeReason.DETECTION_TIME_EXPIRED
        # Held: A keeps trying to connect (it knows nothing), B refuses while BFD is down.
        await asyncio.sleep(2.0)
        assert b.peer("127.0.0.1").state is State.IDLE and a.peer("127.0.0.2").state is not State.ESTABLISHED
        pst = b.status().peers[0]
        assert pst.bfd is not None and pst.bfd.holding and pst.bfd.state == "Down" and pst.bfd.flaps == 1
        assert pst.last_down is not None and pst.last_down.startswith("BFD down")
        metrics = scrape(b)
        assert 'bgpsvc_bfd_state{peer="127.0.0.1",state="Down"} 1.0' in metrics
        assert 'bgpsvc_bfd_flaps_total{peer="127.0.0.1"} 1.0' in metrics
        assert 'bgpsvc_bfd_holding{peer="127.0.0.1"} 1.0' in metrics
        assert bfd_column(dataclasses.asdict(pst.bfd)) == "Down held"

        # A's BFD comes back: BFD Up, then BGP.
        a_bfd.thread = None
        a_bfd._keys.clear()
        a_bfd._settings.clear()
        a_bfd.sync(a.drivers)
        await wait_for(lambda: bfd_state(b) == "Up", 10, "BFD Up again")
        await b.wait_established(10)
        assert not b.peer("127.0.0.1").bfd_held
        await wait_for(lambda: "100ms" in bfd_column(as_dict(b.status().peers[0].bfd)), 5, "100 ms again")
        assert bfd_column(as_dict(b.status().peers[0].bfd)) == "Up 100ms x3"
        metrics = scrape(b)
        assert 'bgpsvc_bfd_state{peer="127.0.0.1",state="Up"} 1.0' in metrics
        assert 'bgpsvc_bfd_detection_time_seconds{peer="127.0.0.1"} 0.3' in metrics

        # A asks for slower packets (live reconfiguration): a Poll Sequence, no flap (RFC 5880 §6.8.3).
        slower = BfdSettings(min_rx_ms=200, min_tx_ms=200, multiplier=3)
        a.reconfigure(replace(a.config, peers=(replace(a.config.peers[0], bfd=slower),)))
        await wait_for(lambda: b.status().peers[0].bfd.detection_time_ms == 600.0, 5, "600 ms")  # type: ignore[union-attr]
        assert b.status().peers[0].bfd.flaps == 1 and b.peer("127.0.0.1").established  # type: ignore[union-attr]

        # A stops running BFD for B (configuration): AdminDown, which is no failure. BGP stays up.
        a.reconfigure(replace(a.config, peers=(replace(a.config.peers[0], bfd=None),)))
        changes = lambda: [e for e in b_events if isinstance(e, BfdStateChanged)]  # noqa: E731
        await wait_for(lambda: changes()[-1].old is BfdState.UP, 5, "B's BFD leaves Up (AdminDown)")
        admin = changes()[-1]
        assert admin.reason is ChangeReason.NEIGHBOR_ADMIN_DOWN and not admin.is_failure
        assert bfd_state(b) == "Down"
        await asyncio.sleep(0.5)
        assert b.peer("127.0.0.1").established and not b.peer("127.0.0.1").bfd_held
        assert a.status().peers[0].bfd is None and a._bfd.thread is not None
        await a.stop(0)
        await b.stop(0)
        watcher.cancel()

    asyncio.run(main())
    text = caplog.text
    assert "BFD 127.0.0.1 from 127.0.0.2: Down: control detection time expired" in text
    assert "the BGP session is down until BFD is Up again" in text
    assert "neighbor administratively down; not a failure, BGP stays" in text
