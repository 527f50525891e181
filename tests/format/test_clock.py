"""Durations and dates as users write them, and the clock's ISO text."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.clock import FakeClock, SystemClock, add_duration, duration_seconds, from_iso, parse_date, to_iso
from amber.errors import UsageError

FAST = settings(max_examples=100, deadline=None)
UTC = dt.UTC


def d(*args):
    return dt.datetime(*args, tzinfo=UTC)


aware = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 12, 31), timezones=st.just(UTC))


@pytest.mark.parametrize(
    "start,text,expected",
    [
        (d(2030, 1, 31), "6mo", d(2030, 7, 31)),
        (d(2030, 1, 31), "1mo", d(2030, 2, 28)),
        (d(2032, 1, 31), "1mo", d(2032, 2, 29)),
        (d(2030, 3, 31), "1mo", d(2030, 4, 30)),
        (d(2030, 8, 31), "6mo", d(2031, 2, 28)),
        (d(2030, 12, 15), "1mo", d(2031, 1, 15)),
        (d(2030, 1, 31), "13mo", d(2031, 2, 28)),
        (d(2032, 2, 29), "1y", d(2033, 2, 28)),
        (d(2032, 2, 29), "4y", d(2036, 2, 29)),
        (d(2030, 5, 1, 12, 30, 15), "7y", d(2037, 5, 1, 12, 30, 15)),
        (d(2030, 1, 1), "90s", d(2030, 1, 1, 0, 1, 30)),
        (d(2030, 1, 1), "15m", d(2030, 1, 1, 0, 15)),
        (d(2030, 1, 1), "36h", d(2030, 1, 2, 12)),
        (d(2030, 1, 1), "30d", d(2030, 1, 31)),
        (d(2030, 1, 1), "2w", d(2030, 1, 15)),
        (d(2030, 1, 1), "0d", d(2030, 1, 1)),
        (d(2030, 1, 1), " 3 d ", d(2030, 1, 4)),
    ],
)
def test_add_duration(start, text, expected):
    assert add_duration(start, text) == expected


@FAST
@given(start=aware, months=st.integers(0, 600), unit=st.sampled_from(["mo", "y"]))
def test_calendar_durations_land_on_a_valid_day(start, months, unit):
    n = months if unit == "mo" else months // 12
    end = add_duration(start, f"{n}{unit}")
    total = n if unit == "mo" else 12 * n
    assert (end.year - start.year) * 12 + (end.month - start.month) == total
    assert end.day <= start.day
    if end.day < start.day:  # clamped to the end of a shorter month
        assert (end + dt.timedelta(days=1)).month != end.month
    assert end.time() == start.time() and end.tzinfo == start.tzinfo
    assert end >= start


@FAST
@given(start=aware, n=st.integers(0, 100_000), unit=st.sampled_from(["s", "m", "h", "d", "w"]))
def test_fixed_durations_add_exact_seconds(start, n, unit):
    secs = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit] * n
    assert add_duration(start, f"{n}{unit}") - start == dt.timedelta(seconds=secs)
    assert duration_seconds(f"{n}{unit}") == secs


@pytest.mark.parametrize(
    "text", ["", " ", "d", "5", "-5d", "1.5d", "5 days", "5D", "5mos", "5yr", "1d2h", "5x", "mo", "P1D", None]
)
def test_invalid_durations_are_usage_errors(text):
    with pytest.raises(UsageError):
        add_duration(d(2030, 1, 1), text)


@pytest.mark.parametrize("text", ["10000y", "99999999999999d"])
def test_durations_past_the_calendar_are_usage_errors(text):
    with pytest.raises(UsageError):
        add_duration(d(2030, 1, 1), text)


def test_duration_seconds_of_calendar_units():
    assert duration_seconds("1mo") == 31 * 86400  # measured from 2000-01-01
    assert duration_seconds("1y") == 366 * 86400  # 2000 is a leap year


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2031-01-01", d(2031, 1, 1)),
        ("2031-01-01T12:30:00Z", d(2031, 1, 1, 12, 30)),
        ("2031-01-01T12:30:00+02:00", d(2031, 1, 1, 10, 30)),
        ("2031-01-01T00:00:00-05:00", d(2031, 1, 1, 5)),
        (" 2031-06-15T08:00:00.123456Z ", d(2031, 6, 15, 8, 0, 0, 123456)),
    ],
)
def test_parse_date(text, expected):
    got = parse_date(text)
    assert got == expected
    assert got.tzinfo == UTC


@pytest.mark.parametrize("text", ["", "tomorrow", "2031-13-01", "2031-02-30", "31/01/2031", "2031-01-01T25:00"])
def test_invalid_dates_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_date(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_dates_at_the_edge_of_the_calendar_are_dates_or_usage_errors(text):
    try:
        got = parse_date(text)
    except UsageError:
        return
    assert got.tzinfo == UTC


@FAST
@given(
    t=st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2999, 1, 1),
        timezones=st.sampled_from(
            [UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
        ),
    )
)
def test_iso_text_round_trips(t):
    text = to_iso(t)
    assert text.endswith("Z")
    back = from_iso(text)
    assert back == t and back.tzinfo == UTC
    assert parse_date(text) == t


def test_to_iso_shows_microseconds_only_when_present():
    assert to_iso(d(2030, 1, 2, 3, 4, 5)) == "2030-01-02T03:04:05Z"
    assert to_iso(d(2030, 1, 2, 3, 4, 5, 60)) == "2030-01-02T03:04:05.000060Z"


def test_fake_clock_moves_only_by_hand():
    c = FakeClock(d(2030, 1, 1))
    assert c.now() == c.now() == d(2030, 1, 1)
    c.advance(86400.5)
    assert c.now() == d(2030, 1, 2, 0, 0, 0, 500000)
    assert FakeClock().now().tzinfo is not None


def test_system_clock_is_utc():
    assert SystemClock().now().tzinfo == UTC
