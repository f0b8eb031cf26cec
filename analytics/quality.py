"""The assistant's own answers, judged by what the caller did next: per topic, how often an answer was accepted
(thanks, goodbye, or on to another topic) against followed by the same question, a request for a person, or the
caller hanging up without a word. Computed in SQL over the turn after each answer (SQLite or PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from analytics import kpis
from analytics.models import Call, Turn
from foundation.routing_table import RoutingTable

REACTIONS = ("accepted", "asked_again", "person", "hung_up", "other")
# Small talk after an answer that says it landed: thanks, goodbye, "no, that was all", "yes" to "anything else?".
ACCEPTING_SMALLTALK = ("smalltalk:thanks", "smalltalk:goodbye", "smalltalk:deny", "smalltalk:affirm", "smalltalk:greet")
EXAMPLES = 3


def answer_quality(db: Session, period: kpis.Period) -> list[dict[str, Any]]:
    """Per topic answered: answers given, each reaction's count and share, and up to three example calls of every
    reaction but acceptance (the latest first). Only ended calls: a call in progress has no "next" yet."""
    answer, after = aliased(Turn), aliased(Turn)
    reaction = case(
        (after.call_sid.is_(None), "hung_up"),
        (after.decision == answer.decision, "asked_again"),
        (or_(after.intent.in_(RoutingTable.load().person_intents), after.decision == "route:general"), "person"),
        (or_(after.decision.in_(ACCEPTING_SMALLTALK), after.decision.like("answer:%")), "accepted"),
        else_="other",
    ).label("reaction")
    topic = func.substr(answer.decision, len("answer:") + 1).label("topic")
    judged = (
        select(
            topic,
            reaction,
            answer.call_sid,
            func.row_number()
            .over(partition_by=(topic, reaction), order_by=(Call.started_at.desc(), answer.call_sid))
            .label("rank"),
        )
        .select_from(answer)
        .join(Call, Call.call_sid == answer.call_sid)
        .outerjoin(after, and_(after.call_sid == answer.call_sid, after.index == answer.index + 1))
        .where(period.calls(), Call.ended_at.is_not(None), answer.decision.like("answer:%"))
        .subquery()
    )
    counts = db.execute(
        select(judged.c.topic, judged.c.reaction, func.count()).group_by(judged.c.topic, judged.c.reaction)
    )
    examples = db.execute(
        select(judged.c.topic, judged.c.reaction, judged.c.call_sid)
        .where(judged.c.rank <= EXAMPLES, judged.c.reaction != "accepted")
        .order_by(judged.c.topic, judged.c.reaction, judged.c.rank)
    )
    topics: dict[str, dict[str, Any]] = {}
    for name, kind, n in counts:
        row = topics.setdefault(name, {"topic": name, "answers": 0, **{k: 0 for k in REACTIONS}, "examples": {}})
        row[kind] = n
        row["answers"] += n
    for name, kind, call_sid in examples:
        topics[name]["examples"].setdefault(kind, []).append(call_sid)
    rows = sorted(topics.values(), key=lambda r: (-r["answers"], r["topic"]))
    for row in rows:
        row["accepted_rate"] = kpis.rate(row["accepted"], row["answers"])
        row["not_helped_rate"] = kpis.rate(row["asked_again"] + row["person"] + row["hung_up"], row["answers"])
    return rows
