"""How long the speaker takes from a watch event to the UPDATE it causes (issue 14, goal 5).

A fixed-bucket histogram (Prometheus ``histogram``: cumulative buckets, sum, count) plus the most
recent samples, so ``/status`` can give a benchmark exact percentiles of its own changes. Pure data:
the reconciler observes ``time.perf_counter()`` differences into it.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

#: Upper bounds in seconds: sub-millisecond steps where the goal is (5 ms at 10k Services, 20 ms at
#: 100k), then coarser up to a second.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Samples kept for ``recent``: a benchmark's few hundred changes, bounded.
RECENT = 4096


class LatencyHistogram:
    """Cumulative-bucket histogram of durations in seconds, with the last ``RECENT`` samples."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0
        self.recent: deque[float] = deque(maxlen=RECENT)

    def observe(self, seconds: float) -> None:
        """Record one duration."""
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds
        self.recent.append(seconds)

    def buckets(self) -> list[tuple[str, int]]:
        """(upper bound, cumulative count) pairs, ending with ``+Inf``, as Prometheus exposes them."""
        out, total = [], 0
        for bound, n in zip((*(repr(b) for b in BUCKETS), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out

    def to_json(self) -> dict[str, Any]:
        """Count, sum, buckets and the recent samples (seconds), for ``/status``."""
        return {"count": self.count, "sum": self.sum, "buckets": self.buckets(), "recent": list(self.recent)}
