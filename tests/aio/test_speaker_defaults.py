"""Library defaults a new user meets (issue 9): no listener unless asked, ``set_routes`` takes the prefix
forms ``announce`` takes, ``stop()`` does not wait out a drain when nothing was advertised, and a
``bgpsvc run`` config without peers says so in the log."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
from pathlib import Path

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.app.config import DEFAULT_LISTEN, parse_config
from bgpsvc.fsm import DownKind, SessionDown
from bgpsvc.rib import DEFAULT_ROUTE, RouteAttrs
from bgpsvc.wire import IPV4_UNICAST, Prefix
from tests.loopback import free_port, wait_for

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))


def test_the_library_speaker_listens_nowhere_by_default() -> None:
    async def main() -> None:
        config = SpeakerConfig(64512, "192.0.2.1", peers=(PeerConfig("127.0.0.2", 64513, passive=True),))
        assert config.listen == ()
        speaker = Speaker(config)
        await speaker.start()
        try:
            assert speaker.listen_addresses == []
        finally:
            await speaker.stop()

    asyncio.run(main())


def test_bgpsvc_run_listens_on_179_by_default() -> None:
    """The program, unlike the library, accepts sessions unless told not to (``listen: false``)."""
    cfg = parse_config({"local_as": 64512, "router_id": "192.0.2.1"})
    assert cfg.speaker.listen == DEFAULT_LISTEN == (("0.0.0.0", 179), ("::", 179))
    assert parse_config({"local_as": 64512, "router_id": "192.0.2.1", "listen": False}).speaker.listen == ()


def test_set_routes_takes_what_announce_takes() -> None:
    async def main() -> None:
        speaker = Speaker(SpeakerConfig(64512, "192.0.2.1"))
        await speaker.start()
        try:
            med = RouteAttrs(med=10)
            v4, v6 = Prefix.from_network("198.51.100.0/24"), Prefix.from_network("2001:db8:1::/48")
            speaker.set_routes({"198.51.100.0/24": med, "2001:db8:1::/48": None})
            assert dict(speaker.routes) == {v4: med, v6: DEFAULT_ROUTE}
            speaker.set_routes({v4: None})
            speaker.announce("2001:db8:1::/48", med)
            speaker.announce(Prefix.from_network("203.0.113.0/24"))
            assert dict(speaker.routes) == {
                v4: DEFAULT_ROUTE,
                v6: med,
                Prefix.from_network("203.0.113.0/24"): DEFAULT_ROUTE,
            }
            speaker.withdraw("203.0.113.0/24")
            speaker.withdraw(v4)
            assert dict(speaker.routes) == {v6: med}
        finally:
            await speaker.stop()

    asyncio.run(main())


def test_stop_skips_the_drain_when_nothing_was_advertised() -> None:
    """``drain_time`` is an hour: a stop that drained would not end within the bounded wait."""

    async def main() -> None:
        port = free_port()
        ours = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                drain_time=3600,
                peers=(PeerConfig("127.0.0.2", 64513, passive=True, families=(IPV4_UNICAST,)),),
            )
        )
        theirs = Speaker(
            SpeakerConfig(
                64513,
                "192.0.2.2",
                peers=(
                    PeerConfig(
                        "127.0.0.1",
                        64512,
                        port=port,
                        local_address="127.0.0.2",
                        families=(IPV4_UNICAST,),
                        connect_retry_time=0.5,
                    ),
                ),
            )
        )
        downs: list[SessionDown] = []

        async def watch() -> None:
            async for ev in theirs.events():
                if isinstance(ev.event, SessionDown):
                    downs.append(ev.event)

        await ours.start()
        await theirs.start()
        watcher = asyncio.create_task(watch())
        try:
            await ours.wait_established(20)
            await asyncio.wait_for(ours.stop(), timeout=60)
            await wait_for(lambda: downs, 10, "the Cease at the peer")
            note = downs[0].reason.notification
            assert downs[0].reason.kind is DownKind.NOTIFICATION_RECEIVED
            assert note is not None and (note.code, note.subcode) == (6, 2)
        finally:
            await theirs.stop(0)
            watcher.cancel()

    asyncio.run(main())


def test_a_config_without_peers_logs_a_warning(tmp_path: Path) -> None:
    assert parse_config({"local_as": 64512, "router_id": "192.0.2.1"}).warnings == (
        "no peers configured: nothing will be advertised",
    )
    cfg = tmp_path / "nopeers.yaml"
    cfg.write_text(
        f"local_as: 64512\nrouter_id: 192.0.2.1\nlisten: false\ncontrol: {{port: {free_port()}}}\n"
    )
    proc = subprocess.Popen([BGPSVC, "run", "-c", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 30)  # the warning comes before anything starts
        assert ready, "bgpsvc run logged nothing"
        line = proc.stderr.readline()
        assert " WARNING " in line and "no peers configured: nothing will be advertised" in line
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
