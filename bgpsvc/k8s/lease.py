"""Leader election over a ``coordination.k8s.io/v1`` Lease: one node speaker does the cluster-wide work.

The cluster-wide work is watching every Node (whether a BGPPeer's or BGPAdvertisement's node selector
matches any node: ``NoMatchingNode``) and writing objects' conditions. When every speaker watched every
Node, the API server sent each Node update to every node: O(N^2) bytes (docs/scale.md: 33 MB/s at 1,000
nodes of ~10 kB). With one elected speaker that watch is O(N), and the others cost the server one small
GET every ``poll`` seconds each.

The rules are client-go's (``tools/leaderelection``), so the Lease reads the same to anyone who knows it:

- a candidate takes the Lease when it is absent, when ``holderIdentity`` is empty (released), or when the
  candidate has seen the same record for ``leaseDurationSeconds`` by its own clock (the observed time,
  not the record's timestamps: node clocks need not agree);
- every write carries the resourceVersion read, so of two candidates one wins and the other gets 409;
- the holder renews ``renewTime`` every ``renew_every`` seconds, and stops leading once it has not renewed
  for ``renew_deadline`` seconds, before anyone else may take over (``renew_deadline < lease_duration``);
- a holder that stops gracefully releases: empty ``holderIdentity``, ``leaseDurationSeconds`` 1.

``Election`` is the sans-IO part (time injected, no API calls); ``LeaseElector`` runs it with the real
client, blocking calls in a worker thread. As with client-go, the guarantee holds when each holder looks at
its clock in time: a holder cut off from the API server notices its deadline only at its next step (up to
``renew_every`` plus a request timeout late), so during a partition two speakers may both write
conditions for a few seconds. They compute the same conditions, so nothing is lost; routes never depend on
the Lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("bgpsvc.k8s.lease")

#: Name of the Lease, in bgpsvc's own namespace.
LEASE_NAME = "bgpsvc-conditions"
#: Seconds a record must stay unchanged before a candidate may take the Lease (client-go: 15).
LEASE_DURATION = 15.0
#: Seconds between the holder's renewals (client-go: retryPeriod 2 s; 5 s is one write per 5 s, cluster-wide).
RENEW_EVERY = 5.0
#: Seconds without a renewal after which the holder stops leading (client-go: 10).
RENEW_DEADLINE = 10.0
#: Seconds between a follower's reads (jittered +-20%): 1,000 followers at 30 s are 33 small GETs/s, and
#: a holder that dies is replaced within ``poll + lease_duration`` (45 s): conditions wait, routes do not.
POLL = 30.0


def micro_time(now: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 in UTC with microseconds. Never a whole second: the client
    turns the text into a ``datetime`` and back with ``isoformat()``, which drops a zero fraction, and the
    API server's MicroTime parser requires six digits."""
    t = now or datetime.now(UTC)
    return (t.replace(microsecond=1) if t.microsecond == 0 else t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Record:
    """The Lease's ``spec`` as the election uses it."""

    holder: str = ""
    duration: float = LEASE_DURATION
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def from_lease(cls, obj: Mapping[str, Any]) -> Record:
        """From a Lease object as JSON; missing or mistyped fields read as empty (never raises)."""
        spec = obj.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}

        def text(key: str) -> str:
            value = spec.get(key)
            return value if isinstance(value, str) else ""

        def number(key: str, default: int) -> int:
            value = spec.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        return cls(
            text("holderIdentity"),
            float(number("leaseDurationSeconds", int(LEASE_DURATION))),
            text("acquireTime"),
            text("renewTime"),
            number("leaseTransitions", 0),
        )

    def spec(self) -> dict[str, Any]:
        """The Lease ``spec`` to write."""
        out: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": math.ceil(self.duration),  # whole seconds on the wire
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out


class Role(Enum):
    """Whether this candidate leads."""

    FOLLOWING = "following"
    LEADING = "leading"


@dataclass(frozen=True, slots=True)
class Write:
    """A write the election wants: create the Lease (``resource_version`` None) or update it."""

    record: Record
    resource_version: str | None


class Election:
    """The election for one candidate, sans-IO: feed it what was read and what writes did; ``now`` is a
    monotonic clock reading in seconds, ``wall`` the time to write into the record."""

    def __init__(
        self, identity: str, lease_duration: float = LEASE_DURATION, renew_deadline: float = RENEW_DEADLINE
    ) -> None:
        if not 0 < renew_deadline < lease_duration:
            raise ValueError("renew_deadline must be positive and shorter than lease_duration")
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.role = Role.FOLLOWING
        self.record: Record | None = None  # as last read or written; None: no Lease (or not read yet)
        self.resource_version: str | None = None
        self.observed_at = float("-inf")  # when the record last changed, by our clock
        self.renewed_at = float("-inf")  # our last successful write
        self.need_read = True  # what we hold may be stale: read before deciding (start, a failed write)

    def observe(self, record: Record | None, resource_version: str | None, now: float) -> None:
        """What a read returned (``record`` None: there is no Lease)."""
        if record != self.record or resource_version != self.resource_version:
            self.observed_at = now
        self.record, self.resource_version = record, resource_version
        self.need_read = False
        if record is None or record.holder != self.identity:
            self.role = Role.FOLLOWING  # someone else took it (or it was deleted): stop at once

    def want(self, now: float, wall: str) -> Write | None:
        """The write to try now, if any: create, take over, or renew."""
        rec = self.record
        if rec is None:
            return Write(Record(self.identity, self.lease_duration, wall, wall, 0), None)
        if rec.holder == self.identity:
            return Write(
                Record(self.identity, self.lease_duration, rec.acquire_time or wall, wall, rec.transitions),
                self.resource_version,
            )
        if rec.holder and now < self.observed_at + rec.duration:
            return None  # another candidate holds a live Lease
        return Write(
            Record(self.identity, self.lease_duration, wall, wall, rec.transitions + 1), self.resource_version
        )

    def wrote(self, write: Write, resource_version: str | None, now: float) -> None:
        """A write succeeded (``resource_version`` the new one) or, with None, failed (409, an error)."""
        if resource_version is not None:
            self.record, self.resource_version = write.record, resource_version
            self.observed_at = self.renewed_at = now
            self.role = Role.LEADING
        else:
            self.need_read = True
            self.tick(now)

    def tick(self, now: float) -> None:
        """Stop leading once no renewal succeeded for ``renew_deadline`` seconds."""
        if self.role is Role.LEADING and now - self.renewed_at >= self.renew_deadline:
            self.role = Role.FOLLOWING

    def step(
        self,
        clock: Callable[[], float],
        wall: str,
        read: Callable[[], tuple[Record | None, str | None] | None],
        write: Callable[[Write], str | None],
    ) -> None:
        """One round with the I/O given: ``read`` the Lease (unless we hold it and nothing failed), then
        ``write`` what ``want`` says. ``read`` returns None when it failed, ``write`` when it was refused
        or failed; ``clock`` is read after each call, as the calls take time."""
        if self.role is not Role.LEADING or self.need_read:
            got = read()
            if got is None:
                self.tick(clock())  # the API is away: a follower waits, a holder leads until its deadline
                return
            self.observe(*got, clock())
        w = self.want(clock(), wall)
        if w is not None:
            self.wrote(w, write(w), clock())
        self.tick(clock())

    def released(self) -> Write | None:
        """The write that gives the Lease up (holder only): empty holder, duration 1 s."""
        if self.role is not Role.LEADING or self.record is None:
            return None
        rec = self.record
        return Write(
            Record("", 1.0, rec.acquire_time, rec.renew_time, rec.transitions), self.resource_version
        )


class LeaseElector:
    """Runs an ``Election`` against the API server; ``on_change(leading)`` is called on the event loop
    whenever the role changes."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        namespace: str,
        identity: str,
        on_change: Callable[[bool], None],
        *,
        name: str = LEASE_NAME,
        lease_duration: float | None = None,
        renew_every: float | None = None,
        renew_deadline: float | None = None,
        poll: float | None = None,
        request_timeout: float = 5.0,
    ) -> None:
        # Timings default to the module's constants as they are when the elector is made.
        self._api = k8s_client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, name
        self.election = Election(
            identity,
            LEASE_DURATION if lease_duration is None else lease_duration,
            RENEW_DEADLINE if renew_deadline is None else renew_deadline,
        )
        self._on_change = on_change
        self.renew_every = RENEW_EVERY if renew_every is None else renew_every
        self.poll = POLL if poll is None else poll
        self._timeout = request_timeout
        self.transitions = 0  # role changes seen by this candidate

    @property
    def leading(self) -> bool:
        """Whether this candidate holds the Lease (as of its last renewal)."""
        return self.election.role is Role.LEADING

    async def run(self) -> None:
        """Read, decide, write, until cancelled (the role as ``on_change`` says)."""
        loop = asyncio.get_running_loop()
        while True:
            was = self.leading
            try:
                await self.step(loop.time)
            except Exception:
                log.exception("lease %s/%s: election step failed", self.namespace, self.name)  # a bug
            if self.leading != was:
                self.transitions += 1
                log.info(
                    "lease %s/%s: %s %s",
                    self.namespace,
                    self.name,
                    self.election.identity,
                    "now leads" if self.leading else "no longer leads",
                )
                self._on_change(self.leading)
            pause = self.renew_every if self.leading else self.poll * random.uniform(0.8, 1.2)
            await asyncio.sleep(pause)

    async def step(self, clock: Callable[[], float]) -> None:
        """One round (``Election.step``) in a worker thread: its API calls block. Nothing else changes
        the election meanwhile (``run`` waits for it; ``leading`` is one read)."""
        await asyncio.to_thread(self.election.step, clock, micro_time(), self._read, self._write)

    async def release(self, timeout: float = 2.0) -> None:
        """Give the Lease up if held (a graceful stop), bounded by ``timeout``."""
        write = self.election.released()
        if write is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(self._write, write), timeout)
        except TimeoutError:
            log.warning("lease %s/%s: release timed out; it expires on its own", self.namespace, self.name)
        self.election.role = Role.FOLLOWING

    def _read(self) -> tuple[Record | None, str | None] | None:
        """(record, resourceVersion), (None, None) when there is no Lease, None when the read failed."""
        try:
            resp = self._api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False, _request_timeout=self._timeout
            )
            obj = json.loads(resp.data)
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            log.warning("lease %s/%s: read failed: %s %s", self.namespace, self.name, exc.status, exc.reason)
            return None
        except Exception as exc:  # network, a malformed body
            log.warning("lease %s/%s: read failed: %s", self.namespace, self.name, exc)
            return None
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            return None
        return Record.from_lease(obj), str(obj["metadata"].get("resourceVersion") or "")

    def _write(self, write: Write) -> str | None:
        """Create or update; the new resourceVersion, or None (409: another candidate won; an error)."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if write.resource_version is not None:
            meta["resourceVersion"] = write.resource_version
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": write.record.spec(),
        }
        try:
            if write.resource_version is None:
                resp = self._api.create_namespaced_lease(
                    self.namespace, body, _preload_content=False, _request_timeout=self._timeout
                )
            else:
                resp = self._api.replace_namespaced_lease(
                    self.name, self.namespace, body, _preload_content=False, _request_timeout=self._timeout
                )
            obj = json.loads(resp.data)
            return str(obj["metadata"]["resourceVersion"])
        except ApiException as exc:
            if exc.status != 409:
                log.warning(
                    "lease %s/%s: write failed: %s %s", self.namespace, self.name, exc.status, exc.reason
                )
            return None
        except Exception as exc:
            log.warning("lease %s/%s: write failed: %s", self.namespace, self.name, exc)
            return None
