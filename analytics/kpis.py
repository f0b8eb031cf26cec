"""How the line performs, computed in SQL (SQLite or PostgreSQL) over a period of call start times.

Every figure is one query over the call store; none loops over calls in Python. Times are stored in UTC; a period's
days and the hours of its charts are the agency's (its time zone, ``zone``), as supervisors count them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Float, and_, case, cast, distinct, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from analytics.models import Call, TaskEvent, Turn
from foundation.plain_words import as_utc
from foundation.vocabulary import NOT_UNDERSTOOD_DECISIONS

REPEAT_DAYS = 7


@dataclass(frozen=True)
class Period:
    """From ``start`` (included) to ``end`` (excluded), both UTC (what the store compares with); whole days of
    ``zone``."""

    start: datetime
    end: datetime
    zone: tzinfo = UTC

    def calls(self) -> ColumnElement[bool]:
        return and_(Call.started_at >= self.start, Call.started_at < self.end)


def period_of(start: str | None, end: str | None, days: int = 7, longest_days: int = 366, zone: tzinfo = UTC) -> Period:
    """Whole days in ``zone`` from ``start`` to ``end``, both included (YYYY-MM-DD). Without ``start``: the ``days``
    days up to ``end``; without ``end``: up to today; without either: the last ``days`` days, today included.
    ValueError, with a message for the user, when they are not dates, run backwards or cover more than
    ``longest_days``."""
    today = datetime.now(zone).date()
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=days - 1)
    except ValueError as e:
        raise ValueError("Give dates as YYYY-MM-DD.") from e
    if first > last or (last - first).days >= longest_days:
        raise ValueError(f"The period runs forward and covers at most {longest_days} days.")
    begins, ends = (datetime.combine(day, time(), zone).astimezone(UTC) for day in (first, last + timedelta(days=1)))
    return Period(begins, ends, zone)


def period_fields(period: Period) -> dict[str, str]:
    """The period as the dashboard's form shows it: first and last day."""
    first, after = (moment.astimezone(period.zone).date() for moment in (period.start, period.end))
    return {"start": first.isoformat(), "end": (after - timedelta(days=1)).isoformat()}


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def utc_hour(db: Session) -> ColumnElement[str]:
    """The call's start time truncated to its UTC hour, as text ("2026-11-25 09:00")."""
    if _dialect(db) == "postgresql":
        return func.to_char(func.date_trunc("hour", func.timezone("UTC", Call.started_at)), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00", Call.started_at)


def seconds_between(db: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if _dialect(db) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def bucket_of(moment: datetime | str, unit: str, zone: tzinfo) -> str:
    """The hour ("2026-11-25 10:00"), day ("2026-11-25") or week (its Monday, "2026-11-23") of the agency's clock
    that a stored moment falls in: a UTC hour text as the SQL below groups by, or a datetime (naive means UTC)."""
    moment = datetime.strptime(moment, "%Y-%m-%d %H:%M") if isinstance(moment, str) else moment
    local = as_utc(moment).astimezone(zone)
    if unit == "hour":
        return local.strftime("%Y-%m-%d %H:00")
    if unit == "day":
        return local.strftime("%Y-%m-%d")
    return (local.date() - timedelta(days=local.weekday())).isoformat()


def buckets(period: Period, unit: str) -> list[str]:
    """Every hour, day or week of the period, in order, those without calls too."""
    labels: list[str] = []
    at = period.start
    while at < period.end:
        label = bucket_of(at, unit, period.zone)
        if not labels or labels[-1] != label:
            labels.append(label)
        at += timedelta(hours=1)
    return labels


def calls_per(db: Session, period: Period, unit: str = "hour") -> list[dict[str, Any]]:
    """Calls per hour or day of the period's zone. Counted per UTC hour in SQL; each such hour is one hour of the
    agency's clock (time zones differ from UTC by whole hours, bar a few), so local hours and days are sums of them."""
    if unit not in ("hour", "day"):
        raise ValueError("unit is hour or day")
    bucket = utc_hour(db).label("bucket")
    rows = db.execute(select(bucket, func.count()).where(period.calls()).group_by(bucket).order_by(bucket))
    counted: dict[str, int] = {}
    for hour, n in rows:
        label = bucket_of(hour, unit, period.zone)
        counted[label] = counted.get(label, 0) + n
    return [{"bucket": b, "calls": n} for b, n in sorted(counted.items())]


def outcomes(db: Session, period: Period) -> dict[str, Any]:
    """Calls by outcome kind; containment (answered without a person) and abandonment inside the assistant."""
    kind = case(
        (Call.outcome.like("answered:%"), "answered"),
        (Call.outcome.like("routed:%"), "routed"),
        (Call.outcome == "abandoned", "abandoned"),
        (Call.outcome == "failed", "failed"),
        else_="in_progress",
    ).label("kind")
    counts: dict[str, int] = {
        k: n for k, n in db.execute(select(kind, func.count()).where(period.calls()).group_by(kind))
    }
    total = sum(counts.values())
    return {
        "calls": total,
        **{k: counts.get(k, 0) for k in ("answered", "routed", "abandoned", "failed", "in_progress")},
        "containment": rate(counts.get("answered", 0), total),
        "abandonment": rate(counts.get("abandoned", 0), total),
    }


def containment_by_topic(db: Session, period: Period) -> list[dict[str, Any]]:
    """Per topic asked about: calls, and how many of them ended without a person."""
    topic = func.substr(Turn.decision, len("answer:") + 1).label("topic")
    answered = func.count(distinct(case((Call.outcome.like("answered:%"), Call.call_sid))))
    rows = db.execute(
        select(topic, func.count(distinct(Call.call_sid)), answered)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(period.calls(), Turn.decision.like("answer:%"))
        .group_by(topic)
        .order_by(topic)
    )
    return [{"topic": t, "calls": n, "contained": a, "containment": rate(a, n)} for t, n, a in rows]


def routing_by_queue(db: Session, period: Period) -> list[dict[str, Any]]:
    """Calls handed to each queue, by the routing reason of the packet's deciding turn (its intent)."""
    reason = func.coalesce(func.nullif(Turn.intent, ""), literal("(no request: fault or no input)")).label("reason")
    last_route = (
        select(Turn.call_sid, func.max(Turn.index).label("idx"))
        .where(Turn.decision.like("route:%"))
        .group_by(Turn.call_sid)
        .subquery()
    )
    rows = db.execute(
        select(Call.queue, reason, func.count())
        .select_from(Call)
        .outerjoin(last_route, last_route.c.call_sid == Call.call_sid)
        .outerjoin(Turn, and_(Turn.call_sid == Call.call_sid, Turn.index == last_route.c.idx))
        .where(period.calls(), Call.queue.is_not(None))
        .group_by(Call.queue, reason)
        .order_by(Call.queue, func.count().desc())
    )
    return [{"queue": q, "reason": r, "calls": n} for q, r, n in rows]


def repeat_calls_by_intent(db: Session, period: Period) -> list[dict[str, Any]]:
    """Failure demand: per main intent (the last answered or routed request of a call), calls whose number called
    again within 7 days. An "answered" caller who calls back was not really helped."""
    main = (
        select(Turn.call_sid, func.max(Turn.index).label("idx"))
        .where(Turn.decision.like("answer:%") | Turn.decision.like("route:%"))
        .group_by(Turn.call_sid)
        .subquery()
    )
    later = aliased(Call)
    again = (
        select(later.call_sid)
        .where(
            later.caller_key == Call.caller_key,
            later.started_at > Call.started_at,
            seconds_between(db, later.started_at, Call.started_at) <= REPEAT_DAYS * 86400,
        )
        .exists()
    )
    repeated = func.sum(case((and_(Call.caller_key != "", again), 1), else_=0))
    rows = db.execute(
        select(Turn.intent, func.count(), repeated)
        .select_from(Call)
        .join(main, main.c.call_sid == Call.call_sid)
        .join(Turn, and_(Turn.call_sid == Call.call_sid, Turn.index == main.c.idx))
        .where(period.calls())
        .group_by(Turn.intent)
        .order_by(Turn.intent)
    )
    return [
        {"intent": i, "calls": n, "repeated_7d": int(r or 0), "repeat_rate": rate(int(r or 0), n)} for i, n, r in rows
    ]


def expert_seconds() -> Any:
    """Per call, the experts' handling time (seconds of completed tasks): a subquery with ``call_sid``, ``human_s``."""
    return (
        select(TaskEvent.call_sid, func.sum(TaskEvent.handled_s).label("human_s"))
        .where(TaskEvent.kind == "completed", TaskEvent.handled_s.is_not(None))
        .group_by(TaskEvent.call_sid)
        .subquery()
    )


def handling_time(db: Session, period: Period, baseline_s: float | None) -> dict[str, Any]:
    """Average handling time: the assistant's part (start -> handoff, or -> end) plus the expert's (accepted ->
    completed), per call, against the configured average of calls handled by people only."""
    assistant_end = func.coalesce(Call.handed_off_at, Call.ended_at)
    human = expert_seconds()
    assistant_s = seconds_between(db, assistant_end, Call.started_at)
    human_s = func.coalesce(human.c.human_s, 0.0)
    row = db.execute(
        select(
            func.count(),
            func.avg(cast(assistant_s, Float)),
            func.avg(cast(human_s, Float)),
            func.count(human.c.call_sid),
        )
        .select_from(Call)
        .outerjoin(human, human.c.call_sid == Call.call_sid)
        .where(period.calls(), assistant_end.is_not(None))
    ).one()
    calls, mean_assistant, mean_human, with_expert = row
    total = (mean_assistant or 0.0) + (mean_human or 0.0) if calls else None
    return {
        "calls": calls,
        "calls_with_expert_time": with_expert,
        "assistant_s": None if mean_assistant is None else round(float(mean_assistant), 1),
        "human_s": None if mean_human is None else round(float(mean_human), 1),
        "aht_s": None if total is None else round(total, 1),
        "baseline_s": baseline_s,
        "vs_baseline": None if total is None or not baseline_s else round(total / baseline_s - 1, 4),
    }


def _percentile(db: Session, column: Any, where: list[Any], q: float) -> float | None:
    """The q-quantile (nearest rank) by ORDER BY/OFFSET: the same SQL on SQLite and PostgreSQL."""
    n = db.scalar(select(func.count()).select_from(Turn).join(Call, Call.call_sid == Turn.call_sid).where(*where))
    if not n:
        return None
    offset = max(0, min(n - 1, math.ceil(q * n) - 1))
    value = db.scalar(
        select(column)
        .select_from(Turn)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(*where)
        .order_by(column)
        .offset(offset)
        .limit(1)
    )
    return None if value is None else round(float(value), 1)


def turn_quality(db: Session, period: Period, low_confidence: float = 0.55) -> dict[str, Any]:
    """ASR confidence, how often the assistant did not understand (fallback) or had to ask, and response latency."""
    speech = [period.calls(), Turn.input == "speech"]
    row = db.execute(
        select(
            func.count(),
            func.avg(Turn.asr_confidence),
            func.sum(case((Turn.asr_confidence < low_confidence, 1), else_=0)),
            # Not understood: asked to say it again (clarify:rephrase), or taken for something outside the line.
            func.sum(case((Turn.decision.in_(NOT_UNDERSTOOD_DECISIONS), 1), else_=0)),
            func.sum(case((Turn.decision.like("clarify:%") | Turn.decision.like("confirm:%"), 1), else_=0)),
        )
        .select_from(Turn)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(*speech)
    ).one()
    turns, mean_conf, low, fallback, asked = (row[0], row[1], int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))
    timed = [*speech, Turn.response_ms > 0]
    return {
        "speech_turns": turns,
        "asr_confidence_mean": None if mean_conf is None else round(float(mean_conf), 3),
        "asr_low_confidence_rate": rate(low, turns),
        "fallback_rate": rate(fallback, turns),
        "clarify_or_confirm_rate": rate(asked, turns),
        "response_ms_p50": _percentile(db, Turn.response_ms, timed, 0.50),
        "response_ms_p95": _percentile(db, Turn.response_ms, timed, 0.95),
    }


def caller_mood(db: Session, period: Period) -> dict[str, Any]:
    """Of the calls whose caller's mood was judged (nlu/sentiment.py), how many callers were frustrated, and how many
    turns sounded negative. From the mood's own columns, which the retention purge keeps."""
    calls, angry = db.execute(
        select(func.count(), func.sum(case((Call.frustrated.is_(True), 1), else_=0))).where(
            period.calls(), Call.frustrated.is_not(None)
        )
    ).one()
    turns, negative = db.execute(
        select(func.count(), func.sum(case((Turn.sentiment == "negative", 1), else_=0)))
        .select_from(Turn)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(period.calls(), Turn.sentiment.is_not(None))
    ).one()
    return {
        "calls_with_mood": calls,
        "frustrated": int(angry or 0),
        "frustrated_rate": rate(int(angry or 0), calls),
        "negative_turn_rate": rate(int(negative or 0), turns),
    }


def summary(db: Session, period: Period, baseline_aht_s: float | None) -> dict[str, Any]:
    """Every KPI of the period, as the dashboard and `helpline kpis` show them."""
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "time_zone": str(period.zone)},
        "outcomes": outcomes(db, period),
        "calls_per_hour": calls_per(db, period, "hour"),
        "containment_by_topic": containment_by_topic(db, period),
        "routing_by_queue": routing_by_queue(db, period),
        "repeat_calls_by_intent": repeat_calls_by_intent(db, period),
        "handling_time": handling_time(db, period, baseline_aht_s),
        "turns": turn_quality(db, period),
        "mood": caller_mood(db, period),
    }
