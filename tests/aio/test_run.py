"""``bgpsvc run`` as a real process against a library ``Speaker``, on loopback only.

Covers: the listener accepts the configured peer, routes from config and a routes file arrive, SIGHUP
applies a routes-file change as a delta, ``bgpsvc status`` reports, and SIGTERM performs the RFC 8326
graceful shutdown (65535:0 on every route, drain, Cease with the RFC 9003 message).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.fsm import DownKind, SessionDown
from bgpsvc.wire import IPV4_UNICAST, Communities, Community, Prefix
from tests.loopback import free_port, wait_for

BGPSVC = [sys.executable, "-m", "bgpsvc.app.cli"]


def test_run_status_sighup_and_graceful_sigterm(tmp_path: Path) -> None:
    bgp_port = free_port("127.0.0.1")
    control_port = free_port("127.0.0.1")
    routes_file = tmp_path / "routes.txt"
    routes_file.write_text("203.0.113.0/24\n")
    cfg = tmp_path / "bgpsvc.yaml"
    cfg.write_text(f"""
local_as: 64512
router_id: 192.0.2.1
listen: [{{address: 127.0.0.1, port: {bgp_port}}}]
control: {{address: 127.0.0.1, port: {control_port}}}
drain_time: 1.5
log_format: json
shutdown_message: "node maintenance"
peers:
  - address: 127.0.0.2
    peer_as: 64513
    passive: true
    families: [ipv4-unicast]
routes:
  - prefix: 198.51.100.0/24
    med: 7
routes_file: {routes_file}
""")
    proc = subprocess.Popen(
        [*BGPSVC, "run", "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        asyncio.run(_drive(proc, bgp_port, control_port, routes_file))
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate(timeout=10)[0].decode()
        print(out)
    # Structured logs: every line is one JSON object.
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    assert any("SIGHUP" in r["msg"] for r in records)


async def _drive(proc: subprocess.Popen[bytes], bgp_port: int, control_port: int, routes_file: Path) -> None:
    peer = Speaker(
        SpeakerConfig(
            64513,
            "192.0.2.2",
            listen=(),
            peers=(
                PeerConfig(
                    "127.0.0.1",
                    64512,
                    port=bgp_port,
                    local_address="127.0.0.2",
                    store_routes=True,
                    families=(IPV4_UNICAST,),
                    connect_retry_time=0.5,
                ),
            ),
        )
    )
    downs: list[SessionDown] = []

    async def collect() -> None:
        async for ev in peer.events():
            if isinstance(ev.event, SessionDown):
                downs.append(ev.event)

    await peer.start()
    collector = asyncio.create_task(collect())
    try:
        await peer.wait_established(20)
        rib_in = peer.drivers[0].peer.rib_in
        assert rib_in is not None
        table = await wait_for(
            lambda: rib_in.routes.get(IPV4_UNICAST, {}) if rib_in.count(IPV4_UNICAST) == 2 else None,
            10,
            "two routes",
        )
        assert set(table) == {Prefix.from_network("198.51.100.0/24"), Prefix.from_network("203.0.113.0/24")}

        # SIGHUP: the routes file changed; only the difference is sent.
        routes_file.write_text("203.0.113.128/25\n")
        proc.send_signal(signal.SIGHUP)
        await wait_for(
            lambda: (
                Prefix.from_network("203.0.113.128/25") in rib_in.routes[IPV4_UNICAST]
                and Prefix.from_network("203.0.113.0/24") not in rib_in.routes[IPV4_UNICAST]
            ),
            10,
            "reload",
        )

        status = subprocess.run(
            [*BGPSVC, "status", "--json", "--control", f"127.0.0.1:{control_port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        data = json.loads(status.stdout)
        assert data["peers"][0]["state"] == "Established" and data["peers"][0]["prefixes_sent"] == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{control_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'bgpsvc_session_established{peer="127.0.0.2"} 1.0' in metrics
        assert 'bgpsvc_prefixes_advertised{peer="127.0.0.2"} 2.0' in metrics
        table_text = subprocess.run(
            [*BGPSVC, "status", "--control", f"127.0.0.1:{control_port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        assert "127.0.0.2" in table_text and "Established" in table_text

        # SIGTERM: every route re-advertised with GRACEFUL_SHUTDOWN, then (after the drain) the Cease.
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)

        def all_gshut() -> bool:
            routes = rib_in.routes.get(IPV4_UNICAST, {})
            return len(routes) == 2 and all(
                any(
                    isinstance(a, Communities) and Community.GRACEFUL_SHUTDOWN in a.values
                    for a in r.attributes
                )
                for r in routes.values()
            )

        await wait_for(all_gshut, 10, "GRACEFUL_SHUTDOWN on every route")
        assert not downs, "the session must stay up during the drain"
        await wait_for(lambda: downs, 10, "session down after the drain")
        assert time.monotonic() - t0 >= 1.4
        note = downs[0].reason.notification
        assert downs[0].reason.kind is DownKind.NOTIFICATION_RECEIVED
        assert note is not None and (note.code, note.subcode) == (6, 2)
        assert note.shutdown_message == "node maintenance"
        assert proc.wait(timeout=10) == 0
    finally:
        await peer.stop(0)
        collector.cancel()
