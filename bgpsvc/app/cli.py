"""Command line: ``bgpsvc run``, ``status``, ``routes``, ``plan``, ``demo`` and the codec tools ``decode``,
``encode``.

Each command imports what it needs when it runs: ``bgpsvc decode`` loads neither the Kubernetes client
nor the in-repo lab.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from ..wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    AsPath,
    Communities,
    LargeCommunities,
    LocalPref,
    MpReachNlri,
    MultiExitDisc,
    Negotiated,
    NextHop,
    NotificationError,
    Origin,
    PathAttribute,
    Prefix,
    community,
    large_community,
    pack_updates,
    pack_withdrawals,
    split_messages,
)
from ..wire.describe import describe

_ORIGINS = {"igp": 0, "egp": 1, "incomplete": 2}


def _ctx(args: argparse.Namespace) -> Negotiated:
    fams = frozenset(IPV4_UNICAST if f == "ipv4" else IPV6_UNICAST for f in args.add_path)
    return Negotiated(
        four_octet_as=not args.two_octet,
        extended_message=args.extended_message,
        add_path_rx=fams,
        add_path_tx=fams,
    )


def _clean_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise SystemExit(f"error: not hexadecimal: {text[:40]!r}") from None


def _print_messages(data: bytes, ctx: Negotiated, as_json: bool) -> int:
    try:
        msgs = split_messages(data, ctx)
    except NotificationError as exc:
        print(f"malformed: NOTIFICATION code {exc.code} subcode {exc.subcode}: {exc.reason}", file=sys.stderr)
        return 1
    for m in msgs:
        d = describe(m)
        print(json.dumps(d, indent=None if as_json else 2, ensure_ascii=False))
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode hex messages given as arguments (or on stdin with ``-``)."""
    text = sys.stdin.read() if args.hex == ["-"] else " ".join(args.hex)
    return _print_messages(_clean_hex(text), _ctx(args), args.json)


def build_attributes(args: argparse.Namespace, v6: bool) -> tuple[PathAttribute, ...]:
    """Attributes from the encode flags."""
    attrs: list[PathAttribute] = [
        Origin(_ORIGINS[args.origin]),
        AsPath.sequence(*(int(a) for a in args.as_path.replace(",", " ").split())),
    ]
    nh = ipaddress.ip_address(args.next_hop)
    if v6:
        hops: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = (nh,)
        if args.link_local:
            hops = (nh, ipaddress.IPv6Address(args.link_local))
        attrs.insert(0, MpReachNlri(2, 1, hops, ()))
    else:
        if not isinstance(nh, ipaddress.IPv4Address):
            raise SystemExit("error: --next-hop must be IPv4 for IPv4 prefixes")
        attrs.append(NextHop(nh))
    if args.med is not None:
        attrs.append(MultiExitDisc(args.med))
    if args.local_pref is not None:
        attrs.append(LocalPref(args.local_pref))
    if args.community:
        attrs.append(Communities(tuple(community(c) for c in args.community)))
    if args.large_community:
        attrs.append(LargeCommunities(tuple(large_community(c) for c in args.large_community)))
    return tuple(attrs)


def encode_args(args: argparse.Namespace) -> list[bytes]:
    """UPDATE messages for the encode flags."""
    ctx = _ctx(args)
    prefixes = [Prefix.from_network(p) for p in args.prefix]
    out: list[bytes] = []
    for afi in (1, 2):
        group = [p for p in prefixes if p.afi == afi]
        if group:
            out += pack_updates(build_attributes(args, afi == 2), group, ctx)
    if args.withdraw:
        out += pack_withdrawals([Prefix.from_network(p) for p in args.withdraw], ctx)
    return out


def cmd_encode(args: argparse.Namespace) -> int:
    """Print the hex of UPDATE messages built from flags."""
    if not args.prefix and not args.withdraw:
        raise SystemExit("error: give at least one --prefix or --withdraw")
    try:
        for m in encode_args(args):
            print(m.hex())
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode an UPDATE, show its bytes, decode them back and show the result."""
    enc = _encode_parser().parse_args(
        [
            "--prefix",
            "198.51.100.0/24",
            "--prefix",
            "203.0.113.7/32",
            "--next-hop",
            "192.0.2.1",
            "--as-path",
            "64512 4200000001",
            "--med",
            "10",
            "--community",
            "64512:100",
            "--community",
            "GRACEFUL_SHUTDOWN",
            "--large-community",
            "4200000001:1:2",
        ]
    )
    msgs = encode_args(enc)
    print("# bgpsvc codec demo: an UPDATE for 198.51.100.0/24 and 203.0.113.7/32")
    print("$ bgpsvc encode --prefix 198.51.100.0/24 --prefix 203.0.113.7/32 --next-hop 192.0.2.1 \\")
    print("    --as-path '64512 4200000001' --med 10 --community 64512:100 --community GRACEFUL_SHUTDOWN \\")
    print("    --large-community 4200000001:1:2")
    for m in msgs:
        print(m.hex())
    print(f"\n$ bgpsvc decode {msgs[0].hex()[:48]}...")
    return _print_messages(b"".join(msgs), Negotiated(), False)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the speaker from a YAML config until SIGTERM/SIGINT."""
    from .config import ConfigError, load_config
    from .logs import setup_logging
    from .runtime import run

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bgpsvc: invalid config: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or config.log_level, args.log_format or config.log_format)
    return asyncio.run(run(config, args.config))


def _fetch(url: str) -> tuple[int, object]:
    """GET a control endpoint URL: (HTTP status, parsed JSON); status 0 when it cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None
    except (OSError, ValueError) as exc:
        print(f"bgpsvc: cannot read {url}: {exc} (is bgpsvc run up? see --control)", file=sys.stderr)
        return 0, None


def cmd_status(args: argparse.Namespace) -> int:
    """Show the running speaker's peers (from its control endpoint)."""
    code, data = _fetch(f"http://{args.control}/status")
    if code != 200 or not isinstance(data, dict):
        return 1
    from .status import format_status

    print(json.dumps(data, indent=2) if args.json else format_status(data))
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    """Show what was sent to each peer (Adj-RIB-Out) or, with --received, what it sent (Adj-RIB-In)."""
    from .ribview import format_routes

    query = urllib.parse.urlencode(
        {k: v for k, v in (("peer", args.peer), ("received", "1" if args.received else None)) if v}
    )
    code, data = _fetch(f"http://{args.control}/routes" + (f"?{query}" if query else ""))
    if code == 404 and isinstance(data, dict) and "error" in data:
        print(f"bgpsvc: {data['error']}", file=sys.stderr)
        return 2
    if code != 200 or not isinstance(data, dict):
        return 1
    print(json.dumps(data, indent=2) if args.json else format_routes(data, args.received))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Print what each node would advertise and why, from one read of the cluster."""
    from ..k8s.kubeconfig import KubeconfigError, api_client
    from ..k8s.plan import plan, read_snapshot, render
    from .config import ConfigError, load_config

    # plan runs anywhere (a laptop with a kubeconfig): NODE_NAME need not be set when a node is named,
    # and peer secrets are not read (no session is opened).
    env = dict(os.environ)
    env.setdefault("NODE_NAME", args.node or "(plan)")
    try:
        config = load_config(args.config, env, secrets=False)
        kube = config.kubernetes
        if kube is None:
            raise ConfigError(f"{args.config}: plan needs a kubernetes: section")
        api = api_client(args.kubeconfig or kube.kubeconfig)
    except (ConfigError, KubeconfigError) as exc:
        print(f"bgpsvc: {exc}", file=sys.stderr)
        return 2
    try:
        snapshot = read_snapshot(api, timeout=args.timeout)
    except (TimeoutError, OSError, ValueError) as exc:
        print(f"bgpsvc: cannot read the cluster: {exc}", file=sys.stderr)
        return 1
    known = sorted(name for _, name in snapshot.nodes)
    nodes = known if args.all_nodes else [args.node or kube.node_name]
    if not args.all_nodes and ("", nodes[0]) not in snapshot.nodes:
        print(
            f"bgpsvc: node {nodes[0]!r}: no such Node in the cluster (nodes: {', '.join(known) or 'none'})",
            file=sys.stderr,
        )
        return 2
    result = plan(snapshot, nodes, kube.policy_for(config.speaker.local_as))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def cmd_demo_main(args: argparse.Namespace) -> int:
    """The self-contained demo (simulated cluster, node speakers, a router)."""
    from .demo import main as demo_main

    return demo_main(args.duration, args.pause, args.mode)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--two-octet", action="store_true", help="peer without 4-octet AS support (RFC 6793)")
    p.add_argument("--extended-message", action="store_true", help="allow 65535-octet messages (RFC 8654)")
    p.add_argument(
        "--add-path",
        action="append",
        default=[],
        choices=["ipv4", "ipv6"],
        help="families with ADD-PATH path identifiers (RFC 7911)",
    )


def _encode_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="bgpsvc encode")
    p.add_argument("--prefix", action="append", default=[], help="prefix to announce (repeatable)")
    p.add_argument("--withdraw", action="append", default=[], help="prefix to withdraw (repeatable)")
    p.add_argument("--next-hop", default="192.0.2.1", help="NEXT_HOP (IPv4) or MP_REACH next hop (IPv6)")
    p.add_argument("--link-local", help="IPv6 link-local next hop to send with a global one")
    p.add_argument("--as-path", default="", help="AS numbers, space or comma separated")
    p.add_argument("--origin", choices=sorted(_ORIGINS), default="igp", help="ORIGIN (default: igp)")
    p.add_argument("--med", type=int, help="MULTI_EXIT_DISC")
    p.add_argument("--local-pref", type=int, help="LOCAL_PREF (iBGP)")
    p.add_argument("--community", action="append", default=[], help="ASN:VALUE or a well-known name")
    p.add_argument("--large-community", action="append", default=[], help="GLOBAL:LOCAL1:LOCAL2")
    _common(p)
    return p


def parser() -> argparse.ArgumentParser:
    """The ``bgpsvc`` argument parser."""
    ap = argparse.ArgumentParser(
        prog="bgpsvc",
        description="Pure-Python BGP-4 speaker: advertises static routes or a Kubernetes node's Service IPs "
        "to routers (run), shows what it does (status, routes, plan), and encodes/decodes BGP messages.",
    )
    ap.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = ap.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="bgpsvc COMMAND --help shows its options"
    )
    d = sub.add_parser("decode", help="decode hex BGP messages (header included) and print them")
    d.add_argument("hex", nargs="+", help="hex bytes of one or more messages, or - to read stdin")
    d.add_argument("--json", action="store_true", help="one JSON object per line")
    _common(d)
    d.set_defaults(func=cmd_decode)
    e = sub.add_parser("encode", help="encode UPDATE messages and print them as hex")
    _encode_parser(e)
    e.set_defaults(func=cmd_encode)
    m = sub.add_parser("demo", help="simulated cluster, node speakers and a router on loopback (no root)")
    m.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    m.add_argument("--pause", type=float, default=2.0, help="seconds between scenario steps")
    m.add_argument(
        "--mode",
        choices=["auto", "loopback", "frr"],
        default="loopback",
        help="loopback (no root; default), frr (root + FRR: namespaces and the kernel's ECMP routes), "
        "or auto",
    )
    m.set_defaults(func=cmd_demo_main)
    cd = sub.add_parser("codec-demo", help="encode an UPDATE and decode it back")
    cd.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run the speaker from a YAML config")
    r.add_argument("--config", "-c", required=True, help="YAML config file")
    r.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override the config's log_level"
    )
    r.add_argument("--log-format", choices=["text", "json"], help="json: one object per line")
    r.set_defaults(func=cmd_run)
    pl = sub.add_parser("plan", help="show what each node would advertise and why (reads the cluster once)")
    pl.add_argument("--config", "-c", required=True, help="node speaker YAML config (with kubernetes:)")
    which = pl.add_mutually_exclusive_group()
    which.add_argument("--node", help="node name (default: kubernetes.node_name / NODE_NAME)")
    which.add_argument("--all-nodes", action="store_true", help="every Node in the cluster")
    pl.add_argument("--kubeconfig", help="override kubernetes.kubeconfig")
    pl.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the lists (default 30)")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.set_defaults(func=cmd_plan)
    st = sub.add_parser("status", help="show the running speaker's peers")
    st.add_argument("--control", default="127.0.0.1:9179", help="host:port of the control endpoint")
    st.add_argument("--json", action="store_true", help="print the /status JSON")
    st.set_defaults(func=cmd_status)
    ro = sub.add_parser("routes", help="show what was sent to each peer (or, --received, what it sent)")
    ro.add_argument("--control", default="127.0.0.1:9179", help="host:port of the control endpoint")
    ro.add_argument("--peer", help="only this peer (name or address)")
    ro.add_argument(
        "--received", action="store_true", help="routes received from the peer (peers with store_routes)"
    )
    ro.add_argument("--json", action="store_true", help="print the /routes JSON")
    ro.set_defaults(func=cmd_routes)
    return ap


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bgpsvc")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bgpsvc`` console script."""
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
