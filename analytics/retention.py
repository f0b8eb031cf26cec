"""Retention: what callers said is kept for a set time (RetentionSettings), then removed from the call store and from
Rasa's tracker store; what the KPIs count (outcome, queue, intent, decision, confidences, times) stays, so every
figure of an old period can still be computed. Each call, and each conversation, is removed in one transaction: a purge
that fails midway leaves no half-removed call, and what it did not reach is removed by the next run."""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, create_engine, delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from analytics.models import AccessEvent, Call, Recording, TaskEvent, Turn
from analytics.store import CallStore, utcnow
from foundation.plain_words import count
from foundation.settings import RetentionSettings, Settings

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class PurgeReport:
    calls: int = 0  # calls whose content was removed
    conversations: int = 0  # Rasa conversations deleted
    access_events: int = 0  # audit entries past their time
    error: str = ""  # why the run stopped early (what is left is retried next run)

    def __str__(self) -> str:
        done = (
            f"removed what was said in {count(self.calls, 'call')}, {count(self.conversations, 'Rasa conversation')}"
            f" and {count(self.access_events, 'access-audit entry')}"
        )
        return done + (f"; stopped early: {self.error} (the rest is retried next run)" if self.error else "")


def purge_call(store: CallStore, call_sid: str, at: datetime) -> bool:
    """Remove one call's personal content (its words, record, packet, recording) in one transaction: all of it, or
    (on any error) none of it."""
    with store.sessions.begin() as db:
        db.execute(update(Turn).where(Turn.call_sid == call_sid).values(transcript="", details=None))
        db.execute(update(TaskEvent).where(TaskEvent.call_sid == call_sid).values(details=None))
        db.execute(delete(Recording).where(Recording.call_sid == call_sid))
        done = db.execute(
            update(Call).where(Call.call_sid == call_sid, Call.purged_at.is_(None))
            .values(record=None, packet=None, caller="", purged_at=at)
        )  # fmt: skip
    return bool(done.rowcount)  # type: ignore[attr-defined]


def purge_call_store(store: CallStore, before: datetime, report: PurgeReport) -> None:
    """Every call that started before ``before``, has ended and still holds content, one transaction each."""
    while True:
        with store.sessions() as db:
            sids = db.scalars(
                select(Call.call_sid)
                .where(Call.started_at < before, Call.purged_at.is_(None), Call.status != "in_progress")
                .order_by(Call.started_at).limit(BATCH)
            ).all()  # fmt: skip
        if not sids:
            return
        for sid in sids:
            report.calls += purge_call(store, sid, utcnow())


def purge_access_events(store: CallStore, before: datetime) -> int:
    with store.sessions.begin() as db:
        return int(db.execute(delete(AccessEvent).where(AccessEvent.at < before)).rowcount)  # type: ignore[attr-defined]


def tracker_databases(settings: Settings) -> list[str]:
    """SQLAlchemy URLs of Rasa's tracker store(s): the shared PostgreSQL one, or each Rasa server's SQLite file."""
    shared = settings.rasa.tracker_store_url
    if shared is not None:
        url = urlsplit(shared)
        return [url._replace(scheme="postgresql+psycopg").geturl()] if url.scheme.startswith("postgres") else [shared]
    return [f"sqlite:///{path}" for path in sorted(glob.glob(str(settings.data_dir / "rasa-trackers-*.db")))]


def purge_conversations(engine: Engine, before: datetime) -> int:
    """Delete every conversation whose last event is older than ``before``, each in one transaction (Rasa's
    SQLTrackerStore: table ``events``, one row per event, ``timestamp`` in Unix seconds)."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "events"):
            return 0
        senders = connection.execute(
            text("SELECT sender_id FROM events GROUP BY sender_id HAVING MAX(timestamp) < :before"),
            {"before": before.timestamp()},
        ).scalars().all()  # fmt: skip
    for sender in senders:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM events WHERE sender_id = :sender"), {"sender": sender})
    return len(senders)


def purge(
    store: CallStore, trackers: list[str], retention: RetentionSettings, now: datetime | None = None
) -> PurgeReport:
    """One run of the purge: the call store, the tracker store(s), the audit trail. Stops at the first error."""
    now = now or utcnow()
    report = PurgeReport()
    try:
        purge_call_store(store, now - timedelta(days=retention.call_content_days), report)
        for url in trackers:
            engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
            try:
                report.conversations += purge_conversations(engine, now - timedelta(days=retention.conversation_days))
            finally:
                engine.dispose()
        report.access_events = purge_access_events(store, now - timedelta(days=retention.access_audit_days))
    except SQLAlchemyError as e:
        report.error = str(e).splitlines()[0]
        log.error("purge stopped: %s", report.error)
    log.info("purge: %s", report, extra={"event": "purge"})
    return report
