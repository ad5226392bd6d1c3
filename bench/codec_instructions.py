"""Instructions per message, bgpsvc vs ExaBGP: bench/codec.py's ratios without this host's noise.

On a shared 2-core host the same code's wall-clock time varies up to 1.3x between processes, which is
as large as the changes the codec's tuning now makes. Instructions executed do not vary: this runs
each codec's encode and decode under valgrind's callgrind, once with one pass over the input and once
with two, and divides the difference by the messages of one pass. What is left is the cost of a warm
pass: no start-up, imports or building of the input. Both runs build the same input (the parent
builds it once, from bench/codec.py's generators, and hands it over in a file).

Instructions are not time: cache misses and allocation differ between the codecs, and the ratio of
instructions need not equal the ratio of seconds. Report both (docs/performance.md §3).

Cases: ``distinct`` (bench/codec.py's: route i with MED i and one community of its own; 10,000 as
there, so that the decoder's intern table fills as it does there: with fewer, every miss is also
stored, and counts more) and ``fulltable`` (its generator, scaled down so that ExaBGP's runs under
valgrind take minutes).

    .venv/bin/python bench/codec_instructions.py [--distinct 10000] [--fulltable 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import codec
import exabgp_codec

_COLLECTED = re.compile(rb"Collected : (\d+)")


def _child(codec_name: str, op: str, path: str, passes: int) -> None:
    """Run ``passes`` passes of one operation over the input in ``path`` (under valgrind)."""
    with open(path, "rb") as f:
        case: dict[str, Any] = pickle.load(f)
    if op == "encode":
        table = case["table"]
        if codec_name == "bgpsvc":
            groups = codec.build_sets(table)
            for _ in range(passes):
                codec.encode(groups)
        else:
            routes = exabgp_codec.build_routes_sets(table)
            for _ in range(passes):
                exabgp_codec.encode(routes)
        return
    messages = case[f"{codec_name}_messages"]
    decode = codec.decode_all if codec_name == "bgpsvc" else exabgp_codec.decode
    for _ in range(passes):
        decode(messages)


def _instructions(codec_name: str, op: str, path: str, passes: int) -> int:
    """Instructions a child process executes, start to end (callgrind's count)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    cmd += ["--child", codec_name, op, path, str(passes)]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts in every run
    done = subprocess.run(cmd, capture_output=True, env=env, timeout=1800, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode or found is None:
        tail = done.stderr[-2000:].decode(errors="replace")
        raise SystemExit(f"valgrind run failed: {' '.join(cmd)}\n{tail}")
    return int(found.group(1))


def _table(case: str, n: int) -> list[codec.RouteSet]:
    """The route sets of a case, neutral between the codecs."""
    if case == "fulltable":
        return codec.build_fulltable_sets(n)
    # The distinct case as route sets: bench/codec.py's attributes (_attrs), one /32 each.
    return [
        (0, (65001, 65002), "192.0.2.1", i, ((65001 << 16) | (i % 65536),), (), ((codec.BASE + i, 32),))
        for i in range(n)
    ]


def run(cases: dict[str, int]) -> dict[str, Any]:
    """Instructions per message of each codec, operation and case."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, n in cases.items():
            if not n:
                continue
            table = _table(case, n)
            ours = codec.encode(codec.build_sets(table))
            theirs = exabgp_codec.encode(exabgp_codec.build_routes_sets(table))
            path = str(Path(tmp) / f"{case}.pickle")
            with open(path, "wb") as f:
                pickle.dump({"table": table, "bgpsvc_messages": ours, "exabgp_messages": theirs}, f)
            row: dict[str, Any] = {"prefixes": n, "messages": len(ours), "exabgp_messages": len(theirs)}
            for op in ("encode", "decode"):
                for name, count in (("bgpsvc", len(ours)), ("exabgp", len(theirs))):
                    per_pass = _instructions(name, op, path, 2) - _instructions(name, op, path, 1)
                    row[f"{name}_{op}_per_message"] = per_pass / count
                    row[f"{name}_{op}_per_prefix"] = per_pass / n
                row[f"{op}_ratio"] = row[f"exabgp_{op}_per_prefix"] / row[f"bgpsvc_{op}_per_prefix"]
            out[case] = row
    return out


def main() -> None:
    """Print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distinct", type=int, default=10_000, help="routes of the distinct case (0: skip)")
    ap.add_argument("--fulltable", type=int, default=10_000, help="prefixes of the full table (0: skip)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=4, metavar=("CODEC", "OP", "INPUT", "PASSES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, op, path, passes = args.child
        _child(name, op, path, int(passes))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    if not exabgp_codec.available():
        raise SystemExit("ExaBGP is not importable: install the 'bench' extra")
    res = run({"distinct": args.distinct, "fulltable": args.fulltable})
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'case':<11}{'op':<8}{'bgpsvc instr/msg':>18}{'ExaBGP instr/msg':>18}{'ratio/prefix':>14}")
    for case, row in res.items():
        for op in ("encode", "decode"):
            print(
                f"{case:<11}{op:<8}{row[f'bgpsvc_{op}_per_message']:>18,.0f}"
                f"{row[f'exabgp_{op}_per_message']:>18,.0f}{row[f'{op}_ratio']:>13.1f}x"
            )


if __name__ == "__main__":
    main()
