"""The assistant's answers judged by what the caller did next, in SQL on SQLite and the real PostgreSQL server."""

from datetime import timedelta

from analytics import quality
from analytics.store import CallStore
from tests.test_kpis import PERIOD, T, _call, _turn

GOODBYE = ("smalltalk:goodbye", "goodbye")
PAYMENT_DATES = ("answer:payment_dates", "ask_payment_dates")


def _calls(store_url):  # type: ignore[no-untyped-def]
    store = CallStore.open(store_url)
    calls = {
        "Q1": [PAYMENT_DATES, GOODBYE],  # accepted
        "Q2": [PAYMENT_DATES, PAYMENT_DATES, GOODBYE],  # the same question again, then accepted
        "Q3": [PAYMENT_DATES, ("route:general", "request_human")],  # a person
        "Q4": [("answer:opening_hours", "ask_opening_hours")],  # hung up after the answer
        "Q5": [("answer:opening_hours", "ask_opening_hours"), PAYMENT_DATES, ("smalltalk:thanks", "thanks")],
        "Q6": [("answer:login_help", "ask_login_help"), ("clarify:rephrase", "nlu_fallback")],
    }
    for n, (sid, turns) in enumerate(calls.items()):
        rows = [_turn(i, decision, intent) for i, (decision, intent) in enumerate(turns, 1)]
        _call(store, sid, sid, T + timedelta(hours=9, minutes=n), rows, "answered:x")
    # A call still in progress: its answer has no "next" yet, so it is not judged.
    store.call_started("Q7", "+46***", "Q7", T + timedelta(hours=10), worker="w")
    store.save_turn("Q7", _turn(1, "answer:login_help", "ask_login_help"))
    return store


def test_each_topics_answers_by_what_the_caller_did_next(store_url):  # type: ignore[no-untyped-def]
    store = _calls(store_url)
    try:
        with store.sessions() as db:
            rows = quality.answer_quality(db, PERIOD)
    finally:
        store.close()
    assert [(r["topic"], r["answers"]) for r in rows] == [("payment_dates", 5), ("opening_hours", 2), ("login_help", 1)]
    dates, hours, login = rows
    assert (dates["accepted"], dates["asked_again"], dates["person"], dates["hung_up"]) == (3, 1, 1, 0)
    assert dates["accepted_rate"] == 0.6 and dates["not_helped_rate"] == 0.4
    assert dates["examples"] == {"asked_again": ["Q2"], "person": ["Q3"]}
    assert (hours["accepted"], hours["hung_up"], hours["examples"]) == (1, 1, {"hung_up": ["Q4"]})
    assert (login["other"], login["answers"], login["examples"]) == (1, 1, {"other": ["Q6"]})


def test_a_period_without_answers_is_an_empty_list(store_url):  # type: ignore[no-untyped-def]
    store = _calls(store_url)
    try:
        with store.sessions() as db:
            assert quality.answer_quality(db, type(PERIOD)(T - timedelta(days=9), T - timedelta(days=8))) == []
    finally:
        store.close()
