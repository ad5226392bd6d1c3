"""Codec throughput: bgpsvc vs ExaBGP on the same routes, in one run.

Cases (issue 2): 100k IPv4 /32 sharing one attribute set, and 10k /32 each with its own attribute
set (MED = i, COMMUNITIES 65001:i). Encode = pack into 4096-octet UPDATE messages; decode = parse
those messages back into objects with every prefix materialised. Both codecs start each timed decode
run cold (bgpsvc's attribute-block cache is cleared; ExaBGP gets a fresh session). Best of N runs.

Cross-checks before timing: each codec decodes the other's messages to the same prefix count, so
both sides encode the same thing.

    .venv/bin/python bench/codec.py [--shared 100000] [--distinct 10000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import exabgp_codec

from bgpsvc.wire import (
    AsPath,
    Communities,
    MultiExitDisc,
    NextHop,
    Origin,
    PathAttribute,
    Prefix,
    decode,
    pack_updates,
)
from bgpsvc.wire import update as _update

Group = tuple[tuple[PathAttribute, ...], list[Prefix]]
BASE = int(ipaddress.IPv4Address("10.0.0.0"))


def _attrs(med: int, communities: tuple[int, ...]) -> tuple[PathAttribute, ...]:
    return (
        Origin(0),
        AsPath.sequence(65001, 65002),
        NextHop(ipaddress.IPv4Address("192.0.2.1")),
        MultiExitDisc(med),
        Communities(communities),
    )


def build_shared(n: int) -> list[Group]:
    """n /32s behind one attribute set (the same one the ExaBGP adapter builds)."""
    attrs = _attrs(100, ((65001 << 16) | 100, 0xFFFF0000))
    return [(attrs, [Prefix.host(ipaddress.IPv4Address(BASE + i)) for i in range(n)])]


def build_distinct(n: int) -> list[Group]:
    """n /32s, route i with MED i and community 65001:(i % 65536)."""
    return [
        (_attrs(i, ((65001 << 16) | (i % 65536),)), [Prefix.host(ipaddress.IPv4Address(BASE + i))])
        for i in range(n)
    ]


def encode(groups: list[Group]) -> list[bytes]:
    """bgpsvc: pack each group into UPDATEs."""
    out: list[bytes] = []
    for attrs, prefixes in groups:
        out += pack_updates(attrs, prefixes)
    return out


def decode_all(messages: list[bytes]) -> int:
    """bgpsvc: decode every message cold; return the number of announced prefixes."""
    _update.clear_cache()
    count = 0
    for m in messages:
        u = decode(m)
        count += len(u.nlri)  # type: ignore[union-attr]
    return count


def best(fn: Callable[[Any], Any], arg: Any, repeat: int) -> tuple[float, Any]:
    """Fastest of ``repeat`` runs (seconds) and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(arg)
        times.append(time.perf_counter() - t0)
    return min(times), result


def run(n_shared: int, n_distinct: int, repeat: int) -> dict[str, Any]:
    """Measure both codecs on both cases."""
    exa = exabgp_codec.available()
    results: dict[str, Any] = {"exabgp_available": exa, "cases": {}}
    for name, n, ours_build, exa_build in (
        ("shared", n_shared, build_shared, exabgp_codec.build_routes_shared),
        ("distinct", n_distinct, build_distinct, exabgp_codec.build_routes_distinct),
    ):
        groups = ours_build(n)
        enc_t, msgs = best(encode, groups, repeat)
        dec_t, count = best(decode_all, msgs, repeat)
        if count != n:
            raise SystemExit(f"bgpsvc decoded {count} of {n} prefixes")
        case: dict[str, Any] = {
            "prefixes": n,
            "messages": len(msgs),
            "bytes": sum(map(len, msgs)),
            "bgpsvc_encode_pps": n / enc_t,
            "bgpsvc_decode_pps": n / dec_t,
        }
        if exa:
            routes = exa_build(n)
            xenc_t, xmsgs = best(exabgp_codec.encode, routes, max(1, repeat // 2))
            xdec_t, xcount = best(exabgp_codec.decode, xmsgs, max(1, repeat // 2))
            # Cross-decode: each codec reads the other's bytes to the same count.
            if exabgp_codec.decode(msgs) != n or decode_all(xmsgs) != n or xcount != n:
                raise SystemExit("cross-decode mismatch between bgpsvc and ExaBGP")
            case.update(
                {
                    "exabgp_messages": len(xmsgs),
                    "exabgp_encode_pps": n / xenc_t,
                    "exabgp_decode_pps": n / xdec_t,
                    "encode_ratio": xenc_t / enc_t,
                    "decode_ratio": xdec_t / dec_t,
                }
            )
        results["cases"][name] = case
    return results


def main() -> None:
    """Print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=int, default=100_000)
    ap.add_argument("--distinct", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.shared, args.distinct, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'case':<10}{'op':<8}{'bgpsvc pfx/s':>15}{'ExaBGP pfx/s':>15}{'ratio':>8}  messages")
    for name, c in res["cases"].items():
        for op in ("encode", "decode"):
            ours = c[f"bgpsvc_{op}_pps"]
            theirs = c.get(f"exabgp_{op}_pps")
            ratio = c.get(f"{op}_ratio")
            print(
                f"{name:<10}{op:<8}{ours:>15,.0f}{(f'{theirs:,.0f}' if theirs else 'n/a'):>15}"
                f"{(f'{ratio:.1f}x' if ratio else 'n/a'):>8}  {c['messages']}"
            )
    if not res["exabgp_available"]:
        print("ExaBGP not importable: install the 'bench' extra for the comparison")


if __name__ == "__main__":
    main()
