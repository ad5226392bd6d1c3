"""Memory of a received full table held as decoded ``Update`` values (issue 14, codec).

Builds bench/codec.py's deterministic Internet-shaped table, encodes it, then decodes every UPDATE and
keeps the results, as an Adj-RIB-In that stores messages would, in the context of a session that
stores what it receives (``--streamed``: one that does not, with the smaller intern table). Prints the
resident-set growth, bytes per prefix and the number of distinct attribute objects (interning shares
equal ones).

    .venv/bin/python bench/codec_memory.py [--fulltable 1000000] [--streamed]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import codec

from bgpsvc.wire import INTERN_STORED, INTERN_STREAMED, Negotiated, Update, decode


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    """Print the figures for one table size."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fulltable", type=int, default=1_000_000, help="prefixes in the table")
    ap.add_argument("--streamed", action="store_true", help="decode as a session that stores nothing")
    args = ap.parse_args()
    n = args.fulltable
    session = Negotiated(intern_max=INTERN_STREAMED if args.streamed else INTERN_STORED)
    table = codec.build_fulltable_sets(n)
    messages = codec.encode(codec.build_sets(table))
    del table
    gc.collect()
    before = _rss_mb()
    held = [u for m in messages if isinstance(u := decode(m, session), Update)]
    gc.collect()
    grown = _rss_mb() - before
    distinct = len({id(a) for u in held for a in u.attributes})
    print(
        f"{n} prefixes in {len(held)} UPDATEs held: +{grown:.1f} MB RSS, {grown * 1e6 / n:.0f} B per prefix, "
        f"{distinct} distinct attribute objects"
    )


if __name__ == "__main__":
    main()
