"""Codec throughput: bgpsvc vs ExaBGP on the same routes, in one run.

Cases (issue 2, issue 14): 100k IPv4 /32 sharing one attribute set; 10k /32 each with its own
attribute set (MED = i, COMMUNITIES 65001:i); and a full table shaped like a real Internet table
(``--fulltable``, default 1M prefixes: mostly /24, some /8-/23; a few hundred thousand distinct
attribute sets of 1-10 AS numbers, 4-octet ones mixed in, ORIGIN, NEXT_HOP, MED on some, 0-10
COMMUNITIES, LARGE_COMMUNITY on some; prefixes grouped by set as in a RIB dump; generated from a
fixed seed, so every run and both codecs see the same table).

Build = make each codec's route objects from the neutral description (timed once, shown apart: both
codecs compute octets there: bgpsvc every attribute's, ExaBGP those of ORIGIN and MED and the
NEXT_HOP address);
encode = pack into 4096-octet UPDATE messages; decode = parse those messages back into objects with
every prefix and attribute materialised, in the context of a session that does not store what it
receives, as ExaBGP does not (``--stored``: one that does, whose decoder interns up to 2^17 attribute
encodings instead of 2^12; wire/negotiated.py). Both codecs start each timed decode run cold (bgpsvc's
attribute caches are cleared; ExaBGP gets a fresh session). Best of N runs each, the two codecs' runs
alternating so that both see the same load on a shared machine.

Cross-checks before timing: each codec decodes the other's messages to the same prefix count; for
the full table, a sample of each side's messages decoded by the other gives the generated
attributes for every prefix in it.

    .venv/bin/python bench/codec.py [--shared 100000] [--distinct 10000] [--fulltable 1000000]
                                    [--repeat 5] [--stored] [--json]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import exabgp_codec

from bgpsvc.wire import (
    DEFAULT,
    INTERN_STORED,
    AsPath,
    Communities,
    LargeCommunities,
    MultiExitDisc,
    Negotiated,
    NextHop,
    Origin,
    PathAttribute,
    Prefix,
    Update,
    decode,
    pack_updates,
)
from bgpsvc.wire import update as _update

#: The session bgpsvc decodes in: ``DEFAULT`` (routes not stored), or with ``--stored``, a session
#: that stores them.
SESSION = DEFAULT

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


RouteSet = exabgp_codec.RouteSet
#: Prefix lengths of a real IPv4 table, roughly (per mille): most are /24.
_LENGTHS: dict[int, float] = {24: 600, 23: 90, 22: 120, 21: 45, 20: 45, 19: 30, 18: 15, 17: 10, 16: 30, 15: 3}
_LENGTHS.update({14: 3, 13: 2, 12: 2, 11: 1, 10: 0.5, 9: 0.2, 8: 0.1})
#: AS_PATH length (AS numbers, prepends included) -> weight: mean about 4.3.
_PATH_LENGTHS = {1: 3, 2: 10, 3: 22, 4: 25, 5: 18, 6: 10, 7: 5, 8: 3, 9: 2, 10: 2}
_PEER_AS = 65001
_NEXT_HOPS = ("192.0.2.1", "192.0.2.2", "192.0.2.3")


def _asn(rng: random.Random) -> int:
    """An origin AS: about a third 4-octet (RFC 6793), the rest 2-octet outside AS_TRANS."""
    if rng.random() < 0.33:
        return rng.randrange(131072, 401309)
    asn = rng.randrange(1, 64496)
    return asn if asn != 23456 else 23457


def _prefixes(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """``n`` distinct unicast IPv4 prefixes (address as int, length), lengths as in ``_LENGTHS``."""
    lengths = rng.choices(list(_LENGTHS), weights=list(_LENGTHS.values()), k=n)
    seen: set[tuple[int, int]] = set()
    out = []
    for length in lengths:
        while True:
            address = ((rng.randrange(1, 224) << 24) | rng.getrandbits(24)) & ~((1 << (32 - length)) - 1)
            if (address, length) not in seen:
                break
        seen.add((address, length))
        out.append((address, length))
    return out


def _as_path(rng: random.Random, origin: int, transit: list[int]) -> tuple[int, ...]:
    """Peer AS first, origin last, transit AS numbers between; sometimes the origin prepends."""
    length = rng.choices(list(_PATH_LENGTHS), weights=list(_PATH_LENGTHS.values()))[0]
    if length == 1:
        return (_PEER_AS,)
    prepends = rng.choice((1, 1, 1, 1, 1, 1, 1, 2, 3)) if length > 2 else 1
    middle = rng.sample(transit, max(0, length - 1 - prepends))
    return (_PEER_AS, *middle, *([origin] * prepends))[:10]


def build_fulltable_sets(n: int, seed: int = 4271) -> list[RouteSet]:
    """A table of ``n`` prefixes in a few hundred thousand distinct attribute sets, from ``seed``."""
    rng = random.Random(seed)
    prefixes = _prefixes(rng, n)
    transit = [_asn(rng) if i % 4 == 0 else rng.randrange(1, 23456) for i in range(3000)]
    origins = [_asn(rng) for _ in range(max(1, n // 14))]
    paths: dict[int, tuple[int, ...]] = {}
    tags = [rng.randrange(1, 4000) for _ in range(400)]
    sets: dict[tuple[object, ...], list[tuple[int, int]]] = {}
    i = 0
    while i < n:
        size = 1 + int(rng.expovariate(1 / 1.6)) if rng.random() > 0.002 else rng.randrange(50, 500)
        origin_as = rng.choice(origins)
        # An origin is mostly reached over the same path, as in a real table.
        if origin_as not in paths or rng.random() < 0.25:
            paths[origin_as] = _as_path(rng, origin_as, transit)
        origin = rng.choices((0, 2, 1), weights=(85, 14, 1))[0]
        med = rng.choice((0, 0, 10, 100, 1000, rng.randrange(1 << 16))) if rng.random() < 0.35 else None
        count = rng.choices(range(11), weights=(30, 15, 14, 10, 8, 6, 5, 4, 3, 3, 2))[0]
        communities = tuple(sorted({(_PEER_AS << 16) | rng.choice(tags) for _ in range(count)}))
        large: tuple[tuple[int, int, int], ...] = ()
        if rng.random() < 0.06:
            large = tuple(sorted({(origin_as, rng.randrange(10), rng.randrange(1000)) for _ in range(3)}))
        hop = rng.choices(_NEXT_HOPS, weights=(90, 8, 2))[0]
        key = (origin, paths[origin_as], hop, med, communities, large)
        # Equal attributes land in one set, as a RIB dump groups them.
        sets.setdefault(key, []).extend(prefixes[i : i + size])
        i += size
    return [(*key, tuple(p)) for key, p in sets.items()]  # type: ignore[misc]


def _set_attrs(route_set: RouteSet) -> tuple[PathAttribute, ...]:
    origin, as_path, hop, med, communities, large, _ = route_set
    attrs: list[PathAttribute] = [
        Origin(origin),
        AsPath.sequence(*as_path),
        NextHop(ipaddress.IPv4Address(hop)),
    ]
    if med is not None:
        attrs.append(MultiExitDisc(med))
    if communities:
        attrs.append(Communities(communities))
    if large:
        attrs.append(LargeCommunities(large))
    return tuple(attrs)


def build_sets(route_sets: list[RouteSet]) -> list[Group]:
    """bgpsvc groups for ``route_sets``: fresh attribute objects per set, as ExaBGP's side gets."""
    return [
        (
            _set_attrs(rs),
            [Prefix(1, length, address.to_bytes(4, "big")[: (length + 7) >> 3]) for address, length in rs[6]],
        )
        for rs in route_sets
    ]


def _values(u: Update) -> tuple[object, ...]:
    """An UPDATE's attributes in the ``RouteSet`` layout (as ``exabgp_codec.describe`` gives them)."""
    med = u.get(MultiExitDisc)
    communities = u.get(Communities)
    large = u.get(LargeCommunities)
    return (
        u.get(Origin).value,  # type: ignore[union-attr]
        u.get(AsPath).asns,  # type: ignore[union-attr]
        str(u.get(NextHop)),
        med.value if isinstance(med, MultiExitDisc) else None,
        communities.values if isinstance(communities, Communities) else (),
        large.values if isinstance(large, LargeCommunities) else (),
    )


def cross_check_sets(route_sets: list[RouteSet], ours: list[bytes], theirs: list[bytes], k: int = 300) -> int:
    """A sample of each codec's messages, decoded by the other, carries the generated attributes for
    each of its prefixes. Returns the number of prefixes compared."""
    expected = {p: rs[:6] for rs in route_sets for p in rs[6]}
    rng = random.Random(7)
    checked = 0
    for m in rng.sample(ours, min(k, len(ours))):
        for prefix, values in exabgp_codec.describe(m):
            if expected[prefix] != values:
                raise SystemExit(f"ExaBGP reads {values} for {prefix}, generated {expected[prefix]}")
            checked += 1
    for m in rng.sample(theirs, min(k, len(theirs))):
        u = decode(m)
        values = _values(u)  # type: ignore[arg-type]
        for p in u.nlri:  # type: ignore[union-attr]
            prefix = (int.from_bytes(p.packed.ljust(4, b"\x00"), "big"), p[1])
            if expected[prefix] != values:
                raise SystemExit(f"bgpsvc reads {values} for {prefix}, generated {expected[prefix]}")
            checked += 1
    return checked


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
        u = decode(m, SESSION)
        count += len(u.nlri)  # type: ignore[union-attr]
    return count


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn(arg)
    return time.perf_counter() - t0, result


def best_pair(
    ours: Callable[[Any], Any],
    ours_arg: Any,
    theirs: Callable[[Any], Any] | None,
    theirs_arg: Any,
    repeat: int,
) -> tuple[float, Any, float, Any]:
    """Fastest of ``repeat`` runs of ``ours`` and of ``theirs``, alternating so that both see the same
    load on a shared machine (and the same number of chances at a quiet moment); the last results."""
    ours_t: list[float] = []
    theirs_t: list[float] = []
    ours_r = theirs_r = None
    for _ in range(repeat):
        t, ours_r = _timed(ours, ours_arg)
        ours_t.append(t)
        if theirs is not None:
            t, theirs_r = _timed(theirs, theirs_arg)
            theirs_t.append(t)
    return min(ours_t), ours_r, min(theirs_t, default=float("nan")), theirs_r


def run(n_shared: int, n_distinct: int, n_fulltable: int, repeat: int) -> dict[str, Any]:
    """Measure both codecs on every case."""
    exa = exabgp_codec.available()
    results: dict[str, Any] = {"exabgp_available": exa, "cases": {}}
    # The full table is generated when its case comes, not before: a large live heap from another
    # case's input moved the distinct case's encode figure by up to 1.5x (10.0x with a 200k-prefix
    # table's description live, 13-16x without; docs/performance.md §3).
    table: list[RouteSet] = []
    for name, n, ours_build, exa_build in (
        ("shared", n_shared, build_shared, exabgp_codec.build_routes_shared),
        ("distinct", n_distinct, build_distinct, exabgp_codec.build_routes_distinct),
        ("fulltable", n_fulltable, build_sets, exabgp_codec.build_routes_sets),
    ):
        if not n:
            continue
        # What the builders take: the route count, or the full table's neutral description.
        source: Any = n
        if name == "fulltable":
            source = table = build_fulltable_sets(n)
        build_t, groups = _timed(ours_build, source)
        xbuild_t, routes = _timed(exa_build, source) if exa else (float("nan"), None)
        enc_t, msgs, xenc_t, xmsgs = best_pair(
            encode, groups, exabgp_codec.encode if exa else None, routes, repeat
        )
        del groups, routes
        dec_t, count, xdec_t, xcount = best_pair(
            decode_all, msgs, exabgp_codec.decode if exa else None, xmsgs, repeat
        )
        if count != n:
            raise SystemExit(f"bgpsvc decoded {count} of {n} prefixes")
        case: dict[str, Any] = {
            "prefixes": n,
            "messages": len(msgs),
            "bytes": sum(map(len, msgs)),
            "bgpsvc_encode_pps": n / enc_t,
            "bgpsvc_build_pps": n / build_t,
            "bgpsvc_decode_pps": n / dec_t,
        }
        if name == "fulltable":
            case["attribute_sets"] = len(table)
        if exa:
            # Cross-decode: each codec reads the other's bytes to the same count.
            if exabgp_codec.decode(msgs) != n or decode_all(xmsgs) != n or xcount != n:
                raise SystemExit("cross-decode mismatch between bgpsvc and ExaBGP")
            if name == "fulltable":
                case["cross_checked_prefixes"] = cross_check_sets(table, msgs, xmsgs)
            case.update(
                {
                    "exabgp_messages": len(xmsgs),
                    "exabgp_encode_pps": n / xenc_t,
                    "exabgp_build_pps": n / xbuild_t,
                    "build_ratio": xbuild_t / build_t,
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
    ap.add_argument("--fulltable", type=int, default=1_000_000, help="full-table prefixes (0: skip)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stored", action="store_true", help="decode as a session that stores routes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.stored:
        global SESSION  # noqa: PLW0603
        SESSION = Negotiated(intern_max=INTERN_STORED)
    res = run(args.shared, args.distinct, args.fulltable, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'case':<11}{'op':<8}{'bgpsvc pfx/s':>15}{'ExaBGP pfx/s':>15}{'ratio':>8}  messages")
    for name, c in res["cases"].items():
        for op in ("build", "encode", "decode"):
            ours = c[f"bgpsvc_{op}_pps"]
            theirs = c.get(f"exabgp_{op}_pps")
            ratio = c.get(f"{op}_ratio")
            print(
                f"{name:<11}{op:<8}{ours:>15,.0f}{(f'{theirs:,.0f}' if theirs else 'n/a'):>15}"
                f"{(f'{ratio:.1f}x' if ratio else 'n/a'):>8}  {c['messages']}"
            )
    if not res["exabgp_available"]:
        print("ExaBGP not importable: install the 'bench' extra for the comparison")


if __name__ == "__main__":
    main()
