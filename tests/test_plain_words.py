"""Numbers and times as people read them: plurals, how often, and the agency's time zone."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from foundation.plain_words import count, local_time, time_zone, times
from foundation.settings import Settings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_counts_say_one_call_and_three_calls():
    assert [count(n, "call") for n in (0, 1, 3, 1200)] == ["0 calls", "1 call", "3 calls", "1,200 calls"]
    assert count(2, "person") == "2 people" and count(1, "turn") == "1 turn"
    assert count(2, "access-audit entry") == "2 access-audit entries" and count(3, "day") == "3 days"


def test_how_often():
    assert [times(n) for n in (1, 2, 3, 131)] == ["once", "twice", "3 times", "131 times"]


def test_stored_utc_times_are_shown_in_the_agencys_zone_summer_and_winter():
    assert local_time("2026-12-01T20:49:02.777+00:00", STOCKHOLM) == "1 Dec 2026, 21:49 CET"
    assert local_time(datetime(2026, 7, 1, 20, 49, 2), STOCKHOLM, seconds=True) == "1 Jul 2026, 22:49:02 CEST"
    assert local_time(datetime(2026, 7, 1, 20, 49, tzinfo=UTC), UTC) == "1 Jul 2026, 20:49 UTC"
    assert local_time(None, STOCKHOLM) == "" and local_time("", STOCKHOLM) == ""
    assert local_time("not a time", STOCKHOLM) == "not a time"  # shown as it is, not lost


def test_an_unknown_time_zone_is_refused_at_start_up_by_name():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        time_zone("Mars/Olympus")
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Settings(time_zone="Mars/Olympus")
    assert Settings(time_zone="America/New_York").zone == ZoneInfo("America/New_York")
