"""The server's admin faults (what Toxiproxy cannot make) and how a request sets them.

``POST /admin/faults`` takes a JSON object with any of::

    {"outage": null | {"retry_after_s": null | number >= 0},
     "errors": null | {"status": 400..599 (default 500), "probability": 0..1 (default 0)},
     "capacity_instances": null | integer >= 0}

Every field is checked before anything changes: a bad one is a 400 naming it, and the
faults stay as they were (all or nothing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from harness.server_http import BadRequest, check_fields, json_type

FIELDS = ("outage", "errors", "capacity_instances")
OUTAGE_FIELDS = ("retry_after_s",)
ERRORS_FIELDS = ("status", "probability")


@dataclass(frozen=True)
class Faults:
    """Admin faults, all off by default."""

    outage: bool = False
    outage_retry_after_s: float | None = None
    error_status: int = 500
    error_probability: float = 0.0
    capacity_instances: int | None = None


def apply_faults(current: Faults, body: dict[str, Any]) -> Faults:
    """``current`` with the changes ``body`` asks for; :class:`BadRequest` (400, naming
    the field and its rule) for anything else, before any change."""
    check_fields(body, FIELDS)
    changes: dict[str, Any] = {}
    if "outage" in body:
        changes.update(_outage(body["outage"]))
    if "errors" in body:
        changes.update(_errors(body["errors"]))
    if "capacity_instances" in body:
        value = body["capacity_instances"]
        changes["capacity_instances"] = (
            None if value is None else _integer(value, "capacity_instances", 0, 1_000_000)
        )
    return dataclasses.replace(current, **changes)


def _outage(value: Any) -> dict[str, Any]:
    if value is None:
        return {"outage": False, "outage_retry_after_s": None}
    _object(value, "outage")
    check_fields(value, OUTAGE_FIELDS, "outage.")
    hint = value.get("retry_after_s")
    retry_after_s = None if hint is None else _number(hint, "outage.retry_after_s", 0, 86_400)
    return {"outage": True, "outage_retry_after_s": retry_after_s}


def _errors(value: Any) -> dict[str, Any]:
    if value is None:
        return {"error_probability": 0.0, "error_status": 500}
    _object(value, "errors")
    check_fields(value, ERRORS_FIELDS, "errors.")
    return {
        "error_status": _integer(value.get("status", 500), "errors.status", 400, 599),
        "error_probability": _number(value.get("probability", 0.0), "errors.probability", 0, 1),
    }


def _object(value: Any, name: str) -> None:
    if not isinstance(value, dict):
        raise BadRequest(400, f"{name}: must be an object or null, got {json_type(value)}")


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(400, f"{name}: must be a number, got {json_type(value)} {value!r}")
    if not low <= value <= high:
        raise BadRequest(400, f"{name}: must be in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(400, f"{name}: must be an integer, got {json_type(value)} {value!r}")
    if not low <= value <= high:
        raise BadRequest(400, f"{name}: must be in [{low}, {high}], got {value!r}")
    return value
