"""Status back into the cluster: each node's ``BGPNodeStatus`` and the conditions of bgpsvc's objects.

Two writers, both merge patches of the ``/status`` subresource (RBAC: ``patch`` on ``*/status``, plus
``create`` of the node's own BGPNodeStatus):

- ``NodeStatusWriter``: a node's status, coalesced by ``Coalescer`` (sans-IO, time injected): a change
  after a quiet spell is written at once, further changes within ``interval`` are folded into one write
  at its end, and an unchanged status is never written. So a node writes at most once per ``interval``,
  and 1,000 nodes at most 1,000/``interval`` per second however their sessions flap (bench/crd_status.py
  measures it).
- ``ConditionReporter``: the conditions ``resolve`` computes per object are the same on every node, so
  only one node writes them: the speaker elected by the Lease (``lease.py``), the only one that watches
  every Node. It writes an object's conditions only while its status is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from .resources import API_VERSION, GROUP, KINDS, NODE_STATUSES, VERSION, Condition, ObjectRef, ObjectStatus

log = logging.getLogger("bgpsvc.k8s.status")

#: Seconds between two writes of one node's status: session flaps and route churn within it cost one
#: write. At 1,000 nodes that bounds the API server's load to 200 writes/s in the worst case, and a
#: status is never staler than this.
STATUS_INTERVAL = 5.0
#: Seconds to wait after a failed write before trying again (the API server is struggling or away).
RETRY = 5.0
#: Seconds between attempts while the BGPNodeStatus CRD is not installed: two cheap 404s a minute per
#: node (at 1,000 nodes, 33 requests/s for nothing would be too many at the RETRY pace).
RETRY_ABSENT = 60.0


class Coalescer:
    """When to write a value that changes: at once after a quiet spell, then at most once per interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.written: object = None  # the last value written
        self.pending: object = None  # a value not written yet (None: nothing to do)
        self.last = float("-inf")  # when the last write (or failed attempt) started

    def offer(self, value: object) -> None:
        """The current value; a write is due if it differs from the last one written."""
        self.pending = None if value == self.written else value

    def deadline(self) -> float | None:
        """When the pending value may be written (None: nothing pending)."""
        return None if self.pending is None else self.last + self.interval

    def take(self, now: float) -> object:
        """The value to write now, or None; the attempt starts the next interval."""
        if self.pending is None or now < self.last + self.interval:
            return None
        self.last = now
        return self.pending

    def done(self, value: object, ok: bool) -> None:
        """The write of ``value`` finished; a failed one is retried (it stays pending)."""
        if ok:
            self.written = value
            if self.pending == value:
                self.pending = None


class NodeStatusWriter:
    """Keeps one node's BGPNodeStatus equal to the latest offered status, coalesced."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        node: str,
        interval: float = STATUS_INTERVAL,
        request_timeout: float = 10.0,
    ) -> None:
        self.node = node
        self._api = k8s_client.CustomObjectsApi(api_client)
        self._coalescer = Coalescer(interval)
        self._wake = asyncio.Event()
        self._timeout = request_timeout
        self.writes = 0
        self.failures = 0
        self.last_error: str | None = None
        #: The last attempt found the BGPNodeStatus resource not served (CRDs not installed).
        self.absent = False

    def offer(self, status: Mapping[str, Any]) -> None:
        """The node's current status (call as often as convenient: unchanged values cost nothing)."""
        self._coalescer.offer(status)
        if self._coalescer.pending is not None:
            self._wake.set()

    @property
    def written(self) -> object:
        """The last status written."""
        return self._coalescer.written

    async def run(self) -> None:
        """Write whenever the coalescer says so, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            deadline = self._coalescer.deadline()
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            if deadline > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                continue
            value = self._coalescer.take(loop.time())
            if value is None:
                continue
            ok = await asyncio.to_thread(self._write, value)
            self._coalescer.done(value, ok)
            if not ok:
                retry = RETRY_ABSENT if self.absent else RETRY
                self._coalescer.last = loop.time() - self._coalescer.interval + retry

    def _write(self, status: object) -> bool:
        body = {"status": status}
        self.absent = False
        try:
            try:
                self._api.patch_cluster_custom_object_status(
                    GROUP, VERSION, NODE_STATUSES, self.node, body, _request_timeout=self._timeout
                )
            except ApiException as e:
                if e.status != 404:
                    raise
                self._create()
                self._api.patch_cluster_custom_object_status(
                    GROUP, VERSION, NODE_STATUSES, self.node, body, _request_timeout=self._timeout
                )
        except Exception as e:
            self.failures += 1
            msg = f"{getattr(e, 'status', '')} {getattr(e, 'reason', '') or e}".strip()
            if msg != self.last_error:
                log.warning("BGPNodeStatus %s: status not written: %s", self.node, msg)
            self.last_error = msg
            return False
        self.writes += 1
        self.last_error = None
        return True

    def _create(self) -> None:
        body = {"apiVersion": API_VERSION, "kind": KINDS[NODE_STATUSES], "metadata": {"name": self.node}}
        try:
            self._api.create_cluster_custom_object(
                GROUP, VERSION, NODE_STATUSES, body, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status == 404:
                self.absent = True  # the CRD is not installed
            if e.status != 409:  # 409: created meanwhile (a restart racing itself), fine
                raise


@dataclass(frozen=True, slots=True)
class Current:
    """An object as its informer last saw it: its generation and status."""

    generation: int
    status: ObjectStatus


def stale(desired: tuple[Condition, ...], current: Current) -> bool:
    """The object's status does not say ``desired`` about its current generation."""
    by_type = sorted(current.status.conditions, key=lambda c: c.type)
    return current.status.observed_generation != current.generation or by_type != sorted(
        desired, key=lambda c: c.type
    )


def condition_body(desired: tuple[Condition, ...], current: Current, now: str) -> dict[str, Any]:
    """The merge patch: every condition, keeping lastTransitionTime where the status did not change."""
    before = {c.type: c for c in current.status.conditions}
    times = dict(current.status.transitions)
    conds = []
    for c in sorted(desired, key=lambda c: c.type):
        prev = before.get(c.type)
        when = (
            times.get(c.type) if prev is not None and prev.status == c.status and times.get(c.type) else now
        )
        conds.append(
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": when,
                "observedGeneration": current.generation,
            }
        )
    return {"status": {"observedGeneration": current.generation, "conditions": conds}}


class ConditionReporter:
    """Writes objects' conditions (on the elected speaker: see the module docstring)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        clock_text: Callable[[], str],
        request_timeout: float = 10.0,
    ) -> None:
        self._api = k8s_client.CustomObjectsApi(api_client)
        self._now_text = clock_text
        self._timeout = request_timeout
        self._desired: Mapping[ObjectRef, tuple[Condition, ...]] = {}
        self._current: Callable[[ObjectRef], Current | None] = lambda ref: None
        self._due: dict[ObjectRef, float] = {}
        self._wake = asyncio.Event()
        self.writes = 0

    def offer(
        self,
        desired: Mapping[ObjectRef, tuple[Condition, ...]],
        current: Callable[[ObjectRef], Current | None],
    ) -> None:
        """The conditions every object should have (empty: this speaker writes none), and how to look an
        object up now."""
        now = asyncio.get_running_loop().time()
        self._desired, self._current = desired, current
        for ref, conds in desired.items():
            cur = current(ref)
            if cur is not None and stale(conds, cur):
                self._due.setdefault(ref, now)
            else:
                self._due.pop(ref, None)
        for ref in [r for r in self._due if r not in desired]:
            del self._due[ref]
        self._wake.set()

    async def run(self) -> None:
        """Write what is due and still stale, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if not self._due:
                await self._wake.wait()
                continue
            ref, when = min(self._due.items(), key=lambda kv: kv[1])
            if when > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), when - loop.time())
                continue
            del self._due[ref]
            cur, conds = self._current(ref), self._desired.get(ref)
            if cur is None or conds is None or not stale(conds, cur):
                continue  # another node wrote it, or the object is gone
            if not await asyncio.to_thread(self._write, ref, condition_body(conds, cur, self._now_text())):
                self._due[ref] = loop.time() + RETRY

    def _write(self, ref: ObjectRef, body: dict[str, Any]) -> bool:
        plural, name = ref
        try:
            self._api.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, body, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status == 404:
                return True  # deleted meanwhile
            log.warning("%s %s: conditions not written: %s %s", KINDS[plural], name, e.status, e.reason)
            return False
        except Exception as e:
            log.warning("%s %s: conditions not written: %s", KINDS[plural], name, e)
            return False
        self.writes += 1
        log.info("%s %s: status conditions updated", KINDS[plural], name)
        return True
