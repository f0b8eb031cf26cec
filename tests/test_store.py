"""The call store and logins, against SQLite and a real PostgreSQL server."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from analytics.auth import Accounts, LoginFailed, hash_password, verify_password
from analytics.store import CallStore


def test_migrations_create_the_schema_and_run_twice(store_url):
    first = CallStore.open(store_url)
    CallStore.open(store_url).close()  # a second start finds the schema current
    tables = set(inspect(first.engine).get_table_names())
    assert {"calls", "task_events", "users", "web_sessions", "alembic_version"} <= tables
    first.close()


def test_repeat_callers_are_counted_within_seven_days(store):
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    store.call_started("CA-old", "+46******67", "key-a", now - timedelta(days=8))
    store.call_started("CA-recent", "+46******67", "key-a", now - timedelta(days=2))
    store.call_started("CA-other", "+46******11", "key-b", now - timedelta(days=1))
    store.call_started("CA-now", "+46******67", "key-a", now)
    assert store.previous_calls("key-a", "CA-now", now) == 1
    assert store.previous_calls("key-b", "CA-x", now) == 1
    assert store.previous_calls("", "CA-now", now) == 0  # a withheld number is never a repeat caller


def test_call_end_and_packet_are_kept(store):
    store.call_started("CA1", "+46******67", "k", "2026-11-25T10:00:00+00:00")
    packet = {"queue": "appeals", "handed_off_at": "2026-11-25T10:01:00+00:00", "summary": "About appealing."}
    store.save_handoff("CA1", packet)
    store.call_ended(
        {"call_sid": "CA1", "caller": "+46******67", "started_at": "2026-11-25T10:00:00+00:00",
         "ended_at": "2026-11-25T10:01:05+00:00", "outcome": "routed:appeals", "handoff": {"queue": "appeals"}}
    )  # fmt: skip
    call = store.call("CA1")
    assert call.outcome == "routed:appeals" and call.queue == "appeals" and call.packet == packet
    assert [c.call_sid for c in store.routed_calls()] == ["CA1"]


def test_handling_time_per_call_and_per_queue(store):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    for call, queue, task, seconds in (
        ("CA1", "appeals", "WT1", 300),
        ("CA2", "appeals", "WT2", 100),
        ("CA3", "fraud", None, 60),
    ):
        if task:
            store.add_task_event(call, queue, "created", "taskrouter", at=t0, task_sid=task)
            store.add_task_event(call, queue, "accepted", "taskrouter", at=t0 + timedelta(seconds=20), task_sid=task)
            done = store.add_task_event(
                call, queue, "completed", "taskrouter", at=t0 + timedelta(seconds=20 + seconds), task_sid=task
            )
            assert done.handled_s == seconds
        else:
            store.add_task_event(call, queue, "completed", "dial", at=t0, handled_s=seconds)
    assert store.handling_by_queue() == [
        {"queue": "appeals", "calls": 2, "mean_s": 200.0, "total_s": 400.0},
        {"queue": "fraud", "calls": 1, "mean_s": 60.0, "total_s": 60.0},
    ]
    assert [e.kind for e in store.task_events("CA1")] == ["created", "accepted", "completed"]


def test_passwords_are_hashed_and_checked():
    stored = hash_password("correct horse battery")
    assert "correct" not in stored and stored.startswith("scrypt$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("anything", "not-a-hash")


def test_login_sessions_expire_and_lock_out(store):
    accounts = Accounts(store, session_ttl=timedelta(seconds=60), max_failures=3, lockout=timedelta(minutes=5))
    accounts.add_user("anna", "agent", "a long passphrase")
    with pytest.raises(ValueError, match="at least"):
        accounts.add_user("bo", "agent", "short")
    with pytest.raises(ValueError, match="unknown role"):
        accounts.add_user("bo", "janitor", "a long passphrase")
    with pytest.raises(ValueError, match="exists"):
        accounts.add_user("anna", "admin", "a long passphrase")
    token, user = accounts.login("anna", "a long passphrase")
    assert user.role == "agent" and accounts.session(token).username == "anna"
    assert accounts.session("forged-token") is None
    accounts.logout(token)
    assert accounts.session(token) is None
    for _ in range(3):
        with pytest.raises(LoginFailed, match="wrong user name or password"):
            accounts.login("anna", "wrong passphrase!")
    with pytest.raises(LoginFailed, match="locked"):
        accounts.login("anna", "a long passphrase")  # even the right password, while locked
    expired = Accounts(store, session_ttl=timedelta(seconds=-1))
    accounts.add_user("carl", "supervisor", "another passphrase")
    token, _ = expired.login("carl", "another passphrase")
    assert expired.session(token) is None


def test_turns_are_written_as_they_happen_and_a_dead_gateways_calls_are_marked(store):
    store.call_started("CA-a", "+46******67", "k", "2026-11-25T10:00:00+00:00", worker="gw-1:8080")
    store.call_started("CA-b", "+46******67", "k", "2026-11-25T10:00:00+00:00", worker="gw-1:8080")
    store.call_started("CA-c", "+46******11", "k2", "2026-11-25T10:00:00+00:00", worker="gw-2:8080")
    turn = {"index": 1, "input": "speech", "transcript": "when is it paid", "intent": "ask_payment_dates",
            "nlu_confidence": 0.97, "decision": "answer:payment_dates", "asr_confidence": 0.9}  # fmt: skip
    store.save_turn("CA-a", turn)
    store.save_turn("CA-a", turn | {"response_ms": 640.0})  # the same turn, rewritten when it changed
    store.save_handoff("CA-b", {"queue": "appeals", "handed_off_at": "2026-11-25T10:01:00+00:00"})
    assert store.mark_interrupted("gw-1:8080") == 2
    a, b, c = store.call("CA-a"), store.call("CA-b"), store.call("CA-c")
    assert (a.status, a.outcome) == ("interrupted", "failed")
    assert (b.status, b.outcome) == ("interrupted", "routed:appeals")  # the caller had already reached a person
    assert c.status == "in_progress"  # another gateway's call is not touched
    [saved] = store.turns("CA-a")
    assert saved.decision == "answer:payment_dates" and saved.response_ms == 640.0
    assert store.mark_interrupted("gw-1:8080") == 0


def test_a_call_whose_gateway_died_before_any_write_is_recorded_and_filled_in_later(store):
    # Twilio's redirect reached another gateway; nothing of the call was stored: it is recorded from Twilio's word.
    assert store.stream_lost("CA-lost", "routed:general", "+46*******67", "key-1") is True
    lost = store.call("CA-lost")
    assert (lost.status, lost.outcome, lost.worker) == ("interrupted", "routed:general", "")
    assert lost.caller == "+46*******67"
    assert store.stream_lost("CA-lost", "routed:general") is False  # settled once
    # The dead gateway's journal, replayed when it restarts, gives the call its real start and its gateway.
    store.call_started("CA-lost", "+46*******67", "key-1", "2026-11-25T10:00:00+00:00", worker="gw-2:8081")
    store.save_turn("CA-lost", {"index": 1, "input": "speech", "transcript": "I want to appeal"})
    lost = store.call("CA-lost")
    assert lost.worker == "gw-2:8081" and lost.started_at.replace(tzinfo=UTC) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert (lost.status, lost.outcome) == ("interrupted", "routed:general") and len(store.turns("CA-lost")) == 1
    # A call that its own gateway started is never rewritten by a late or repeated start.
    store.call_started("CA-lost", "+46*******11", "key-2", "2026-11-25T11:00:00+00:00", worker="gw-1:8080")
    assert store.call("CA-lost").worker == "gw-2:8081"


def test_a_finished_call_is_moved_to_another_day_whole(store):  # type: ignore[no-untyped-def]
    """`helpline seed-demo --days` spreads the calls it placed over past days: every time of the call moves."""
    from datetime import UTC, datetime, timedelta

    from foundation.plain_words import as_utc  # SQLite gives naive UTC back

    start = datetime(2026, 12, 4, 10, tzinfo=UTC)
    store.call_started("CAmove", "+46******00", "k", start, worker="w")
    store.save_turn("CAmove", {"index": 1, "input": "speech", "transcript": "hello", "decision": "route:general"})
    store.save_handoff("CAmove", {"queue": "general", "handed_off_at": (start + timedelta(seconds=30)).isoformat()})
    store.add_task_event("CAmove", "general", "accepted", "taskrouter", at=start + timedelta(minutes=1))
    store.call_ended({"call_sid": "CAmove", "caller": "+46******00", "started_at": start.isoformat(),
                      "ended_at": (start + timedelta(minutes=2)).isoformat(), "outcome": "routed:general",
                      "turns": [], "handoff": {"queue": "general"}})  # fmt: skip
    written = [as_utc(t.at) for t in store.turns("CAmove")]  # when the turn was written: now
    store.move_call("CAmove", -timedelta(days=3))
    call = store.call("CAmove")
    back = timedelta(days=3)
    assert as_utc(call.started_at) == start - back and as_utc(call.ended_at) == start + timedelta(minutes=2) - back
    assert as_utc(call.handed_off_at) == start + timedelta(seconds=30) - back
    assert call.record["started_at"].startswith("2026-12-01T10:00")
    assert call.packet["handed_off_at"].startswith("2026-12-01T10:00:30")
    assert [as_utc(e.at) for e in store.task_events("CAmove")] == [start + timedelta(minutes=1) - back]
    assert [as_utc(t.at) for t in store.turns("CAmove")] == [at - back for at in written]
