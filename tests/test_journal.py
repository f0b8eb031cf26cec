"""The call store's write-behind journal as typed operations: written, stored in order, and replayed after a crash
(also lines an earlier version wrote)."""

import json

import pytest

from analytics.journal import CallStarted, JournalEntryInvalid, TaskEventAdded, TurnSaved, parse
from analytics.store import CallStore
from analytics.writer import StoreWriter


@pytest.fixture
def store(tmp_path):
    store = CallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    yield store
    store.close()


async def test_typed_writes_are_journaled_then_stored_in_order(store, tmp_path):
    journal = tmp_path / "journal.jsonl"
    writer = StoreWriter(store, journal)
    writer.start()
    writer.put(CallStarted("CA1", "+46*******67", "key", "2026-11-25T10:00:00+00:00", "gw:1"))
    writer.put(TurnSaved("CA1", {"index": 1, "input": "speech", "transcript": "I want to appeal"}))
    writer.put(TaskEventAdded("CA1", "appeals", "redirect_queue", "gateway"))
    assert [json.loads(line)["op"] for line in journal.read_text().splitlines()] == [
        "call_started", "save_turn", "add_task_event"
    ]  # fmt: skip
    assert await writer.drain(10)
    await writer.stop()
    assert store.call("CA1").worker == "gw:1" and len(store.turns("CA1")) == 1
    assert [e.kind for e in store.task_events("CA1")] == ["redirect_queue"]
    assert journal.read_text() == ""  # all stored


async def test_a_journal_left_by_a_crash_is_replayed_whatever_version_wrote_it(store, tmp_path):
    journal = tmp_path / "journal.jsonl"
    lines = [
        json.dumps({"op": "call_started", "args": ["CA2", "+46*******11", "k2", "2026-11-25T11:00:00+00:00", "gw:2"],
                    "kwargs": {}}),  # an earlier version's line
        json.dumps(TurnSaved("CA2", {"index": 1, "input": "keypad", "transcript": "[key 1]"}).line()),
        json.dumps({"op": "drop_table", "args": ["calls"], "kwargs": {}}),  # never applied
        '{"op": "save_turn", "fields": {"call_sid": "CA2"',  # the last line of a gateway killed while writing it
    ]  # fmt: skip
    journal.write_text("\n".join(lines) + "\n")
    writer = StoreWriter(store, journal)
    writer.start()
    assert writer.replayed == 2
    assert await writer.drain(10)
    await writer.stop()
    assert store.call("CA2").worker == "gw:2" and len(store.turns("CA2")) == 1


def test_a_line_that_is_no_store_write_is_refused():
    for entry in ({"op": "drop_table"}, ["call_started"], {"op": "save_turn", "fields": {"call_sid": "CA"}}):
        with pytest.raises(JournalEntryInvalid):
            parse(entry)
