"""How a caller sounds in words, offline: VADER's lexicon (the `vaderSentiment` package, MIT, the lexicon inside)
adjusted to this line's callers, per turn; and per call, with what the caller did (asked for a person, asked the
same again, called for the third time in a week), whether they were frustrated.

The adjustments, chosen on the dev half of nlu/sentiment/turns.yml (bench/sentiment.py; the test half only
measures): the agency's own words carry no feeling here ("benefit", "allowance", "help", "please" are what callers
ask for, not how they feel), "no thanks" closes a call politely rather than negating thanks, and callers' ways of
saying they are fed up ("third time", "nobody helps", "never works", "had enough") weigh as the strong negatives
they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# VADER's compound score at or below NEGATIVE_AT is negative, at or above POSITIVE_AT positive (chosen on dev).
NEGATIVE_AT = -0.25
POSITIVE_AT = 0.1
PHRASE_WEIGHT = 0.6  # taken off the compound score for each fed-up phrase heard

# Words VADER scores that, on this line, name what the caller asks about rather than how they feel.
DOMAIN_WORDS = (
    "benefit", "benefits", "allowance", "help", "helps", "please", "like", "care", "certificate", "pay", "paid",
    "payment", "support", "well", "yes", "no", "okay", "ok", "sure", "child", "kids", "owe", "free", "appeal",
    "cheating", "fraud", "sick", "sickness", "agency", "robot", "leave", "parental", "disagree", "suspect",
)  # fmt: skip
# Words of callers at the end of their patience that VADER does not know (or scores too mildly).
CALLER_WORDS = {
    "fed": -1.5, "useless": -2.2, "ridiculous": -2.0, "absurd": -2.0, "unacceptable": -2.5, "outrageous": -2.6,
    "nightmare": -2.5, "disaster": -2.6, "mess": -1.8, "forever": -1.0, "livid": -2.8, "furious": -3.0,
    "desperate": -2.5, "hopeless": -2.6, "terrified": -2.6, "scared": -2.2, "scares": -2.2, "worried": -1.8,
    "anxious": -2.0, "stressed": -2.2, "crying": -2.4, "tears": -2.2, "unbelievable": -1.8, "broken": -1.5,
}  # fmt: skip
# Ways of saying "I have had enough" that no single word carries.
FED_UP_PHRASES = (
    r"\b(second|third|fourth|fifth|sixth|tenth|umpteenth|\d+(st|nd|rd|th)) time\b", r"\bcalled (\w+ )?(times|again)\b",
    r"\bnobody (ever )?(helps|answers|calls|knows|cares)",
    r"\bnever (works|answers|listen)", r"\bhad enough\b", r"\benough is enough\b", r"\bsick (and tired )?of\b",
    r"\btired of\b", r"\bwaste of time\b", r"\bagain\b.*[!.]$", r"\bstill (no|not|haven'?t)\b",
    r"\bcan'?t (take|cope)\b", r"\bdon'?t know what to do\b", r"\bend of my rope\b", r"\bwaited long enough\b",
    r"\bover and over\b", r"\bno money\b", r"\bjust (give|put) me\b", r"\bstop asking\b",
)  # fmt: skip
_PHRASES = re.compile("|".join(f"(?:{p})" for p in FED_UP_PHRASES), re.IGNORECASE)
# "No thanks, goodbye" closes most calls politely; VADER reads "no" as negating "thanks".
_NO_THANKS = re.compile(r"\bno,? thank(s| you)\b", re.IGNORECASE)


@dataclass(frozen=True)
class TurnSentiment:
    score: float  # -1 (as negative as words get) .. 1
    label: str  # negative | neutral | positive

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "label": self.label}


@cache
def _analyzer(adjusted: bool) -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    if adjusted:
        for word in DOMAIN_WORDS:
            analyzer.lexicon.pop(word, None)
        analyzer.lexicon.update(CALLER_WORDS)
    return analyzer


def turn_sentiment(
    text: str, adjusted: bool = True, negative_at: float = NEGATIVE_AT, positive_at: float = POSITIVE_AT
) -> TurnSentiment:
    """The tone of one caller turn. ``adjusted=False``: VADER as published (for the bench's comparison)."""
    if adjusted:
        text = _NO_THANKS.sub("", text)
    score = float(_analyzer(adjusted).polarity_scores(text)["compound"]) if text.strip() else 0.0
    if adjusted:
        score -= PHRASE_WEIGHT * sum(1 for _ in _PHRASES.finditer(text.strip()))
    score = round(max(-1.0, min(1.0, score)), 3)
    label = "negative" if score <= negative_at else "positive" if score >= positive_at else "neutral"
    return TurnSentiment(score, label)


@dataclass
class CallMood:
    """A call's mood for the supervisor and the expert: its most negative turn, and the signs of frustration seen."""

    lowest: float = 0.0
    negative_turns: int = 0
    signals: list[str] = field(default_factory=list)

    @property
    def frustrated(self) -> bool:
        """A clearly negative turn, or two signs in what the caller did."""
        return self.lowest <= NEGATIVE_AT or len(self.signals) >= 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "frustrated": self.frustrated,
            "lowest_score": self.lowest,
            "negative_turns": self.negative_turns,
            "signals": list(self.signals),
        }


def call_mood(turns: list[dict[str, Any]], previous_calls_7d: int, person_intents: frozenset[str]) -> CallMood:
    """From a call's turns (each with ``sentiment``, ``intent``, ``decision``) and its number's earlier calls."""
    mood = CallMood()
    scores = [t["sentiment"]["score"] for t in turns if t.get("sentiment")]
    mood.lowest = min(scores, default=0.0)
    mood.negative_turns = sum(1 for t in turns if (t.get("sentiment") or {}).get("label") == "negative")
    if mood.negative_turns:
        mood.signals.append("negative words")
    if any(t.get("intent") in person_intents for t in turns):
        mood.signals.append("asked for a person")
    asked = [t["decision"] for t in turns if str(t.get("decision", "")).startswith(("answer:", "route:"))]
    if len(asked) != len(set(asked)):
        mood.signals.append("asked the same again")
    if previous_calls_7d >= 2:
        mood.signals.append(f"call {previous_calls_7d + 1} in 7 days")
    return mood
