"""Call drivers: new reasons for calling, found in the turns the assistant did not understand, read back, or sent to
`general` for want of understanding (the review queue's turns, labelled or not). They are grouped by meaning with the
NLU's own sentence encoder (analytics/review.py's grouping, coarser: a reason rather than a phrasing), each group is
named by its most telling words (frequent in it, rare in what callers say at all), and counted per week of the
agency's clock. A group of one turn is not a driver: it is counted apart, as not enough data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import kpis, review
from analytics.models import Call, Turn

# A reason for calling is coarser than a phrasing: in tests/test_drivers.py paraphrases of one reason sit at 0.68-0.84
# (cosine, MiniLM) and different reasons under 0.2, while the review queue groups phrasings at 0.7.
SAME_REASON = 0.6
EXAMPLES = 3
NAME_WORDS = 3
BACKGROUND = 5000  # caller turns a word's rarity is counted over
MOST_TURNS = 1000  # the newest turns of the period that are grouped (the encoder's time grows with them)
_STOP = """a about after again all also am an and any are as at be because been but by can could did do does don't for
    from get got had has have he her hi his how i i'm if in into is it it's its just know like me my no not now of
    on one or our please she so some than that the their them then there they this to too up us was we were what
    when where which who why will with would yes you your i've i'd i'll there's can't won't ok okay hello um uh er
    yeah well want need wanted calling call called"""
STOP_WORDS = frozenset(_STOP.split())


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z'-]+", text.lower()) if len(w) > 2 and w not in STOP_WORDS}


def _background(db: Session, period: kpis.Period) -> Callable[[str], float]:
    """A word's rarity (inverse document frequency) over the period's caller turns, the newest BACKGROUND of them."""
    texts = db.scalars(
        select(Turn.transcript)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(period.calls(), Turn.input == "speech", Turn.transcript != "")
        .order_by(Call.started_at.desc())
        .limit(BACKGROUND)
    ).all()
    frequency = Counter(w for text in texts for w in _words(text))
    return lambda word: math.log((len(texts) + 1) / (frequency[word] + 1))


def call_drivers(db: Session, period: kpis.Period, encode: Callable[[list[str]], np.ndarray]) -> dict[str, Any]:
    """The period's drivers, biggest first: name, turns, turns per week, example turns, why they were not understood,
    and the intent the NLU most often (wrongly or weakly) gave them."""
    items = review.review_items(db, period.start, period.end, limit=MOST_TURNS, labelled_too=True)
    groups = review.group_similar(items, encode, SAME_REASON) if items else []
    weeks = kpis.buckets(period, "week")
    background = _background(db, period)  # how common each word is in what callers said at all
    drivers, singles = [], 0
    for group in groups:
        if len(group.items) < 2:
            singles += 1
            continue
        inside = Counter(w for i in group.items for w in _words(i.text))
        telling = sorted(inside, key=lambda w: (-(inside[w] / len(group.items)) * background(w), w))
        counted = Counter(
            kpis.bucket_of(i.started_at, "week", period.zone) for i in group.items if i.started_at is not None
        )
        drivers.append(
            {
                "name": " · ".join(telling[:NAME_WORDS]) or "(no telling words)",
                "turns": len(group.items),
                "calls": len({i.call_sid for i in group.items}),
                "weeks": [{"bucket": w, "turns": counted.get(w, 0)} for w in weeks],
                "examples": [{"text": i.text, "call_sid": i.call_sid} for i in group.items[:EXAMPLES]],
                "reasons": dict(Counter(i.reason for i in group.items).most_common()),
                "suggested_intent": group.suggested_intent,
            }
        )
    return {"turns": len(items), "drivers": drivers, "singles": singles, "weeks": weeks}
