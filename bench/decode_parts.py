"""Where bgpsvc's UPDATE decode time goes, on bench/codec.py's messages, against ExaBGP in the same run.

Parts, per UPDATE, best of ``--repeat`` runs with the cyclic GC off (each on its own): framing (the body
copy), NLRI (``decode_prefix_tuple``), the attribute block cold (empty intern table) and warm (every
attribute interned), ``decode_update`` and the whole ``decode`` as bench/codec.py times it. Then, with
the GC on as in bench/codec.py, the whole decode and the time ``gc.callbacks`` saw collections take.

"Floor": a loop that does only what any decoder of these messages must (split the fields, one dict
lookup per attribute with every attribute interned beforehand, one ``Prefix`` per prefix, the ``Update``)
and none of the RFC 4271/7606 checks. It bounds what this object model can reach in Python: the ratio
of ExaBGP to it is the most a checked decoder could show.

    .venv/bin/python bench/decode_parts.py [--fulltable 200000] [--distinct 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import codec
import exabgp_codec

from bgpsvc.wire import PathAttribute, Prefix, Update
from bgpsvc.wire import attr_block as _attr_block
from bgpsvc.wire import prefix as _prefix
from bgpsvc.wire import update as _update
from bgpsvc.wire.negotiated import DEFAULT, Negotiated

Parts = list[tuple[bytes, bytes]]  # (attribute block, NLRI) of each message


def split(messages: list[bytes]) -> Parts:
    """Each message's attribute block and NLRI field."""
    out = []
    for m in messages:
        b = m[19:]
        wlen = (b[0] << 8) | b[1]
        end = 4 + wlen + ((b[2 + wlen] << 8) | b[3 + wlen])
        out.append((b[4 + wlen : end], b[end:]))
    return out


def floor(messages: list[bytes], interned: dict[bytes, PathAttribute]) -> None:
    """The unchecked loop of the module docstring."""
    new, make = bytes.__new__, object.__new__
    for m in messages:
        b = m[19:]
        wlen = (b[0] << 8) | b[1]
        end = 4 + wlen + ((b[2 + wlen] << 8) | b[3 + wlen])
        block, nlri = b[4 + wlen : end], b[end:]
        attrs = []
        i, n = 0, len(block)
        while i < n:
            e = i + 3 + block[i + 2]
            attrs.append(interned[block[i:e]])
            i = e
        prefixes = []
        i, n = 0, len(nlri)
        while i < n:
            e = i + 1 + ((nlri[i] + 7) >> 3)
            prefixes.append(new(Prefix, b"\x01" + nlri[i:e]))
            i = e
        u = make(Update)
        _update._SET_WITHDRAWN(u, ())
        _update._SET_ATTRIBUTES(u, tuple(attrs))
        _update._SET_NLRI(u, tuple(prefixes))
        _update._SET_ERRORS(u, ())


class GcTimer:
    """Seconds the cyclic GC spends collecting, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.spent += time.perf_counter() - self._start


def best(fn: Callable[[], object], repeat: int, collect: bool = False) -> tuple[float, float]:
    """(fastest run, GC time in it) in seconds; the GC is off unless ``collect``."""
    runs = []
    for _ in range(repeat):
        _update.clear_cache()
        gc.collect()
        timer = GcTimer()
        if collect:
            gc.callbacks.append(timer)
        else:
            gc.disable()
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        gc.enable()
        if collect:
            gc.callbacks.remove(timer)
        runs.append((t, timer.spent))
    return min(runs)


def report(name: str, messages: list[bytes], repeat: int) -> None:
    """Print the parts of one case."""
    parts = split(messages)
    n = len(messages)
    interned: dict[bytes, PathAttribute] = {}
    unbounded = Negotiated(intern_max=len(parts) * 64)
    for block, _ in parts:
        _attr_block.decode_block(block, unbounded, True, interned)

    def block_cold() -> None:
        table: dict[bytes, PathAttribute] = {}
        for block, _ in parts:
            _attr_block.decode_block(block, DEFAULT, True, table)

    def block_warm() -> None:
        for block, _ in parts:
            _attr_block.decode_block(block, unbounded, True, interned)

    rows: list[tuple[str, Callable[[], object]]] = [
        ("framing (body copy)", lambda: [bytes(m[19:]) for m in messages]),
        ("NLRI", lambda: [_prefix.decode_prefix_tuple(nl, 1) for _, nl in parts]),
        ("attribute block, cold", block_cold),
        ("attribute block, all interned", block_warm),
        ("whole decode, GC off", lambda: codec.decode_all(messages)),
        ("floor (unchecked), GC off", lambda: floor(messages, interned)),
    ]
    print(f"{name}: {n} UPDATEs, us per UPDATE (best of {repeat})")
    for label, fn in rows:
        print(f"  {label:<34}{best(fn, repeat)[0] / n * 1e6:8.2f}")
    ours, in_gc = best(lambda: codec.decode_all(messages), repeat, collect=True)
    exa = best(lambda: exabgp_codec.decode(messages), repeat, collect=True)[0]
    fl = best(lambda: floor(messages, interned), repeat, collect=True)[0]
    print(f"  {'whole decode, GC on':<34}{ours / n * 1e6:8.2f}   of which GC {in_gc / n * 1e6:.2f}")
    print(f"  {'ExaBGP decode, GC on':<34}{exa / n * 1e6:8.2f}")
    print(f"  ratio ExaBGP / bgpsvc {exa / ours:.1f}x; ExaBGP / floor {exa / fl:.1f}x")


def main() -> None:
    """Both cases of bench/codec.py that issue 14 names."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fulltable", type=int, default=200_000)
    ap.add_argument("--distinct", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not exabgp_codec.available():
        raise SystemExit("ExaBGP not importable: install the 'bench' extra")
    if args.fulltable:
        table = codec.build_fulltable_sets(args.fulltable)
        report("fulltable", codec.encode(codec.build_sets(table)), args.repeat)
    if args.distinct:
        report("distinct", codec.encode(codec.build_distinct(args.distinct)), args.repeat)


if __name__ == "__main__":
    main()
