"""Trends in SQL, on SQLite and on the real PostgreSQL server: the KPIs per day or hour of the agency's clock, the
period against the one before, and the movers; from the known days of tests/test_kpis.py plus a period before."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics import kpis, trends
from analytics.store import CallStore
from tests.test_kpis import PERIOD, T, _call, _turn, day  # noqa: F401  (day: the fixture of the known calls)


@pytest.fixture
def history(day, store_url):  # type: ignore[no-untyped-def]  # noqa: F811
    """The known days (C1-C4 in PERIOD), and three calls in the two days before it."""
    store = CallStore.open(store_url)
    before = T - timedelta(days=1)
    answered = {**_turn(1, "answer:payment_dates", "ask_payment_dates", 0.9, 100), "endpointing_ms": 700}
    _call(store, "P1", "E", before + timedelta(hours=9), [answered], "answered:payment_dates", length_s=60)
    for sid, at in (("P2", before + timedelta(hours=10)), ("P3", T - timedelta(days=2) + timedelta(hours=12))):
        turns = [_turn(1, "route:general", "request_human", 0.9, 300)]
        _call(store, sid, "F", at, turns, "routed:general", handoff_after_s=30, queue="general", length_s=40)
    store.close()
    return day


def test_each_day_of_the_period_with_its_kpis(history):  # type: ignore[no-untyped-def]
    result = trends.trends(history, PERIOD, "day")
    assert result["unit"] == "day" and result["buckets_with_calls"] == 2
    # Day 1: C1 answered (120 s), C3 routed (30 s + 60 s with the expert); speech turns 100 and 400 ms.
    # Day 2: C2 routed (90 s + 240 s), C4 abandoned (20 s); speech turns 200 and 300 ms.
    assert result["series"] == [
        {"bucket": "2026-11-24", "calls": 2, "routed": 1, "containment": 0.5, "abandonment": 0.0, "aht_s": 105.0,
         "felt_gap_ms": 250},
        {"bucket": "2026-11-25", "calls": 2, "routed": 1, "containment": 0.0, "abandonment": 0.5, "aht_s": 175.0,
         "felt_gap_ms": 250},
    ]  # fmt: skip
    assert result["routed_by_queue"] == {
        "general": [{"bucket": "2026-11-24", "calls": 1}, {"bucket": "2026-11-25", "calls": 0}],
        "payments_debt": [{"bucket": "2026-11-24", "calls": 0}, {"bucket": "2026-11-25", "calls": 1}],
    }


def test_the_period_against_the_one_before(history):  # type: ignore[no-untyped-def]
    totals = trends.trends(history, PERIOD, "day")["totals"]
    assert totals["calls"] == {"now": 4, "before": 3, "change": 33.3, "unit": "%"}
    # Containment is a rate: its change is in percentage points (25 % now, 1 of 3 before).
    assert totals["containment"] == {"now": 0.25, "before": 0.3333, "change": -8.3, "unit": "points"}
    assert totals["routed"]["change"] == 0.0
    # The felt gap counts the endpointing wait: before, (100 + 700), 300 and 300 ms -> 467 ms; now 250 ms.
    assert totals["felt_gap_ms"] == {"now": 250, "before": 467, "change": -46.5, "unit": "%"}


def test_movers_are_what_grew_or_shrank_most(history):  # type: ignore[no-untyped-def]
    movers = trends.trends(history, PERIOD, "day")["movers"]
    assert movers[0] == {"kind": "topic", "name": "payment_dates", "now": 2, "before": 1, "change": 1}
    assert {(m["kind"], m["name"], m["change"]) for m in movers[1:]} == {
        ("queue", "general", -1),
        ("queue", "payments_debt", 1),
        ("reason", "general: request_human", -1),
        ("reason", "payments_debt: payment_problem", 1),
    }


def test_hours_are_the_agencys_and_every_bucket_is_shown(history):  # type: ignore[no-untyped-def]
    stockholm = kpis.Period(PERIOD.start, PERIOD.end, ZoneInfo("Europe/Stockholm"))
    result = trends.trends(history, stockholm, None)  # two days: hours by default
    assert result["unit"] == "hour" and len(result["series"]) == 48
    assert result["series"][0]["bucket"] == "2026-11-24 01:00"  # midnight UTC is 01:00 in Stockholm in November
    by_hour = {s["bucket"]: s["calls"] for s in result["series"]}
    assert by_hour["2026-11-24 10:00"] == 2 and by_hour["2026-11-25 11:00"] == 1 and by_hour["2026-11-24 12:00"] == 0


def test_an_empty_period_is_no_numbers_not_an_error(history):  # type: ignore[no-untyped-def]
    empty = kpis.Period(T - timedelta(days=40), T - timedelta(days=33))
    result = trends.trends(history, empty, "day")
    assert result["buckets_with_calls"] == 0 and len(result["series"]) == 7
    assert result["totals"]["calls"] == {"now": 0, "before": 0, "change": None, "unit": "%"}
    assert result["totals"]["aht_s"]["change"] is None and result["movers"] == []


def test_the_bucket_size_suits_the_period():
    days = [kpis.Period(T, T + timedelta(days=n)) for n in (1, 30, 100)]
    assert [trends.unit_for(p, None) for p in days] == ["hour", "day", "week"]
    assert trends.unit_for(days[1], "hour") == "day", "hours over a month would be unreadable"
    assert trends.unit_for(days[2], "day") == "day" and trends.unit_for(days[0], "nonsense") == "hour"
