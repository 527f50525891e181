"""Field checks every decoder shares: each raises IntegrityError naming the object and the field.

Pure: no I/O. A decoder calls these on a freshly parsed JSON object, so a
value of the wrong type, out of range or of absurd size is refused where it
is read, never deep inside a reader (FORMAT.md §2, §12, §17).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from ..clock import from_iso
from ..errors import IntegrityError

MODES = ("governance", "compliance")
MAX_INT = (1 << 63) - 1  # every count and size is a signed 64-bit integer at most
MAX_TEXT = 4096  # characters in a name, host, user, reason, tag, path, glob
MAX_LIST = 1 << 16  # entries in paths, tags and excludes
MAX_TIME_TEXT = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DURATION = re.compile(r"[0-9]{1,9}(s|m|h|d|w|mo|y)")


def fail(what: str, field: str, why: str) -> IntegrityError:
    return IntegrityError(f"{what}: {field} {why}")


def is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def hex64(doc: dict, field: str, what: str, *, optional: bool = False) -> str | None:
    value = doc.get(field)
    if value is None and optional:
        return None
    if not is_hex64(value):
        raise fail(what, field, "is not 64 lowercase hex characters")
    return value


def text(doc: dict, field: str, what: str, *, optional: bool = False, limit: int = MAX_TEXT) -> str | None:
    if field not in doc and optional:
        return None
    value = doc.get(field)
    if not isinstance(value, str):
        raise fail(what, field, "is not a string")
    if len(value) > limit:
        raise fail(what, field, f"is longer than {limit} characters")
    return value


def integer(value: Any, what: str, field: str, *, low: int = 0, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(what, field, "is not an integer")
    if not low <= value <= high:
        raise fail(what, field, f"is out of range ({low}..{high})")
    return value


def number(value: Any, what: str, field: str, *, low: float = 0, high: float = float(MAX_INT)) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(what, field, "is not a number")
    if not low <= value <= high:  # NaN fails both comparisons
        raise fail(what, field, f"is out of range ({low:g}..{high:g})")
    return value


def time(value: Any, what: str, field: str) -> _dt.datetime:
    """An ISO 8601 time as amber writes it (a date alone is accepted, as UTC midnight)."""
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        raise fail(what, field, "is not an ISO 8601 time")
    try:
        return from_iso(value)
    except (ValueError, OverflowError, TypeError):
        raise fail(what, field, "is not an ISO 8601 time") from None


def strings(value: Any, what: str, field: str, *, limit: int = MAX_LIST) -> list[str]:
    if not isinstance(value, list):
        raise fail(what, field, "is not a list of strings")
    if len(value) > limit:
        raise fail(what, field, f"has more than {limit} entries")
    for s in value:
        if not isinstance(s, str):
            raise fail(what, field, "is not a list of strings")
        if len(s) > MAX_TEXT:
            raise fail(what, field, f"holds a string longer than {MAX_TEXT} characters")
    return value


def mode(value: Any, what: str, field: str) -> str:
    if value not in MODES:
        raise fail(what, field, "is not governance or compliance")
    return value


def retention(value: Any, what: str, field: str = "retention") -> dict | None:
    """null, or {"mode": governance|compliance, "until": time}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail(what, field, "is neither null nor an object")
    mode(value.get("mode"), what, f"{field}.mode")
    time(value.get("until"), what, f"{field}.until")
    return value


def duration(value: Any, what: str, field: str) -> str:
    """A positive duration as amber spells it (`30d`, `6mo`, `7y`; at most 9 digits)."""
    if not isinstance(value, str) or not _DURATION.fullmatch(value) or int(re.sub(r"\D", "", value)) == 0:
        raise fail(what, field, "is not a positive duration such as 30d")
    return value


def boolean(doc: dict, field: str, what: str) -> bool:
    value = doc.get(field, False)
    if not isinstance(value, bool):
        raise fail(what, field, "is not true or false")
    return value
