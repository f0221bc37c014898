"""Typed query parameters, Tinybird style: a bad value is a 400 naming the parameter."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping

from api.errors import ParameterError

__all__ = ["ParameterError", "date_range", "get_choice", "get_datetime", "get_int",
           "get_string", "parse_datetime", "whole_hours"]

MAX_OFFSET = 10**9
QUARANTINE_MAX_LIMIT = 100_000  # rows per page of the quarantine
MIN_EPOCH = 0
MAX_EPOCH = calendar.timegm((2106, 2, 7, 6, 28, 15))  # DateTime's last second
# ASCII digits only (\d would take any script's digits, and int() would read them).
_DATETIME = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2}))?$")
_INTEGER = re.compile(r"^-?[0-9]{1,19}$")  # no '+', '_', spaces or other scripts' digits


def parse_datetime(name: str, raw: str) -> int:
    """'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (00:00:00), UTC -> epoch seconds."""
    match = _DATETIME.fullmatch(raw)
    if not match:
        raise ParameterError(
            f"Error validating '{raw[:64]}' to type DateTime for parameter '{name}': "
            "expected 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (UTC)"
        )
    year, month, day = (int(match.group(i)) for i in (1, 2, 3))
    hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
    if not (1 <= year and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour <= 23 and minute <= 59 and second <= 59):
        raise ParameterError(
            f"Error validating '{raw[:64]}' to type DateTime for parameter '{name}': "
            "not a valid date")
    epoch = calendar.timegm((year, month, day, hour, minute, second))
    if not MIN_EPOCH <= epoch <= MAX_EPOCH:
        raise ParameterError(
            f"Error validating '{raw[:64]}' to type DateTime for parameter '{name}': "
            "outside 1970-01-01 00:00:00 .. 2106-02-07 06:28:15"
        )
    return epoch


def get_string(params: Mapping[str, str], name: str, max_length: int = 1024) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if len(value) > max_length:
        raise ParameterError(f"Parameter '{name}' is longer than {max_length} characters")
    if "\x00" in value:
        raise ParameterError(f"Parameter '{name}' contains a NUL character")
    return value


def get_datetime(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return parse_datetime(name, value)


def get_int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not _INTEGER.fullmatch(value):
        raise ParameterError(
            f"Error validating '{value[:64]}' to type Int32 for parameter '{name}': "
            "expected ASCII digits")
    number = int(value)
    if not lo <= number <= hi:
        raise ParameterError(f"Parameter '{name}' must be between {lo} and {hi}, got {number}")
    return number


def get_choice(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise ParameterError(
            f"Parameter '{name}' must be one of {', '.join(choices)}, got '{value[:64]}'"
        )
    return value


def date_range(params: Mapping[str, str]) -> tuple[int, int]:
    """Inclusive [start_date, end_date] in epoch seconds; open ends become the extremes."""
    start = get_datetime(params, "start_date")
    end = get_datetime(params, "end_date")
    start = MIN_EPOCH if start is None else start
    end = MAX_EPOCH if end is None else end
    if start > end:
        raise ParameterError("Parameter 'start_date' must not be after 'end_date'")
    return start, end


def whole_hours(start: int, end: int) -> tuple[int, int]:
    """The half-open range [from, to) of whole hours inside the inclusive [start, end]."""
    first = -(-start // 3600) * 3600
    after = ((end + 1) // 3600) * 3600
    if first >= after:
        return 0, 0
    return first, after
