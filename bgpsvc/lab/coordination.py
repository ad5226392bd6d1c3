"""``coordination.k8s.io/v1`` Lease, the built-in kind leader election writes, as a CRD-shaped definition
that ``CrdRegistry.register_builtin`` serves through the custom-resource machinery (no
``customresourcedefinitions`` object exists for it, as none does upstream).

The schema mirrors ``k8s.io/api/coordination/v1.LeaseSpec`` and ``ValidateLeaseSpec``:
``leaseDurationSeconds`` > 0 and ``leaseTransitions`` >= 0, both int32. ``acquireTime`` and ``renewTime``
are ``metav1.MicroTime``, which upstream decodes with the fixed layout ``RFC3339Micro``
(``2006-01-02T15:04:05.000000Z07:00``): exactly six fractional digits, so a whole-second or millisecond
timestamp is refused. Upstream that is a 400 at decoding; here the pattern makes it a 422. What is stored
reads back as upstream writes it (``MicroTime.MarshalJSON``): in UTC with ``Z``, whatever offset was sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_INT32_MAX = 2**31 - 1
#: ``metav1.RFC3339Micro`` as Go's ``time.Parse`` accepts it.
MICRO_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_MICRO_TIME_RE = re.compile(MICRO_TIME_PATTERN)
_MICRO_TIME = {"type": "string", "format": "date-time", "pattern": MICRO_TIME_PATTERN}

#: The Lease definition (no status subresource: a Lease has no ``status``).
LEASE: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "leases.coordination.k8s.io"},
    "spec": {
        "group": "coordination.k8s.io",
        "scope": "Namespaced",
        "names": {"plural": "leases", "singular": "lease", "kind": "Lease", "listKind": "LeaseList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "holderIdentity": {"type": "string"},
                                    "leaseDurationSeconds": {
                                        "type": "integer",
                                        "format": "int32",
                                        "minimum": 1,
                                        "maximum": _INT32_MAX,
                                    },
                                    "acquireTime": _MICRO_TIME,
                                    "renewTime": _MICRO_TIME,
                                    "leaseTransitions": {
                                        "type": "integer",
                                        "format": "int32",
                                        "minimum": 0,
                                        "maximum": _INT32_MAX,
                                    },
                                    "preferredHolder": {"type": "string"},
                                    "strategy": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        ],
    },
}


def canonical_lease(obj: dict[str, Any]) -> None:
    """Rewrite a Lease's MicroTimes in place as upstream stores them: UTC, six digits, ``Z``. Values that
    do not parse are left for validation to name."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if isinstance(value, str) and _MICRO_TIME_RE.fullmatch(value):
            try:
                utc = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            except (ValueError, OverflowError):  # month 13, or year 1 moved before year 1 by its offset
                continue
            spec[key] = utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
