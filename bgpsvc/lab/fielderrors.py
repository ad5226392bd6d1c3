"""Field errors as apimachinery's ``field.Error`` renders them (``util/validation/field/errors.go``), and the
422 ``Invalid`` Status that carries them (``api/errors.NewInvalid``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_NO_VALUE = object()

#: field.ErrorType -> (cause reason, text)
TYPES = {
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "TypeInvalid": ("FieldValueTypeInvalid", "Invalid value"),
    "Required": ("FieldValueRequired", "Required value"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "TooLong": ("FieldValueTooLong", "Too long"),
    "TooMany": ("FieldValueTooMany", "Too many"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
}
REASONS = {reason: name for name, (reason, _) in TYPES.items()}


def go_value(v: Any) -> str:
    """A value as ``field.Error`` prints it (%q for strings, %v for numbers and bools)."""
    if v is None:
        return '"null"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: ``<field>: <Type text>[: <value>][: <detail>]``."""

    type: str  # a key of TYPES
    field: str
    detail: str = ""
    value: Any = _NO_VALUE

    @property
    def reason(self) -> str:
        """The cause reason (``FieldValueInvalid`` ...)."""
        return TYPES[self.type][0]

    def body(self) -> str:
        """``ErrorBody()``: the message without the field path."""
        s = TYPES[self.type][1]
        if self.type not in ("Required", "Forbidden", "TooLong") and self.value is not _NO_VALUE:
            s += f": {go_value(self.value)}"
        return f"{s}: {self.detail}" if self.detail else s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


def aggregate(errs: list[FieldError]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one message, or ``[a, b]``."""
    msgs = list(dict.fromkeys(str(e) for e in errs))
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


def invalid_status(kind: str, group: str, name: str, errs: list[FieldError]) -> dict[str, Any]:
    """The 422 ``Invalid`` Status for an object (``errors.NewInvalid``)."""
    qualified = f"{kind}.{group}" if group else kind
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{qualified} "{name}" is invalid: {aggregate(errs)}',
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errs],
        },
        "code": 422,
    }


class Invalid(ValueError):
    """An object (or CRD) failed validation; ``status`` is the 422 body the server answers with."""

    def __init__(self, kind: str, group: str, name: str, errs: list[FieldError]) -> None:
        self.errors = errs
        self.status = invalid_status(kind, group, name, errs)
        super().__init__(self.status["message"])
