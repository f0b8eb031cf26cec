"""The supervisors' live view read from the call store, on SQLite and the real PostgreSQL server: calls in progress,
calls waiting per queue, and each alert rule raised by exactly the calls it is about."""

from datetime import timedelta

from analytics import live
from analytics.store import CallStore
from tests.test_kpis import T, _call, _turn

NOW = T + timedelta(hours=10)
RULES = live.LiveRules(urgent_intents=frozenset({"distress"}), long_call_s=300)


def _ongoing(store, sid, key, ago, turns=()):  # type: ignore[no-untyped-def]
    store.call_started(sid, "+46******00", key, NOW - ago, worker="w")
    for turn in turns:
        store.save_turn(sid, turn)


def _line(store_url):  # type: ignore[no-untyped-def]
    store = CallStore.open(store_url)
    _ongoing(store, "L1", "a", timedelta(minutes=2), [_turn(1, "answer:payment_dates", "ask_payment_dates")])
    _ongoing(store, "L2", "b", timedelta(minutes=10), [_turn(1, "clarify:rephrase", "nlu_fallback")])
    _ongoing(store, "L3", "c", timedelta(minutes=3), [_turn(1, "route:payments_debt", "payment_problem")])
    store.save_handoff("L3", {"queue": "payments_debt", "handed_off_at": (NOW - timedelta(minutes=1)).isoformat()})
    taken = NOW - timedelta(minutes=25)
    _call(store, "L4", "d", taken, [], "routed:sickness", handoff_after_s=60, queue="sickness")
    store.add_task_event("L4", "sickness", "accepted", "taskrouter", at=taken + timedelta(minutes=2), task_sid="WT4")
    _call(store, "L5", "e", NOW - timedelta(minutes=6), [], "routed:sickness", handoff_after_s=60, queue="sickness")
    for n, days in enumerate((2, 1)):
        _call(store, f"R{n}", "r", NOW - timedelta(days=days), [], "abandoned")
    _ongoing(store, "L6", "r", timedelta(seconds=30))
    _call(store, "L7", "f", NOW - timedelta(minutes=30), [], "failed")
    _ongoing(store, "L8", "g", timedelta(minutes=1), [_turn(1, "route:general", "distress")])
    _ongoing(store, "OLD", "h", timedelta(hours=8))  # a record its gateway never closed
    return store


def test_calls_in_progress_with_state_topic_and_time(store_url):  # type: ignore[no-untyped-def]
    store = _line(store_url)
    try:
        with store.sessions() as db:
            calls = live.in_progress(db, NOW)
    finally:
        store.close()
    by_sid = {c["call_sid"]: c for c in calls}
    assert list(by_sid) == ["L2", "L3", "L1", "L8", "L6"], "longest in the call first; the stale record left out"
    assert (by_sid["L1"]["state"], by_sid["L1"]["topic"], by_sid["L1"]["seconds"]) == (
        "with the assistant",
        "payment_dates",
        120,
    )
    assert by_sid["L3"]["state"] == "being put through to payments_debt" and not by_sid["L3"]["in_assistant"]
    assert by_sid["L2"]["topic"] == "nlu_fallback" and by_sid["L6"]["turns"] == 0


def test_calls_waiting_per_queue(store_url):  # type: ignore[no-untyped-def]
    store = _line(store_url)
    try:
        with store.sessions() as db:
            assert live.waiting(db, NOW) == [
                {"queue": "payments_debt", "calls": 1, "longest_s": 60},
                {"queue": "sickness", "calls": 1, "longest_s": 300},  # L4 was taken by an expert
            ]
    finally:
        store.close()


def test_each_alert_rule_names_its_calls(store_url):  # type: ignore[no-untyped-def]
    store = _line(store_url)
    try:
        with store.sessions() as db:
            raised = live.alerts(db, NOW, RULES, live.in_progress(db, NOW))
    finally:
        store.close()
    assert [(a["kind"], a["call_sid"]) for a in raised] == [
        ("urgent", "L8"),
        ("fault", "L7"),
        ("repeat", "L6"),
        ("long", "L2"),
    ]
    assert raised[2]["text"] == "call 3 from this number in 7 days"
    assert raised[3]["text"] == "in the assistant for 10:00 (longer than 5:00)"


def test_a_quiet_line_is_empty_lists(store_url):  # type: ignore[no-untyped-def]
    store = CallStore.open(store_url)
    try:
        with store.sessions() as db:
            assert live.snapshot(db, NOW, RULES) == {"calls": [], "waiting": [], "alerts": [], "now": NOW}
    finally:
        store.close()
