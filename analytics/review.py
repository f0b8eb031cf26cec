"""The trainer's review queue: turns the assistant did not understand well, grouped by meaning.

In the queue: turns with low NLU confidence, turns not understood (out of scope / fallback), transcripts the caller
said were wrong when they were read back, and turns that sent a call to `general` for want of understanding.
Turns a trainer has labelled leave the queue. Groups come from the same sentence encoder the NLU pipeline uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import and_, case, literal, or_, select
from sqlalchemy.orm import Session, aliased

from analytics.models import Call, ReviewLabel, Turn
from analytics.store import CallStore, utcnow
from foundation.vocabulary import NOT_UNDERSTOOD_DECISIONS, READ_BACK, READ_BACK_DENIED

LOW_NLU_CONFIDENCE = 0.6
SAME_GROUP = 0.7  # cosine similarity to a group's centre that puts a turn in that group
PERSON_INTENTS = ("request_human", "distress")  # routed to general on purpose, not for want of understanding


@dataclass(frozen=True)
class ReviewItem:
    call_sid: str
    turn_index: int
    text: str
    intent: str  # what the NLU made of it
    confidence: float
    reason: str  # low_confidence | not_understood | read_back_rejected | routed_general
    started_at: datetime | None = None  # the call's start (UTC)


@dataclass
class ReviewGroup:
    items: list[ReviewItem] = field(default_factory=list)
    centre: np.ndarray | None = None

    @property
    def suggested_intent(self) -> str:
        """The intent the NLU most often gave this group's turns (a starting point, often wrong: that is why the
        turns are here)."""
        intents = [i.intent for i in self.items if i.intent and i.intent not in ("nlu_fallback", "out_of_scope")]
        return max(set(intents), key=intents.count) if intents else ""


def review_items(
    db: Session, start: datetime, end: datetime, limit: int = 500, labelled_too: bool = False
) -> list[ReviewItem]:
    """The queue, newest first, without turns already labelled (``labelled_too``: with them, for call drivers)."""
    following = aliased(Turn)
    rejected = (
        select(following.call_sid)
        .where(
            following.call_sid == Turn.call_sid,
            following.index == Turn.index + 1,
            following.decision == str(READ_BACK_DENIED),
        )
        .exists()
    )
    # Why a turn is in the queue: the first rule it meets (a turn meeting none is not in the queue).
    rules = [
        (and_(Turn.decision == str(READ_BACK), rejected), "read_back_rejected"),
        (Turn.decision.in_(NOT_UNDERSTOOD_DECISIONS), "not_understood"),
        (Turn.intent == "nlu_fallback", "not_understood"),
        (and_(Turn.decision == "route:general", Turn.intent.not_in(PERSON_INTENTS)), "routed_general"),
        (
            and_(Turn.intent != "", Turn.nlu_confidence < LOW_NLU_CONFIDENCE, ~Turn.decision.like("smalltalk:%")),
            "low_confidence",
        ),
    ]
    reason = case(*[(condition, literal(name)) for condition, name in rules])
    labelled = select(ReviewLabel.call_sid).where(
        ReviewLabel.call_sid == Turn.call_sid, ReviewLabel.turn_index == Turn.index
    )
    rows = db.execute(
        select(Turn.call_sid, Turn.index, Turn.transcript, Turn.intent, Turn.nlu_confidence, reason, Call.started_at)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(
            Call.started_at >= start,
            Call.started_at < end,
            Turn.input == "speech",
            Turn.transcript != "",
            or_(*[condition for condition, _ in rules]),
            *([] if labelled_too else [~labelled.exists()]),
        )
        .order_by(Call.started_at.desc(), Turn.index)
        .limit(limit)
    )
    return [ReviewItem(s, i, t, n or "", round(float(c or 0), 3), r, at) for s, i, t, n, c, r, at in rows]


def group_similar(
    items: Sequence[ReviewItem], encode: Callable[[list[str]], np.ndarray], threshold: float = SAME_GROUP
) -> list[ReviewGroup]:
    """Turns that mean much the same, together; biggest groups first. Each turn joins the most similar group
    whose centre is within ``threshold`` (cosine), else starts its own."""
    if not items:
        return []
    vectors = encode([i.text for i in items])
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    groups: list[ReviewGroup] = []
    for item, vector in zip(items, vectors, strict=True):
        scores = [float(g.centre @ vector) for g in groups if g.centre is not None]
        best = int(np.argmax(scores)) if scores else -1
        if best >= 0 and scores[best] >= threshold:
            group = groups[best]
            group.items.append(item)
            total = (group.centre * (len(group.items) - 1)) + vector  # type: ignore[operator]
            group.centre = total / np.linalg.norm(total)
        else:
            groups.append(ReviewGroup([item], vector))
    return sorted(groups, key=lambda g: -len(g.items))


def record_label(store: CallStore, item_call: str, turn_index: int, intent: str, text: str, user: str) -> None:
    with store.sessions.begin() as db:
        db.merge(
            ReviewLabel(
                call_sid=item_call, turn_index=turn_index, intent=intent, text=text, labelled_by=user, at=utcnow()
            )
        )


class ReviewError(ValueError):
    """The label cannot be applied (unknown turn, bad intent, duplicate example); nothing was changed."""


def label_turn(
    store: CallStore, call_sid: str, turn_index: int, intent: str, user: str, nlu_dir: Path, domain_file: Path
) -> Path:
    """The trainer's verdict: the turn's (redacted) transcript becomes a training example of ``intent``; the turn
    leaves the queue. Returns the training data file written."""
    from nlu.training_data import TrainingDataError, add_example, clean_example

    with store.sessions() as db:
        turn = db.get(Turn, (call_sid, turn_index))
    if turn is None or not turn.transcript:
        raise ReviewError(f"no turn {turn_index} with words in call {call_sid}")
    try:
        written = add_example(intent, turn.transcript, nlu_dir, domain_file)
        text = clean_example(turn.transcript)
    except TrainingDataError as e:
        raise ReviewError(str(e)) from e
    record_label(store, call_sid, turn_index, intent, text, user)
    return written
