"""A large routes table is frozen out of the cyclic collector once loaded (``bgpsvc.app.runtime.settle``):
a full collection then no longer walks a million prefixes."""

from __future__ import annotations

import gc

from bgpsvc.app.runtime import SETTLE_ROUTES, settle
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Prefix


def table(n: int) -> dict[Prefix, RouteAttrs]:
    plain = RouteAttrs()
    return {Prefix(1, 32, (0x0A000000 + i).to_bytes(4, "big")): plain for i in range(n)}


def test_a_large_table_leaves_the_collectors_generations_and_a_small_one_stays() -> None:
    gc.unfreeze()
    try:
        small = table(SETTLE_ROUTES - 1)
        settle(small)
        assert gc.get_freeze_count() == 0
        large = table(SETTLE_ROUTES)
        settle(large)
        assert gc.get_freeze_count() >= SETTLE_ROUTES  # every prefix of the table, at least
        assert not any(o is large for o in gc.get_objects())  # no generation holds the table any more
    finally:
        gc.unfreeze()
