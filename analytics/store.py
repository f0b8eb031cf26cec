"""The call store: calls, their handoff packets and what experts did with them. SQLite by default (a file in the
data directory), PostgreSQL by URL; the schema is Alembic's (migrations in analytics/migrations)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.orm import sessionmaker

from analytics.models import Call, Recording, TaskEvent, Turn
from foundation.plain_words import as_utc

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# A call id as the store keys it (Twilio's CA… sids, and the softphone's): anything else is refused before a query.
CALL_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REPEAT_WINDOW = timedelta(days=7)


log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | datetime) -> datetime:
    """An aware UTC datetime (SQLite gives back naive ones for what was written as UTC; records hold ISO text)."""
    return as_utc(value)


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) do not block the gateway's writes
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


MIGRATION_LOCK_KEY = 0x48454C50  # "HELP": PostgreSQL advisory lock held while the schema is migrated


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # gateways starting together: one migrates, the others wait
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _turn_row(call_sid: str, turn: dict[str, Any]) -> Turn:
    return Turn(
        call_sid=call_sid,
        index=int(turn["index"]),
        at=utcnow(),
        input=str(turn.get("input", "speech")),
        transcript=str(turn.get("transcript", "")),
        asr_confidence=float(turn.get("asr_confidence", 0.0)),
        intent=str(turn.get("intent", ""))[:64],
        nlu_confidence=float(turn.get("nlu_confidence", 0.0)),
        decision=str(turn.get("decision", ""))[:96],
        response_ms=float(turn.get("response_ms", 0.0)),
        error=str(turn.get("error", "")),
        details=turn,
        sentiment=(turn.get("sentiment") or {}).get("label"),
    )


class CallStore:
    """Synchronous; the gateway calls it from worker threads."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, upgrade: bool = True) -> CallStore:
        engine = create_db_engine(url)
        if upgrade:
            upgrade_database(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- calls -------------------------------------------------------------------------------------------------

    def call_started(
        self, call_sid: str, caller: str, caller_key: str, started_at: str | datetime, worker: str = ""
    ) -> None:
        with self.sessions.begin() as db:
            call = db.get(Call, call_sid)
            if call is None:
                db.add(
                    Call(
                        call_sid=call_sid,
                        caller=caller,
                        caller_key=caller_key,
                        started_at=parse_time(started_at),
                        status="in_progress",
                        worker=worker,
                    )
                )
            elif not call.worker:  # settled by another gateway (see stream_lost) before this write arrived
                call.caller, call.caller_key, call.started_at = caller, caller_key, parse_time(started_at)
                call.worker = worker

    def save_turn(self, call_sid: str, turn: dict[str, Any]) -> None:
        """Write (or rewrite) one turn of a call in progress."""
        with self.sessions.begin() as db:
            db.merge(_turn_row(call_sid, turn))

    def mark_interrupted(self, worker: str) -> int:
        """Calls this gateway held when it stopped without ending them: interrupted, and failed unless they had
        already been handed to an expert. Returns how many."""
        with self.sessions.begin() as db:
            calls = db.scalars(select(Call).where(Call.status == "in_progress", Call.worker == worker)).all()
            for call in calls:
                call.status = "interrupted"
                call.ended_at = utcnow()
                call.outcome = f"routed:{call.queue}" if call.packet is not None and call.queue else "failed"
            return len(calls)

    def stream_lost(self, call_sid: str, outcome: str, caller: str = "", caller_key: str = "") -> bool:
        """A call whose media stream ended without its gateway settling it (that gateway died): interrupted, with
        where the caller went next. Only a call still in progress is changed; a call of which no write reached the
        store (its gateway died first) is recorded with what Twilio said of it, and the rest (its start, its
        turns) fills in if that gateway's journal is ever replayed. True if a call was changed or recorded."""
        with self.sessions.begin() as db:
            call = db.get(Call, call_sid)
            if call is None:
                now = utcnow()
                db.add(Call(call_sid=call_sid, caller=caller, caller_key=caller_key, started_at=now, ended_at=now,
                            status="interrupted", outcome=outcome, worker=""))  # fmt: skip
                return True
            if call.status != "in_progress":
                return False
            call.status, call.ended_at, call.outcome = "interrupted", utcnow(), outcome
            return True

    def call_ended(self, record: dict[str, Any]) -> None:
        """Write the finished call's record; its row exists from the start (created here if that write was lost)."""
        handoff = record.get("handoff") or {}
        with self.sessions.begin() as db:
            call = db.get(Call, record["call_sid"])
            if call is None:
                call = Call(
                    call_sid=record["call_sid"],
                    caller=record["caller"],
                    caller_key="",
                    started_at=parse_time(record["started_at"]),
                )
                db.add(call)
            call.ended_at = parse_time(record["ended_at"]) if record.get("ended_at") else utcnow()
            call.outcome = record.get("outcome") or None
            call.queue = handoff.get("queue") or call.queue
            call.record = record
            call.frustrated = (record.get("mood") or {}).get("frustrated")
            call.status = "ended"
            for turn in record.get("turns") or []:  # each turn in its final state (interruptions, latencies)
                db.merge(_turn_row(record["call_sid"], turn))

    def previous_calls(self, caller_key: str, call_sid: str, before: str | datetime) -> int:
        """Calls from the same number in the 7 days before ``before`` (this call not counted)."""
        if not caller_key:
            return 0
        moment = parse_time(before)
        with self.sessions() as db:
            return int(
                db.scalar(
                    select(func.count())
                    .select_from(Call)
                    .where(
                        Call.caller_key == caller_key,
                        Call.call_sid != call_sid,
                        Call.started_at >= moment - REPEAT_WINDOW,
                        Call.started_at < moment,
                    )
                )
                or 0
            )

    def save_handoff(self, call_sid: str, packet: dict[str, Any]) -> None:
        with self.sessions.begin() as db:
            db.execute(
                update(Call)
                .where(Call.call_sid == call_sid)
                .values(packet=packet, queue=packet["queue"], handed_off_at=parse_time(packet["handed_off_at"]))
            )

    def routed_calls(self, limit: int = 50) -> list[Call]:
        """The latest calls handed to experts, newest first."""
        with self.sessions() as db:
            return list(
                db.scalars(
                    select(Call).where(Call.packet.is_not(None)).order_by(Call.handed_off_at.desc()).limit(limit)
                )
            )

    def list_calls(
        self,
        start: datetime,
        end: datetime,
        text: str = "",
        outcome: str = "",
        queue: str = "",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Call]]:
        """Calls started in [start, end), newest first, filtered by outcome kind ("answered", "routed", ...), queue,
        and words in a transcript (of the redacted turns); with the total count for paging."""
        query = select(Call).where(Call.started_at >= start, Call.started_at < end)
        if outcome:
            query = query.where(
                Call.outcome.like(f"{outcome}%") if outcome in ("answered", "routed") else Call.outcome == outcome
            )
        if queue:
            query = query.where(Call.queue == queue)
        if text:
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                Call.call_sid.in_(select(Turn.call_sid).where(func.lower(Turn.transcript).like(pattern, escape="\\")))
            )
        with self.sessions() as db:
            total = int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = list(db.scalars(query.order_by(Call.started_at.desc()).limit(limit).offset(offset)))
        return total, rows

    def call(self, call_sid: str) -> Call | None:
        with self.sessions() as db:
            return db.get(Call, call_sid)

    def turns(self, call_sid: str) -> list[Turn]:
        with self.sessions() as db:
            return list(db.scalars(select(Turn).where(Turn.call_sid == call_sid).order_by(Turn.index)))

    # --- recordings ----------------------------------------------------------------------------------------------

    def save_recording(self, call_sid: str, path: str, seconds: float, silenced: int) -> None:
        """Store the recording a gateway left at ``path`` (then remove the file). Applied again after a crash, the
        file is gone and the row is there: nothing to do."""
        spooled = Path(path)
        if not spooled.exists():
            with self.sessions() as db:
                if db.get(Recording, call_sid) is None:
                    log.error("call %s: its recording %s is gone before it was stored", call_sid, path)
            return
        with self.sessions.begin() as db:
            db.merge(Recording(call_sid=call_sid, at=utcnow(), seconds=seconds, silenced=silenced,
                               wav=spooled.read_bytes()))  # fmt: skip
        spooled.unlink(missing_ok=True)

    def recording_facts(self, call_sid: str) -> tuple[float, int] | None:
        """A call's recording's length and passages silenced, without its audio; None when it has none."""
        with self.sessions() as db:
            row = db.execute(
                select(Recording.seconds, Recording.silenced).where(Recording.call_sid == call_sid)
            ).first()
        return (float(row[0]), int(row[1])) if row is not None else None

    def recording(self, call_sid: str) -> bytes | None:
        """A call's recording (stereo mu-law WAV), or None."""
        with self.sessions() as db:
            return db.scalar(select(Recording.wav).where(Recording.call_sid == call_sid))

    # --- what experts did --------------------------------------------------------------------------------------

    def add_task_event(
        self,
        call_sid: str,
        queue: str,
        kind: str,
        source: str,
        at: str | datetime | None = None,
        task_sid: str | None = None,
        worker: str | None = None,
        handled_s: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> TaskEvent:
        """Record one event. A TaskRouter "completed" gets its handling time from the same task's "accepted"."""
        at = parse_time(at) if at else utcnow()
        with self.sessions.begin() as db:
            if kind == "completed" and handled_s is None and task_sid:
                accepted = db.scalar(
                    select(func.min(TaskEvent.at)).where(TaskEvent.task_sid == task_sid, TaskEvent.kind == "accepted")
                )
                if accepted is not None:
                    handled_s = max(0.0, (at - parse_time(accepted)).total_seconds())
            row = TaskEvent(
                call_sid=call_sid,
                queue=queue,
                kind=kind,
                at=at,
                source=source,
                task_sid=task_sid,
                worker=worker,
                handled_s=handled_s,
                details=details,
            )
            db.add(row)
        return row

    def move_call(self, call_sid: str, by: timedelta) -> None:
        """Move every time of a finished call by ``by`` (its row, turns, expert events, and the times inside its
        record and packet): what `helpline seed-demo --days` does to spread calls it placed now over past days."""

        def moved(value: Any) -> Any:
            return (parse_time(value) + by).isoformat() if isinstance(value, str) and value else value

        with self.sessions.begin() as db:
            call = db.get(Call, call_sid)
            if call is None:
                raise KeyError(call_sid)
            call.started_at = call.started_at + by
            call.ended_at = call.ended_at + by if call.ended_at else None
            call.handed_off_at = call.handed_off_at + by if call.handed_off_at else None
            if call.record:
                call.record = {**call.record, **{k: moved(call.record.get(k)) for k in ("started_at", "ended_at")}}
            if call.packet:
                call.packet = {**call.packet, **{k: moved(call.packet.get(k)) for k in ("started_at", "handed_off_at")}}
            for turn in db.scalars(select(Turn).where(Turn.call_sid == call_sid)):
                turn.at = turn.at + by
            for task in db.scalars(select(TaskEvent).where(TaskEvent.call_sid == call_sid)):
                task.at = task.at + by

    def task_events(self, call_sid: str) -> list[TaskEvent]:
        with self.sessions() as db:
            rows = db.scalars(
                select(TaskEvent).where(TaskEvent.call_sid == call_sid).order_by(TaskEvent.at, TaskEvent.id)
            )
            return [self._fix(row) for row in rows]

    @staticmethod
    def _fix(row: TaskEvent) -> TaskEvent:
        row.at = parse_time(row.at)
        return row

    def handling_by_queue(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Per queue: calls an expert completed, their mean and total handling time (seconds). Computed in SQL."""
        query = (
            select(
                TaskEvent.queue,
                func.count(func.distinct(TaskEvent.call_sid)).label("calls"),
                func.avg(TaskEvent.handled_s).label("mean_s"),
                func.sum(TaskEvent.handled_s).label("total_s"),
            )
            .where(TaskEvent.kind == "completed", TaskEvent.handled_s.is_not(None))
            .group_by(TaskEvent.queue)
            .order_by(TaskEvent.queue)
        )
        if since is not None:
            query = query.where(TaskEvent.at >= since)
        with self.sessions() as db:
            return [
                {"queue": q, "calls": int(n), "mean_s": round(float(m), 1), "total_s": round(float(t), 1)}
                for q, n, m, t in db.execute(query)
            ]
