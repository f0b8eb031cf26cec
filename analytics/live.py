"""What is happening on the line now, for the supervisors' live view: calls in progress (state, current topic, time
in call), calls waiting per expert queue, and alerts by rule. Read from the call store, which every gateway writes
as calls go, so one page sees the calls of every gateway.

Alert rules:
- urgent: a turn whose intent the routing table marks urgent (distress: a caller in crisis);
- repeat: a caller on the line now who already called twice in the 7 days before (the third call);
- fault: a call of the last hour that failed, or a turn that met a fault;
- long: a call longer than ``long_call_s`` in the assistant, not yet put through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from analytics import kpis
from analytics.models import Call, TaskEvent, Turn
from foundation.plain_words import as_utc

RECENT = timedelta(hours=1)  # how far back faults, urgent turns and waiting calls are looked for
STALE = timedelta(hours=6)  # an "in progress" call older than this is a record its gateway never closed
REPEAT_DAYS = 7
REPEAT_ALERT_AT = 2  # earlier calls in the window: this one is the third
TASK_SETTLED = ("accepted", "completed", "canceled", "failed")


@dataclass(frozen=True)
class LiveRules:
    urgent_intents: frozenset[str]
    long_call_s: float


def _topic(decision: str, intent: str) -> str:
    """A turn's matter in the domain's words: the topic answered, the queue routed to, or the intent heard."""
    if ":" in decision and decision.split(":", 1)[0] in ("answer", "route"):
        return decision.split(":", 1)[1]
    return intent or decision or ""


def in_progress(db: Session, now: datetime) -> list[dict[str, Any]]:
    """Calls with a live media stream somewhere, longest first: state, current topic, seconds in the call."""
    last = select(Turn.call_sid, func.max(Turn.index).label("idx")).group_by(Turn.call_sid).subquery()
    rows = db.execute(
        select(Call.call_sid, Call.started_at, Call.handed_off_at, Call.queue, Turn.decision, Turn.intent, last.c.idx)
        .outerjoin(last, last.c.call_sid == Call.call_sid)
        .outerjoin(Turn, and_(Turn.call_sid == Call.call_sid, Turn.index == last.c.idx))
        .where(Call.status == "in_progress", Call.started_at >= now - STALE)
        .order_by(Call.started_at, Call.call_sid)
    )
    calls = []
    for sid, started, handed_off, queue, decision, intent, turns in rows:
        state = f"being put through to {queue}" if handed_off is not None else "with the assistant"
        calls.append(
            {
                "call_sid": sid,
                "started_at": started,
                "seconds": _seconds_since(started, now),
                "state": state,
                "in_assistant": handed_off is None,
                "topic": _topic(decision or "", intent or ""),
                "turns": turns or 0,
            }
        )
    return calls


def waiting(db: Session, now: datetime) -> list[dict[str, Any]]:
    """Per queue, calls put through in the last hour that no expert has taken yet, and the longest wait."""
    settled = select(TaskEvent.call_sid).where(TaskEvent.kind.in_(TASK_SETTLED)).distinct()
    rows = db.execute(
        select(Call.queue, func.count(), func.min(Call.handed_off_at))
        .where(
            Call.handed_off_at.is_not(None),
            Call.handed_off_at >= now - RECENT,
            Call.queue.is_not(None),
            Call.call_sid.not_in(settled),
        )
        .group_by(Call.queue)
        .order_by(Call.queue)
    )
    return [{"queue": q, "calls": n, "longest_s": _seconds_since(first, now) if first else 0} for q, n, first in rows]


def alerts(db: Session, now: datetime, rules: LiveRules, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every alert the rules raise now, most serious first: urgent, fault, repeat, long (``calls``: the calls in
    progress, as ``in_progress`` read them)."""
    found: list[dict[str, Any]] = []
    recent_or_live = or_(Call.status == "in_progress", Call.started_at >= now - RECENT)
    live = and_(Call.status == "in_progress", Call.started_at >= now - STALE)
    if rules.urgent_intents:
        for sid, intent in db.execute(
            select(Turn.call_sid, func.min(Turn.intent))
            .join(Call, Call.call_sid == Turn.call_sid)
            .where(recent_or_live, Call.started_at >= now - STALE, Turn.intent.in_(rules.urgent_intents))
            .group_by(Turn.call_sid)
        ):
            found.append(_alert("urgent", sid, f"urgent: the caller said something heard as {intent}"))
    faulty = select(Turn.call_sid).where(Turn.error != "").distinct()
    for (sid,) in db.execute(
        select(Call.call_sid)
        .where(Call.started_at >= now - RECENT, or_(Call.outcome == "failed", Call.call_sid.in_(faulty)))
        .order_by(Call.started_at.desc())
    ):
        found.append(_alert("fault", sid, "a fault met this call"))
    earlier = aliased(Call)
    before = (
        select(func.count())
        .select_from(earlier)
        .where(
            earlier.caller_key == Call.caller_key,
            earlier.call_sid != Call.call_sid,
            earlier.started_at < Call.started_at,
            kpis.seconds_between(db, Call.started_at, earlier.started_at) <= REPEAT_DAYS * 86400,
        )
        .scalar_subquery()
    )
    third = select(Call.call_sid, before).where(live, Call.caller_key != "", before >= REPEAT_ALERT_AT)
    for sid, n in db.execute(third):
        found.append(_alert("repeat", sid, f"call {n + 1} from this number in {REPEAT_DAYS} days"))
    for call in calls:
        if call["in_assistant"] and call["seconds"] > rules.long_call_s:
            text = f"in the assistant for {_clock(call['seconds'])} (longer than {_clock(rules.long_call_s)})"
            found.append(_alert("long", call["call_sid"], text))
    return found


def _clock(seconds: float) -> str:
    """Minutes and seconds, as a wallboard shows them: "12:05"."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _alert(kind: str, call_sid: str, text: str) -> dict[str, Any]:
    return {"kind": kind, "call_sid": call_sid, "text": text}


def snapshot(db: Session, now: datetime, rules: LiveRules) -> dict[str, Any]:
    calls = in_progress(db, now)
    return {"calls": calls, "waiting": waiting(db, now), "alerts": alerts(db, now, rules, calls), "now": now}


def _seconds_since(moment: datetime, now: datetime) -> int:
    return max(0, round((now - as_utc(moment)).total_seconds()))
