"""The access audit on SQLite and the real PostgreSQL: every view is written with who, what, when and from where;
the trail reads newest first, by user or by call; a view that cannot be recorded is refused, not shown."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.audit import Access, AuditUnavailable, access_trail, record_access
from analytics.store import CallStore
from helpline.machine import free_port

T = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_views_are_recorded_and_read_back_newest_first_by_user_or_call(store):
    record_access(store, Access("sara", "supervisor", "call_detail", "10.0.0.7", "CA1"), at=T)
    export = Access("sara", "supervisor", "csv_export", "10.0.0.7", subject="2026-12-01..2026-12-03")
    record_access(store, export, at=T + timedelta(minutes=1))
    record_access(store, Access("adam", "agent", "packet", "10.0.0.9", "CA1"), at=T + timedelta(minutes=2))

    total, events = access_trail(store)
    assert total == 3
    assert [(e.username, e.action, e.call_sid, e.address) for e in events] == [
        ("adam", "packet", "CA1", "10.0.0.9"),
        ("sara", "csv_export", None, "10.0.0.7"),
        ("sara", "call_detail", "CA1", "10.0.0.7"),
    ]
    assert events[0].at.replace(tzinfo=events[0].at.tzinfo or UTC) == T + timedelta(minutes=2)
    assert [e.action for e in access_trail(store, username="sara")[1]] == ["csv_export", "call_detail"]
    assert [e.username for e in access_trail(store, call_sid="CA1")[1]] == ["adam", "sara"]
    assert access_trail(store, username="nobody") == (0, [])
    total, page = access_trail(store, limit=2, offset=2)
    assert total == 3 and [e.action for e in page] == ["call_detail"]


def test_a_search_for_a_personal_number_is_kept_redacted(store):
    record_access(store, Access("sara", "supervisor", "call_list", "10.0.0.7", subject="q=19811218-9876"))
    [event] = access_trail(store)[1]
    assert "19811218-9876" not in event.subject and "[personnummer]" in event.subject


def test_an_unknown_action_is_a_programming_error(store):
    with pytest.raises(ValueError, match="unknown audited action"):
        record_access(store, Access("sara", "supervisor", "peek", "10.0.0.7"))


def test_a_view_that_cannot_be_recorded_raises_so_it_is_not_shown():
    unreachable = CallStore.open(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", upgrade=False)
    try:
        with pytest.raises(AuditUnavailable):
            record_access(unreachable, Access("sara", "supervisor", "call_detail", "10.0.0.7", "CA1"))
    finally:
        unreachable.close()
