"""``bgpsvc routes``: what a running speaker sent each peer (Adj-RIB-Out) and what it received.

A real ``bgpsvc run`` process (the venv's console script) and a library ``Speaker`` as its peer, on
loopback: the JSON and the table show each route with the attributes that went on the wire (our AS
prepended, next hop self, MED, communities), ``--received`` shows the peer's routes where they are
stored and says so where they are not, ``--peer`` filters and an unknown peer is an error.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import IPV4_UNICAST, Prefix
from tests.loopback import free_port, wait_for

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BGPSVC, *args], capture_output=True, text=True, timeout=30, check=False)


def test_routes_shows_advertised_and_received_routes(tmp_path: Path) -> None:
    bgp_port, control_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    cfg = tmp_path / "bgpsvc.yaml"
    cfg.write_text(f"""
local_as: 64512
router_id: 192.0.2.1
listen: [{{address: 127.0.0.1, port: {bgp_port}}}]
control: {{address: 127.0.0.1, port: {control_port}}}
drain_time: 0
peers:
  - {{name: lib, address: 127.0.0.2, peer_as: 64513, passive: true, store_routes: true,
     families: [ipv4-unicast]}}
  - {{name: quiet, address: 127.0.0.3, peer_as: 64514, passive: true}}
routes:
  - {{prefix: 198.51.100.0/24, med: 7, communities: ["64512:100", NO_EXPORT],
     large_communities: ["64512:1:2"]}}
  - 203.0.113.0/25
""")
    proc = subprocess.Popen([BGPSVC, "run", "-c", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        asyncio.run(_drive(bgp_port, f"127.0.0.1:{control_port}"))
    finally:
        proc.terminate()
        print(proc.communicate(timeout=20)[0].decode())


async def _drive(bgp_port: int, control: str) -> None:
    peer = Speaker(
        SpeakerConfig(
            64513,
            "192.0.2.2",
            peers=(
                PeerConfig(
                    "127.0.0.1",
                    64512,
                    port=bgp_port,
                    local_address="127.0.0.2",
                    families=(IPV4_UNICAST,),
                    connect_retry_time=0.5,
                ),
            ),
        )
    )
    await peer.start()
    try:
        peer.set_routes({Prefix.from_network("203.0.113.128/25"): RouteAttrs(med=5)})
        await peer.wait_established(20)

        def received() -> Any:
            out = cli("routes", "--control", control, "--received", "--json")
            if out.returncode != 0:
                return None
            data = json.loads(out.stdout)
            lib = next(p for p in data["peers"] if p["name"] == "lib")
            return data if lib["received"] and len(lib["advertised"]) == 2 else None

        data = await wait_for(received, 15, "both ways in bgpsvc routes")
        await asyncio.to_thread(_check, data, control)
    finally:
        await peer.stop(0)


def _check(data: dict[str, Any], control: str) -> None:
    lib, quiet = data["peers"]
    assert (lib["name"], lib["address"], lib["peer_as"], lib["state"]) == (
        "lib",
        "127.0.0.2",
        64513,
        "Established",
    )
    adv = {r["prefix"]: r for r in lib["advertised"]}
    assert list(adv) == ["198.51.100.0/24", "203.0.113.0/25"]
    r = adv["198.51.100.0/24"]
    assert r["next_hop"] == ["127.0.0.1"] and r["as_path"] == "64512" and r["origin"] == "igp"
    assert r["med"] == 7 and r["large_communities"] == ["64512:1:2"]
    assert "64512:100" in r["communities"] and len(r["communities"]) == 2
    assert "med" not in adv["203.0.113.0/25"]
    (got,) = lib["received"]
    assert (got["prefix"], got["med"], got["as_path"], got["next_hop"]) == (
        "203.0.113.128/25",
        5,
        "64513",
        ["127.0.0.2"],
    )
    assert quiet["state"] != "Established" and quiet["advertised"] == [] and quiet["received"] is None

    table = cli("routes", "--control", control)
    assert table.returncode == 0, table.stderr
    assert re.search(r"peer lib \(127\.0\.0\.2\) AS 64513, Established: 2 prefixes advertised", table.stdout)
    assert re.search(
        r"198\.51\.100\.0/24\s+127\.0\.0\.1\s+7\s+-\s+64512 i\s+64512:100 \S+ 64512:1:2", table.stdout
    )
    one = cli("routes", "--control", control, "--peer", "quiet", "--received")
    assert one.returncode == 0 and "lib" not in one.stdout
    assert "received routes are not stored" in one.stdout
    only = json.loads(cli("routes", "--control", control, "--peer", "127.0.0.2", "--json").stdout)
    assert [p["name"] for p in only["peers"]] == ["lib"] and "received" not in only["peers"][0]
    unknown = cli("routes", "--control", control, "--peer", "nope")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "bgpsvc: no peer 'nope'"
