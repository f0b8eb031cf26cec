"""Call drivers on SQLite and PostgreSQL, grouped by the NLU's own sentence encoder: new reasons for calling in the
turns the assistant did not understand, named by their telling words and counted per week; a lone turn is not one."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics import drivers, kpis
from analytics.store import CallStore

MONDAY = datetime(2026, 11, 16, 9, tzinfo=UTC)
PERIOD = kpis.Period(MONDAY.replace(hour=0), MONDAY.replace(hour=0) + timedelta(days=14))
NEW_REASONS = {
    # A rent rise that changes the housing allowance: no intent for it yet.
    "rent": ["my landlord raised the rent this month", "the rent went up and my landlord sent a new contract",
             "my rent was increased by the landlord in january"],
    # The agency's app crashing when a document is uploaded.
    "app": ["the app crashes when i upload my certificate", "your app keeps crashing on the upload page"],
}  # fmt: skip
LONE = "my dog ate the letter"


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from nlu.sentence_encoder import SentenceEncoder

    return SentenceEncoder()


def _store(store_url):  # type: ignore[no-untyped-def]
    store = CallStore.open(store_url)
    said = [*NEW_REASONS["rent"], *NEW_REASONS["app"], LONE]
    for n, text in enumerate(said):
        sid = f"D{n}"
        start = MONDAY + timedelta(days=7 * (n % 2), hours=n)  # alternate weeks
        store.call_started(sid, "+46******00", sid, start, worker="w")
        turn = {"index": 1, "input": "speech", "transcript": text, "asr_confidence": 0.9, "intent": "nlu_fallback",
                "nlu_confidence": 0.3, "decision": "clarify:rephrase"}  # fmt: skip
        store.save_turn(sid, turn)
    return store


def test_new_reasons_are_grouped_named_and_counted_per_week(store_url, encoder):  # type: ignore[no-untyped-def]
    store = _store(store_url)
    try:
        with store.sessions() as db:
            found = drivers.call_drivers(db, PERIOD, encoder.encode)
    finally:
        store.close()
    assert found["turns"] == 6 and found["singles"] == 1 and found["weeks"] == ["2026-11-16", "2026-11-23"]
    rent, app = found["drivers"]
    assert (rent["turns"], app["turns"]) == (3, 2)
    assert "rent" in rent["name"] and "landlord" in rent["name"], rent["name"]
    assert "app" in app["name"], app["name"]
    assert [w["turns"] for w in rent["weeks"]] == [2, 1] and [w["turns"] for w in app["weeks"]] == [1, 1]
    assert rent["reasons"] == {"not_understood": 3} and len(rent["examples"]) == 3
    assert {e["text"] for e in rent["examples"]} == set(NEW_REASONS["rent"])


def test_a_period_without_such_turns_has_no_drivers(store_url, encoder):  # type: ignore[no-untyped-def]
    store = _store(store_url)
    try:
        with store.sessions() as db:
            empty = kpis.Period(PERIOD.start - timedelta(days=30), PERIOD.start - timedelta(days=20))
            assert drivers.call_drivers(db, empty, encoder.encode)["drivers"] == []
    finally:
        store.close()
