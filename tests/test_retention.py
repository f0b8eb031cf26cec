"""Retention on SQLite and the real PostgreSQL: what callers said goes once past its time, one transaction per call
(a purge that fails midway leaves no half-removed call, and the next run finishes it); the KPIs of the old period
are the same before and after. Rasa's real tracker store is purged in tests/test_scale_out.py."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from analytics import kpis
from analytics.audit import Access, access_trail, record_access
from analytics.retention import purge, purge_conversations, tracker_databases
from analytics.store import CallStore
from foundation.settings import RetentionSettings, Settings
from helpline.daily_purge import DailyPurge
from helpline.machine import free_port
from voice.codecs import mulaw_wav

T = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
NOW = T + timedelta(days=95)  # the calls of T are past the 90 days; those of T + 80 days are not
OLD_PERIOD = kpis.Period(T, T + timedelta(days=1))


def _call(store: CallStore, sid: str, start: datetime, ended: bool = True, spool: Path | None = None) -> None:
    turn = {"index": 1, "input": "speech", "transcript": f"my housing allowance is wrong ({sid})",
            "asr_confidence": 0.8, "intent": "housing_problem", "nlu_confidence": 0.9, "decision": "route:housing",
            "response_ms": 500.0}  # fmt: skip
    store.call_started(sid, "+46******12", f"key-{sid}", start, worker="w")
    store.save_turn(sid, turn)
    if not ended:
        return
    store.save_handoff(sid, {"queue": "housing", "handed_off_at": (start + timedelta(seconds=30)).isoformat(),
                             "transcript": [{"turn": 1, "text": turn["transcript"]}]})  # fmt: skip
    store.add_task_event(sid, "housing", "accepted", "taskrouter", at=start + timedelta(minutes=1), task_sid="WT" + sid,
                         details={"summary": turn["transcript"]})  # fmt: skip
    store.call_ended({"call_sid": sid, "caller": "+46******12", "started_at": start.isoformat(), "outcome":
                      "routed:housing", "ended_at": (start + timedelta(minutes=2)).isoformat(), "turns": [turn],
                      "handoff": {"queue": "housing"}})  # fmt: skip
    if spool is not None:  # the gateway leaves the recording in its data directory; the store takes it in
        wav = spool / f"{sid}.wav"
        wav.write_bytes(mulaw_wav(b"\x10\xff" * 800, 2))
        store.save_recording(sid, str(wav), 0.1, 1)
        assert not wav.exists()


@pytest.fixture
def store(store_url, tmp_path):
    store = CallStore.open(store_url)
    for n in range(3):
        _call(store, f"CAold{n}", T + timedelta(minutes=n), spool=tmp_path)
    _call(store, "CAopen", T + timedelta(minutes=5), ended=False)  # a gateway still holds it: never touched
    _call(store, "CArecent", T + timedelta(days=80), spool=tmp_path)
    yield store
    store.close()


def _kpis(store: CallStore) -> dict:
    with store.sessions() as db:
        return kpis.summary(db, OLD_PERIOD, baseline_aht_s=300.0)


def _content_kept(store: CallStore, sid: str) -> bool:
    call = store.call(sid)
    said = any(t.transcript or t.details for t in store.turns(sid))
    return bool(call.record or call.packet or call.caller or said or store.recording_facts(sid) is not None)


def test_what_callers_said_goes_after_its_time_and_the_figures_stay(store):
    before = _kpis(store)
    report = purge(store, [], RetentionSettings(), now=NOW)
    assert (report.calls, report.error) == (3, "")
    for n in range(3):
        sid = f"CAold{n}"
        call, [turn] = store.call(sid), store.turns(sid)
        assert call.purged_at is not None and not _content_kept(store, sid)
        assert all(e.details is None for e in store.task_events(sid))
        # What the KPIs count stays.
        assert (call.outcome, call.queue, call.status) == ("routed:housing", "housing", "ended")
        assert (turn.intent, turn.decision, turn.asr_confidence, turn.response_ms) == (
            "housing_problem", "route:housing", 0.8, 500.0)  # fmt: skip
    assert _content_kept(store, "CArecent") and _content_kept(store, "CAopen")
    assert store.recording("CArecent") is not None and store.recording("CAold0") is None
    assert _kpis(store) == before
    assert purge(store, [], RetentionSettings(), now=NOW).calls == 0  # nothing left to do


def test_a_purge_that_fails_midway_leaves_no_half_removed_call_and_the_next_run_finishes(store):
    def fail_on_the_second_call(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("UPDATE TASK_EVENTS") and "CAold1" in str(parameters):
            raise OperationalError(statement, parameters, ConnectionError("the database went away"))

    event.listen(store.engine, "before_cursor_execute", fail_on_the_second_call)
    try:
        stopped = purge(store, [], RetentionSettings(), now=NOW)
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_on_the_second_call)
    assert stopped.calls == 1 and "the database went away" in stopped.error
    assert "retried next run" in str(stopped)
    assert not _content_kept(store, "CAold0")
    # The failing call's turns were blanked in the same transaction before the failure: all of it rolled back.
    assert _content_kept(store, "CAold1") and store.call("CAold1").purged_at is None
    assert store.turns("CAold1")[0].transcript.startswith("my housing allowance")
    assert _content_kept(store, "CAold2")
    report = purge(store, [], RetentionSettings(), now=NOW)
    assert report.calls == 2 and not any(_content_kept(store, f"CAold{n}") for n in range(3))


def test_the_access_trail_is_kept_longer_than_what_it_audits(store):
    record_access(store, Access("sara", "supervisor", "call_detail", "10.0.0.7", "CAold0"), at=T)
    record_access(store, Access("sara", "supervisor", "call_detail", "10.0.0.7", "CAold1"), at=NOW - timedelta(days=1))
    assert purge(store, [], RetentionSettings(), now=NOW).access_events == 0  # 95 days: well inside 730
    report = purge(store, [], RetentionSettings(), now=T + timedelta(days=731))
    assert report.access_events == 1 and [e.call_sid for e in access_trail(store)[1]] == ["CAold1"]


def test_conversations_past_their_time_go_whole(tmp_path):
    """Rasa's SQLTrackerStore table, as Rasa 3.6 creates it (the real server's is purged in test_scale_out)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rasa-trackers-5005.db'}")
    with engine.begin() as db:
        db.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name "
                        "VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), "
                        "data TEXT)"))  # fmt: skip
        rows = [("CAold", T), ("CAold", T + timedelta(minutes=2)), ("CAlong", T), ("CAlong", NOW - timedelta(days=1))]
        for sender, at in rows:
            db.execute(text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, 'user', :t, '{}')"),
                       {"s": sender, "t": at.timestamp()})  # fmt: skip
    assert purge_conversations(engine, NOW - timedelta(days=90)) == 1
    with engine.connect() as db:
        left = db.execute(text("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id")).all()
    assert left == [("CAlong", 2)]  # a conversation that went on recently is kept whole
    settings = Settings(data_dir=tmp_path)
    assert tracker_databases(settings) == [f"sqlite:///{tmp_path / 'rasa-trackers-5005.db'}"]
    shared = Settings(rasa={"tracker_store_url": "postgresql://rasa@db:5432/trackers"})
    assert tracker_databases(shared) == ["postgresql+psycopg://rasa@db:5432/trackers"]
    engine.dispose()


def _helpline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helpline.cli", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", **env})  # fmt: skip


def test_helpline_purge_reports_what_it_removed_and_fails_clearly_when_the_store_is_unreachable(tmp_path):
    done = _helpline("purge", HELPLINE_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "purge: removed what was said in 0 calls, 0 Rasa conversations and 0 access-audit entries" in done.stdout
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    failed = _helpline("purge", HELPLINE_DATA_DIR=str(tmp_path), HELPLINE_DATABASE_URL=down)
    assert failed.returncode == 1 and "cannot open the call store" in failed.stdout + failed.stderr


def test_the_daily_purge_runs_at_start_then_again_and_stops_when_told(tmp_path):
    settings = Settings(data_dir=tmp_path, retention={"every_hours": 0.0001})  # every 0.36 s
    purger = DailyPurge(settings).start()
    try:
        for _ in range(600):
            if purger.runs >= 2:
                break
            time.sleep(0.05)
    finally:
        purger.stop()
    assert purger.runs >= 2
    stopped_at = purger.runs
    time.sleep(0.5)
    assert purger.runs == stopped_at  # stopped means stopped


def test_a_recording_stored_once_is_not_lost_when_its_journal_line_is_replayed(store, tmp_path):
    """The gateway's writer applies a journal line again after a crash: the file is gone, the row stays."""
    wav = tmp_path / "again.wav"
    wav.write_bytes(mulaw_wav(b"\x10\xff" * 80, 2))
    store.save_recording("CArecent", str(wav), 0.01, 0)
    stored = store.recording("CArecent")
    store.save_recording("CArecent", str(wav), 0.01, 0)  # replayed: nothing there, nothing changed
    assert store.recording("CArecent") == stored and store.recording_facts("CArecent") == (0.01, 0)
