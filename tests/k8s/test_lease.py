"""``LeaseElector`` through the real ``kubernetes`` client against the lab API server: one of several
candidates leads, a dead holder is replaced once its Lease expires, a released one at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client as k8s

from bgpsvc.k8s.lease import LEASE_NAME, LeaseElector

NS = "bgpsvc-system"
# Short timings keep the test quick; the rules are the same at 15/5/10 s.
FAST = {"lease_duration": 2.0, "renew_every": 0.2, "renew_deadline": 1.0, "poll": 0.2}


def lease(api_client: Any) -> dict[str, Any]:
    resp = k8s.CoordinationV1Api(api_client).read_namespaced_lease(LEASE_NAME, NS, _preload_content=False)
    return dict(json.loads(resp.data))


async def wait_for(pred: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def test_one_candidate_leads_a_dead_one_is_replaced_a_released_one_at_once(api_client: Any) -> None:
    changes: dict[str, list[bool]] = {"a": [], "b": [], "c": []}
    electors = {
        n: LeaseElector(api_client, NS, f"node-{n}", changes[n].append, **FAST)  # type: ignore[arg-type]
        for n in changes
    }

    def leaders() -> list[str]:
        return [n for n, e in electors.items() if e.leading]

    async def scenario() -> None:
        tasks = {n: asyncio.create_task(e.run()) for n, e in electors.items()}
        try:
            await wait_for(lambda: len(leaders()) == 1, 5.0, "a leader")
            for _ in range(10):  # and only one, for a while
                await asyncio.sleep(0.1)
                assert len(leaders()) == 1
            first = leaders()[0]
            obj = lease(api_client)
            assert obj["spec"]["holderIdentity"] == f"node-{first}"
            assert obj["spec"]["leaseDurationSeconds"] == 2
            assert obj["spec"]["renewTime"].endswith("Z")
            # The holder dies without a word: another takes over after the Lease expires.
            tasks.pop(first).cancel()
            electors.pop(first)
            await wait_for(lambda: len(leaders()) == 1, 6.0, "a new leader")
            second = leaders()[0]
            assert lease(api_client)["spec"]["holderIdentity"] == f"node-{second}"
            assert lease(api_client)["spec"]["leaseTransitions"] == 1
            # The second releases on a graceful stop: the last one takes it at its next poll.
            tasks.pop(second).cancel()
            await electors.pop(second).release()
            assert lease(api_client)["spec"]["holderIdentity"] == ""
            (third,) = electors
            await wait_for(lambda: electors[third].leading, 2.0, "the last candidate to lead")
            assert changes[third] == [True]
            assert changes[second] == [True]  # told when it started leading; release ends the process
        finally:
            for t in tasks.values():
                t.cancel()

    asyncio.run(scenario())


def test_without_the_api_nobody_leads_and_the_follower_says_why(api_client: Any, lab: Any) -> None:
    lab.stop()
    e = LeaseElector(api_client, NS, "node-a", lambda _: None, request_timeout=0.5, **FAST)  # type: ignore[arg-type]

    async def one() -> None:
        await e.step(asyncio.get_running_loop().time)

    asyncio.run(one())
    assert not e.leading and e.election.need_read
