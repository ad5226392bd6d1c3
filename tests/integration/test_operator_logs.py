"""What an operator sees in ``bgpsvc run``'s log at the default level, against FRR in namespaces (issue 9).

A ``bgpsvc run`` process (the venv's console script, so this file also runs against older trees) with
peers on one FRR router:

- ``flappy``: FRR takes the session up, then resets it at our first UPDATE because its NEXT_HOP is a
  martian (FRR sends UPDATE Message Error / Invalid Next Hop Attribute); the session keeps coming back
  and going down again: a flapping session.
- ``refused``: port 1179 on the router, where nothing listens: connection refused.
- ``wrong-as`` (a run of its own, FRR keys neighbours on our address): we expect AS 64999 but FRR is AS
  64500, so our OPEN check fails (Bad Peer AS).

Each of the three must be visible at INFO (no ``log_level`` in the file), in text and in
``--log-format json`` (where each line also carries the structured fields); ``--log-level debug`` adds
lines but never a Python repr.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .netlab import Frr, Lab, Netns, wait_until

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))
ROUTER, SPEAKER = "192.0.2.1", "192.0.2.11"
ROUTER_AS, LOCAL_AS = 64500, 64512
#: A martian next hop (RFC 1122 "this network"): FRR answers it with a NOTIFICATION, not a withdrawal.
MARTIAN = "0.0.0.0"
#: What a repr of one of our dataclasses or a plain object looks like: ``SessionUp(params=...``.
REPR = re.compile(r"\b[A-Z][A-Za-z0-9]+\([a-z_]+=|<[\w.]+ object at 0x")

FRR_CONFIG = f"""
router bgp {ROUTER_AS}
 bgp router-id {ROUTER}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {SPEAKER} remote-as {LOCAL_AS}
 neighbor {SPEAKER} timers connect 1
 address-family ipv4 unicast
  neighbor {SPEAKER} activate
 exit-address-family
exit
"""


FAST = {"connect_retry_time": 1, "idle_hold_time": 0.5, "max_idle_hold_time": 2, "families": ["ipv4-unicast"]}


def speaker_config(*peers: dict[str, Any], next_hop: str | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"prefix": "198.51.100.0/24"}
    if next_hop is not None:
        route["next_hop"] = next_hop
    return {
        "local_as": LOCAL_AS,
        "router_id": SPEAKER,
        "listen": False,
        "control": False,
        "drain_time": 0,
        "peers": [{**FAST, **p} for p in peers],
        "routes": [route],
    }


class Run:
    """``bgpsvc run`` in a namespace, its stderr in a file; ended by PID."""

    def __init__(self, ns: Netns, tmp: Path, config: dict[str, Any], args: list[str]) -> None:
        self.cfg = tmp / "bgpsvc.yaml"
        self.cfg.write_text(yaml.safe_dump(config))
        self.err = tmp / "stderr.log"
        with self.err.open("wb") as err:
            self.proc = ns.popen([BGPSVC, "run", "-c", str(self.cfg), *args], stdout=err, stderr=err)

    def lines(self) -> list[str]:
        return self.err.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def net(lab: Lab, frr_factory: Callable[..., Frr]) -> Iterator[tuple[Netns, Frr]]:
    router, node = lab.netns("router"), lab.netns("node")
    lab.veth(router, node, f"{ROUTER}/24", f"{SPEAKER}/24")
    frr = frr_factory(router, FRR_CONFIG, "router")
    yield node, frr


def matching(lines: list[str], *needles: str) -> list[str]:
    return [ln for ln in lines if all(n.lower() in ln.lower() for n in needles)]


@pytest.mark.parametrize("fmt", ["text", "json", "debug"])
def test_flaps_wrong_as_and_refused_connections_are_logged(
    net: tuple[Netns, Frr], tmp_path: Path, fmt: str
) -> None:
    node, _ = net
    cfg = speaker_config(
        {"name": "flappy", "address": ROUTER, "peer_as": ROUTER_AS},
        {"name": "refused", "address": ROUTER, "port": 1179, "peer_as": ROUTER_AS},
        next_hop=MARTIAN,
    )
    args = {"text": [], "json": ["--log-format", "json"], "debug": ["--log-level", "debug"]}[fmt]
    run = Run(node, tmp_path, cfg, args)
    try:
        # The flap: Established, then FRR's NOTIFICATION, at least twice (the session keeps flapping).
        wait_until(
            lambda: len(matching(run.lines(), "flappy", "left Established", "Next Hop")) >= 2,
            timeout=40,
            what="two flaps of 'flappy' logged",
        )
        wait_until(
            lambda: matching(run.lines(), "refused", "connection refused"),
            timeout=20,
            what="the refused connection logged",
        )
        lines = run.lines()
        assert not any("Traceback" in ln for ln in lines)
        if fmt == "json":
            records = [json.loads(ln) for ln in lines]
            downs = [r for r in records if r.get("peer") == "flappy" and r.get("event") == "SessionDown"]
            # A first attempt may fail before Established (FRR still starting); the flaps are what we test.
            flaps = [r for r in downs if r["was_established"]]
            assert flaps, records
            d = flaps[0]
            assert d["level"] == "warning" and "left Established" in d["msg"]
            assert d["reason"] == "notification received"
            assert d["notification"] == "UPDATE Message Error / Invalid Next Hop Attribute"
            assert (d["code"], d["subcode"]) == (3, 8)
            refused = [r for r in records if r.get("peer") == "refused"]
            assert refused and refused[0]["event"] == "ConnectionFailed"
            assert refused[0]["detail"] == "connection refused"
        else:
            assert matching(lines, "flappy", "Established (hold time")
            if fmt == "debug":
                assert not [ln for ln in lines if REPR.search(ln)], "a Python repr in the debug log"
            else:
                assert all(" DEBUG " not in ln for ln in lines)
    finally:
        run.stop()
        print("\n".join(run.lines()))


def test_a_wrong_peer_as_is_logged(net: tuple[Netns, Frr], tmp_path: Path) -> None:
    node, _ = net
    cfg = speaker_config({"name": "wrong-as", "address": ROUTER, "peer_as": 64999})  # FRR is AS 64500
    run = Run(node, tmp_path, cfg, ["--log-format", "json"])
    try:
        wait_until(
            lambda: matching(run.lines(), "wrong-as", "Bad Peer AS"), timeout=30, what="Bad Peer AS logged"
        )
        records = [json.loads(ln) for ln in run.lines()]
        bad = next(r for r in records if "bad peer as" in str(r.get("notification", "")).lower())
        assert (bad["level"], bad["peer"], bad["event"]) == ("warning", "wrong-as", "SessionDown")
        assert bad["was_established"] is False and bad["reason"] == "notification sent"
        assert (bad["code"], bad["subcode"]) == (2, 2)
        assert "peer AS 64500, expected 64999" in bad["msg"]
    finally:
        run.stop()
        print("\n".join(run.lines()))
