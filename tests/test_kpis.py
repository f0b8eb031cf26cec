"""KPIs computed in SQL, on SQLite and on the real PostgreSQL server, from a small known day of calls written
through the store's own API."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics import kpis
from analytics.models import Call
from analytics.retention import purge_call
from analytics.store import CallStore

T = datetime(2026, 11, 24, tzinfo=UTC)
PERIOD = kpis.Period(T, T + timedelta(days=2))


def _turn(index, decision, intent, asr=0.9, response_ms=100.0, input="speech"):
    return {"index": index, "input": input, "transcript": "...", "asr_confidence": asr, "intent": intent,
            "nlu_confidence": 0.9, "decision": decision, "response_ms": response_ms}  # fmt: skip


def _call(store, sid, key, start, turns, outcome, handoff_after_s=None, queue=None, length_s=60):
    store.call_started(sid, "+46******00", key, start, worker="w")
    for turn in turns:
        store.save_turn(sid, turn)
    if handoff_after_s is not None:
        at = start + timedelta(seconds=handoff_after_s)
        store.save_handoff(sid, {"queue": queue, "handed_off_at": at.isoformat()})
    store.call_ended(
        {"call_sid": sid, "caller": "+46******00", "started_at": start.isoformat(), "outcome": outcome,
         "ended_at": (start + timedelta(seconds=length_s)).isoformat(), "turns": turns,
         "handoff": {"queue": queue} if queue else None}
    )  # fmt: skip


@pytest.fixture
def day(store_url):
    store = CallStore.open(store_url)
    _call(
        store,
        "C1",
        "A",
        T + timedelta(hours=9, minutes=10),
        [_turn(1, "answer:payment_dates", "ask_payment_dates", 0.9, 100)],
        "answered:payment_dates",
        length_s=120,
    )
    _call(
        store,
        "C2",
        "A",
        T + timedelta(days=1, hours=10),
        [
            _turn(1, "answer:payment_dates", "ask_payment_dates", 0.8, 200),
            _turn(2, "route:payments_debt", "payment_problem", 0.7, 300),
        ],
        "routed:payments_debt",
        handoff_after_s=90,
        queue="payments_debt",
        length_s=95,
    )
    _call(
        store,
        "C3",
        "B",
        T + timedelta(hours=9, minutes=40),
        [
            _turn(1, "smalltalk:out_of_scope", "out_of_scope", 0.4, 400),
            _turn(2, "route:general", "request_human", 1.0, 150, input="keypad"),
        ],
        "routed:general",
        handoff_after_s=30,
        queue="general",
        length_s=35,
    )
    _call(store, "C4", "C", T + timedelta(days=1, hours=11), [], "abandoned", length_s=20)
    _call(
        store,
        "C5",
        "D",
        T + timedelta(days=3),
        [_turn(1, "answer:opening_hours", "ask_opening_hours")],
        "answered:opening_hours",
    )  # outside the period
    t = T + timedelta(days=1, hours=10, minutes=5)
    store.add_task_event("C2", "payments_debt", "accepted", "taskrouter", at=t, task_sid="WT1")
    store.add_task_event(
        "C2", "payments_debt", "completed", "taskrouter", at=t + timedelta(seconds=240), task_sid="WT1"
    )
    store.add_task_event("C3", "general", "completed", "dial", at=t, handled_s=60.0)
    with store.sessions() as db:
        yield db
    store.close()


def test_outcomes_containment_and_abandonment(day):
    assert kpis.outcomes(day, PERIOD) == {
        "calls": 4, "answered": 1, "routed": 2, "abandoned": 1, "failed": 0, "in_progress": 0,
        "containment": 0.25, "abandonment": 0.25,
    }  # fmt: skip


def test_calls_per_hour_and_day(day):
    assert kpis.calls_per(day, PERIOD, "hour") == [
        {"bucket": "2026-11-24 09:00", "calls": 2},
        {"bucket": "2026-11-25 10:00", "calls": 1},
        {"bucket": "2026-11-25 11:00", "calls": 1},
    ]
    assert kpis.calls_per(day, PERIOD, "day") == [
        {"bucket": "2026-11-24", "calls": 2},
        {"bucket": "2026-11-25", "calls": 2},
    ]


def test_containment_per_topic(day):
    assert kpis.containment_by_topic(day, PERIOD) == [
        {"topic": "payment_dates", "calls": 2, "contained": 1, "containment": 0.5}
    ]


def test_routing_per_queue_with_reasons(day):
    assert kpis.routing_by_queue(day, PERIOD) == [
        {"queue": "general", "reason": "request_human", "calls": 1},
        {"queue": "payments_debt", "reason": "payment_problem", "calls": 1},
    ]


def test_repeat_calls_within_seven_days_per_intent(day):
    """C1 was "answered" about payment dates, and the same number called again the next day: failure demand."""
    assert kpis.repeat_calls_by_intent(day, PERIOD) == [
        {"intent": "ask_payment_dates", "calls": 1, "repeated_7d": 1, "repeat_rate": 1.0},
        {"intent": "payment_problem", "calls": 1, "repeated_7d": 0, "repeat_rate": 0.0},
        {"intent": "request_human", "calls": 1, "repeated_7d": 0, "repeat_rate": 0.0},
    ]


def test_average_handling_time_against_the_baseline(day):
    # assistant: C1 120 s, C2 90 s (to the handoff), C3 30 s, C4 20 s -> 65 s; experts: C2 240 s, C3 60 s -> 75 s
    assert kpis.handling_time(day, PERIOD, baseline_s=280.0) == {
        "calls": 4, "calls_with_expert_time": 2, "assistant_s": 65.0, "human_s": 75.0, "aht_s": 140.0,
        "baseline_s": 280.0, "vs_baseline": -0.5,
    }  # fmt: skip


def test_asr_confidence_fallbacks_and_latency(day):
    assert kpis.turn_quality(day, PERIOD) == {
        "speech_turns": 4, "asr_confidence_mean": 0.7, "asr_low_confidence_rate": 0.25, "fallback_rate": 0.25,
        "clarify_or_confirm_rate": 0.0, "response_ms_p50": 200.0, "response_ms_p95": 400.0,
    }  # fmt: skip


def test_an_empty_period_gives_no_numbers_rather_than_errors(day):
    empty = kpis.Period(T - timedelta(days=30), T - timedelta(days=29))
    summary = kpis.summary(day, empty, baseline_aht_s=300.0)
    assert summary["outcomes"]["calls"] == 0 and summary["outcomes"]["containment"] is None
    assert summary["handling_time"]["aht_s"] is None and summary["turns"]["response_ms_p95"] is None


def test_one_period_parser_for_the_api_the_cli_and_the_dashboard():
    period = kpis.period_of("2026-11-01", "2026-11-07")
    assert (period.start.isoformat(), period.end.isoformat()) == (
        "2026-11-01T00:00:00+00:00",
        "2026-11-08T00:00:00+00:00",
    )
    assert kpis.period_fields(period) == {"start": "2026-11-01", "end": "2026-11-07"}  # both days included
    last_week = kpis.period_of(None, None)
    assert last_week.end - last_week.start == timedelta(days=7) and last_week.end > datetime.now(UTC)
    assert kpis.period_of(None, "2026-11-07").start.date().isoformat() == "2026-11-01"
    for start, end in (("yesterday", None), ("2026-11-08", "2026-11-01"), ("2025-01-01", "2026-11-01")):
        with pytest.raises(ValueError, match="YYYY-MM-DD|runs forward"):
            kpis.period_of(start, end)


STOCKHOLM = ZoneInfo("Europe/Stockholm")


def test_a_period_is_whole_days_of_the_agency_stored_in_utc():
    winter = kpis.period_of("2026-11-01", "2026-11-07", zone=STOCKHOLM)
    assert (winter.start.isoformat(), winter.end.isoformat()) == (
        "2026-10-31T23:00:00+00:00",  # midnight in Stockholm (CET, UTC+1)
        "2026-11-07T23:00:00+00:00",
    )
    assert kpis.period_fields(winter) == {"start": "2026-11-01", "end": "2026-11-07"}
    summer = kpis.period_of("2026-07-01", "2026-07-01", zone=STOCKHOLM)
    assert summer.start.isoformat() == "2026-06-30T22:00:00+00:00"  # CEST, UTC+2


def test_calls_per_hour_and_day_are_the_agencys_hours_and_days(day):
    local = kpis.Period(PERIOD.start, PERIOD.end, zone=STOCKHOLM)
    assert kpis.calls_per(day, local, "hour") == [
        {"bucket": "2026-11-24 10:00", "calls": 2},  # 09:00 UTC is 10:00 in Stockholm in November
        {"bucket": "2026-11-25 11:00", "calls": 1},
        {"bucket": "2026-11-25 12:00", "calls": 1},
    ]
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 00:30 on the 26th in Stockholm
    day.add(Call(call_sid="CAlate", caller="+46***", caller_key="k", started_at=late, status="ended"))
    day.commit()
    assert kpis.calls_per(day, local, "day")[-1] == {"bucket": "2026-11-26", "calls": 1}
    assert kpis.calls_per(day, PERIOD, "day")[-1] == {"bucket": "2026-11-25", "calls": 3}  # UTC days


def test_the_share_of_frustrated_callers_and_negative_turns(store_url):
    store = CallStore.open(store_url)
    moods = {"M1": True, "M2": False, "M3": None}  # M3: a call recorded before moods were kept
    for n, (sid, frustrated) in enumerate(moods.items()):
        start = T + timedelta(hours=9, minutes=n)
        label = "negative" if frustrated else "neutral"
        turn = {**_turn(1, "answer:payment_dates", "ask_payment_dates"), "sentiment": {"score": 0, "label": label}}
        store.call_started(sid, "+46******00", sid, start, worker="w")
        mood = None if frustrated is None else {"frustrated": frustrated, "lowest_score": 0, "negative_turns": 0,
                                                "signals": []}  # fmt: skip
        store.call_ended({"call_sid": sid, "caller": "+46******00", "started_at": start.isoformat(),
                          "outcome": "answered:payment_dates", "ended_at": start.isoformat(), "turns": [turn],
                          "mood": mood})  # fmt: skip
    expected = {"calls_with_mood": 2, "frustrated": 1, "frustrated_rate": 0.5, "negative_turn_rate": 0.3333}
    try:
        with store.sessions() as db:
            assert kpis.caller_mood(db, PERIOD) == expected
        # The retention purge removes what was said; the mood's figures stay.
        for sid in moods:
            assert purge_call(store, sid, T + timedelta(days=100))
        with store.sessions() as db:
            assert kpis.caller_mood(db, PERIOD) == expected
    finally:
        store.close()
