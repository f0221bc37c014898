from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.params import ParameterError, date_range, parse_datetime, whole_hours


def test_dates_parse_as_utc():
    assert parse_datetime("start_date", "2025-05-01") == calendar.timegm((2025, 5, 1, 0, 0, 0))
    assert parse_datetime("x", "2025-05-01 13:14:15") == calendar.timegm((2025, 5, 1, 13, 14, 15))


@pytest.mark.parametrize("bad", ["2025-13-01", "2025-02-30", "yesterday", "2025-05-01 25:00:00",
                                 "2025-05-01T10:00:00+02:00x", "1969-12-31"])
def test_bad_dates_name_the_parameter(bad):
    with pytest.raises(ParameterError, match="end_date"):
        date_range({"end_date": bad})


def test_start_after_end_is_rejected():
    with pytest.raises(ParameterError, match="start_date"):
        date_range({"start_date": "2025-05-02", "end_date": "2025-05-01"})


@given(st.integers(0, 2**32 - 10), st.integers(0, 10 * 86400))
def test_whole_hours_partition_the_range(start, length):
    end = start + length
    lo, hi = whole_hours(start, end)
    if lo < hi:
        assert lo % 3600 == 0 and hi % 3600 == 0
        assert start <= lo and hi <= end + 1
        assert lo - start < 3600 and end + 1 - hi < 3600
    else:
        # no whole hour fits: the range lies within at most two partial hours
        assert (end + 1) - start < 7200
