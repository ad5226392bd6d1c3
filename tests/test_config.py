"""``bgpsvc run`` configuration: valid files load, invalid ones name the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bgpsvc.aio import session_config
from bgpsvc.app.config import ConfigError, load_config, parse_config, parse_routes_file
from bgpsvc.fsm import BfdSettings, Session, State, build_open
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import IPV4_UNICAST, Community, GracefulRestart, Prefix

GOOD = """
local_as: 64512
router_id: 192.0.2.1
listen: [{address: 127.0.0.1, port: 1179}]
drain_time: 2
peers:
  - address: 192.0.2.254
    peer_as: 4200000001
    hold_time: 30
    password: s3cret
    ttl_security: true
    families: [ipv4-unicast]
routes:
  - prefix: 198.51.100.0/24
    med: 10
    communities: ["64512:100", NO_EXPORT]
  - 203.0.113.0/25
"""


def test_good_config_loads(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(GOOD)
    cfg = load_config(f)
    assert cfg.speaker.local_as == 64512 and cfg.speaker.listen == (("127.0.0.1", 1179),)
    (peer,) = cfg.speaker.peers
    assert peer.peer_as == 4200000001 and peer.ttl_security and peer.families == (IPV4_UNICAST,)
    assert cfg.routes[Prefix.from_network("198.51.100.0/24")] == RouteAttrs(
        med=10, communities=((64512 << 16) | 100, Community.NO_EXPORT)
    )
    assert cfg.routes[Prefix.from_network("203.0.113.0/25")] == RouteAttrs()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"local_as": 0}, r"^local_as: 0 is outside"),
        ({"router_id": "2001:db8::1"}, r"^router_id: must be an IPv4"),
        ({"router_id": None}, r"^router_id: required"),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "hold_time": 2}]},
            r"^peers\[0\]\.hold_time: must be 0 or 3",
        ),
        ({"peers": [{"address": "not-an-ip", "peer_as": 1}]}, r"^peers\[0\]\.address: "),
        ({"peers": [{"address": "192.0.2.9", "peer_as": 1, "holdtime": 9}]}, r"did you mean 'hold_time'"),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "families": ["ipv5"]}]},
            r"^peers\[0\]\.families: unknown",
        ),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "multihop": 2, "ttl_security": True}]},
            r"^peers\[0\]\.ttl_security: cannot be combined",
        ),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1}, {"address": "192.0.2.9", "peer_as": 2}]},
            r"^peers\[1\]\.address: 192\.0\.2\.9 is configured twice",
        ),
        ({"routes": [{"prefix": "198.51.100.0/24", "med": -1}]}, r"^routes\[0\]\.med: -1 is outside"),
        ({"routes": [{"prefix": "198.51.100.1/24"}]}, r"^routes\[0\]\.prefix: .*host bits"),
        (
            {"routes": [{"prefix": "198.51.100.0/24", "communities": ["1:2:3"]}]},
            r"^routes\[0\]\.communities: ",
        ),
        ({"graceful_restart": {"restart_time": 5000}}, r"^graceful_restart\.restart_time: 5000 is outside"),
        ({"log_level": "loud"}, r"^log_level: must be"),
        ({"listen": [{"address": "127.0.0.1", "port": 70000}]}, r"^listen\[0\]\.port: 70000 is outside"),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "bfd": "fast"}]},
            r"^peers\[0\]\.bfd: no BFD profile 'fast' in bfd_profiles \(known: none defined\)",
        ),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "bfd": {"min_rx_ms": 5}}]},
            r"^peers\[0\]\.bfd\.min_rx_ms: 5 is outside 10\.\.60000",
        ),
        (
            {"peers": [{"address": "192.0.2.9", "peer_as": 1, "bfd": {"interval": 100}}]},
            r"^peers\[0\]\.bfd\.interval: unknown field",
        ),
        ({"peers": [{"address": "192.0.2.9", "peer_as": 1, "bfd": 100}]}, r"^peers\[0\]\.bfd: expected true"),
        (
            {"bfd_profiles": {"fast": {"multiplier": 0}}},
            r"^bfd_profiles\.fast\.multiplier: 0 is outside 1\.\.255",
        ),
        ({"bfd_profiles": ["fast"]}, r"^bfd_profiles: expected a mapping"),
        ({"kubernetes": {"node_name": "n", "lease_poll": 0}}, r"^kubernetes\.lease_poll: must be > 0"),
    ],
)
def test_bad_config_names_the_field(patch: dict[str, object], message: str) -> None:
    data = yaml.safe_load(GOOD)
    data.update(patch)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_routes_file_format() -> None:
    routes = parse_routes_file(
        "# anycast\n198.51.100.0/24 med=5 communities=64512:1,NO_EXPORT\n2001:db8:1::/48\n\n", "routes.txt"
    )
    assert routes[Prefix.from_network("198.51.100.0/24")].med == 5
    assert Prefix.from_network("2001:db8:1::/48") in routes
    with pytest.raises(ConfigError, match=r"^routes\.txt:2: expected key=value"):
        parse_routes_file("198.51.100.0/24\n203.0.113.0/24 med\n", "routes.txt")
    with pytest.raises(ConfigError, match=r"^routes\.txt:1\.colour: unknown field"):
        parse_routes_file("198.51.100.0/24 colour=blue\n", "routes.txt")


def test_damping_and_the_restart_bit_are_configurable() -> None:
    """Issue 13: idle hold times per peer (BIRD's error wait time), and the Restart State bit on start."""
    data = yaml.safe_load(GOOD)
    data["peers"][0].update(idle_hold_time=5, max_idle_hold_time=300, connect_retry_time=1)
    data["restarting_on_start"] = False
    cfg = parse_config(data)
    (peer,) = cfg.speaker.peers
    assert (peer.idle_hold_time, peer.max_idle_hold_time) == (5.0, 300.0)
    sc = session_config(cfg.speaker, peer, restarting=cfg.speaker.restarting_on_start)
    gr = build_open(sc).get(GracefulRestart)
    assert gr is not None and not gr.restarting
    s = Session(sc)
    s.start(0.0)
    s.connection_made(0.0)
    s.handle_timer(240.0)  # no OPEN: the hold timer ends the attempt (a failure, damped)
    assert s.state is State.IDLE
    hold = s.get_timer()
    assert hold is not None and 240 + 5 * 0.75 <= hold <= 240 + 5
    default = parse_config(yaml.safe_load(GOOD)).speaker
    assert default.restarting_on_start and (
        default.peers[0].idle_hold_time,
        default.peers[0].max_idle_hold_time,
    ) == (
        1.0,
        120.0,
    )


def test_a_host_route_file_takes_the_fast_path_and_a_bad_line_is_still_named() -> None:
    text = "".join(f"198.51.100.{i}/32\n" for i in range(200))
    routes = parse_routes_file(text, "routes.txt")
    assert len(routes) == 200 and Prefix.from_network("198.51.100.7/32") in routes
    assert len({id(a) for a in routes.values()}) == 1  # one shared RouteAttrs: packed together
    with pytest.raises(ConfigError, match=r"^routes\.txt:2: "):
        parse_routes_file("198.51.100.1/32\n198.51.100.300/32\n", "routes.txt")
    mixed = parse_routes_file("198.51.100.0/24\n2001:db8::/48\n198.51.100.9/32 med=5\n", "routes.txt")
    assert mixed[Prefix.from_network("198.51.100.9/32")].med == 5 and len(mixed) == 3


def test_bfd_per_peer_inline_by_profile_or_defaults() -> None:
    """Issue 10 part 3: ``bfd:`` true, a bfd_profiles name, inline settings, or absent."""
    data = yaml.safe_load(GOOD)
    data["bfd_profiles"] = {"fast": {"min_rx_ms": 100, "min_tx_ms": 100}, "slow": None}
    data["peers"] = [
        {"address": "192.0.2.1", "peer_as": 1, "bfd": "fast"},
        {"address": "192.0.2.2", "peer_as": 1, "bfd": True},
        {"address": "192.0.2.3", "peer_as": 1, "bfd": {"min_tx_ms": 50, "multiplier": 5}},
        {"address": "192.0.2.4", "peer_as": 1, "bfd": False},
        {"address": "192.0.2.5", "peer_as": 1},
        {"address": "192.0.2.6", "peer_as": 1, "bfd": "slow"},
    ]
    peers = parse_config(data).speaker.peers
    assert [p.bfd for p in peers] == [
        BfdSettings(100, 100, 3),
        BfdSettings(300, 300, 3),
        BfdSettings(300, 50, 5),
        None,
        None,
        BfdSettings(),
    ]
    assert peers[0].bfd is not None and peers[0].bfd.detection_time_ms == 300


def test_a_prefix_with_host_bits_is_refused_by_the_fast_parser_too() -> None:
    for bad in ("198.51.100.1/24", "198.51.100.128/24", "2001:db8::1/64", "198.51.100.7/31"):
        with pytest.raises(ConfigError, match=r"^r\.txt:1: .*host bits"):
            parse_routes_file(f"{bad}\n", "r.txt")
