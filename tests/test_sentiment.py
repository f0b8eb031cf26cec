"""Caller sentiment (nlu/sentiment.py): the labelled turns' test half is frozen and measured, never tuned on; a call's
mood comes from its words and from what the caller did."""

import hashlib
import json
from pathlib import Path

import yaml

from nlu.sentiment import call_mood, turn_sentiment

TURNS = Path(__file__).resolve().parents[1] / "nlu" / "sentiment" / "turns.yml"
# The test half as written on 2026-12-04, before the method was chosen on the dev half.
FROZEN_TEST_SHA256 = "e276148e6ff374382fadb97ed16e61bfce394f25bcf2ecf0ac56cb41e5ffbab2"


def _sets() -> dict[str, list[list[str]]]:
    return yaml.safe_load(TURNS.read_text())


def test_the_test_half_is_frozen_and_apart_from_the_dev_half():
    sets = _sets()
    assert hashlib.sha256(json.dumps(sets["test"], ensure_ascii=False).encode()).hexdigest() == FROZEN_TEST_SHA256
    assert not {t for _, t in sets["test"]} & {t for _, t in sets["dev"]}


def test_the_test_half_is_labelled_as_measured():
    """A floor under what bench/sentiment.py measured (0.883 right, negative recall 0.870): a regression fails."""
    turns = _sets()["test"]
    said = [(label, turn_sentiment(text).label) for label, text in turns]
    assert sum(a == b for a, b in said) / len(said) >= 0.85
    negatives = [b for a, b in said if a == "negative"]
    assert sum(b == "negative" for b in negatives) / len(negatives) >= 0.85


def test_the_agencys_own_words_carry_no_feeling():
    assert turn_sentiment("I would like to apply for parental benefit, please.").label == "neutral"
    assert turn_sentiment("I can't take this anymore, nobody helps me.").label == "negative"
    assert turn_sentiment("").as_dict() == {"score": 0.0, "label": "neutral"}


def _turn(decision: str, intent: str, text: str) -> dict:  # type: ignore[type-arg]
    return {"decision": decision, "intent": intent, "sentiment": turn_sentiment(text).as_dict()}


def test_a_calls_mood_from_its_words_and_what_the_caller_did():
    calm = [_turn("answer:payment_dates", "ask_payment_dates", "When is the child allowance paid?")]
    mood = call_mood(calm, previous_calls_7d=0, person_intents=frozenset({"request_human"}))
    assert mood.as_dict() == {"frustrated": False, "lowest_score": 0.0, "negative_turns": 0, "signals": []}

    again = [
        _turn("answer:payment_dates", "ask_payment_dates", "When is the child allowance paid?"),
        _turn("answer:payment_dates", "ask_payment_dates", "When is it paid?"),
        _turn("route:general", "request_human", "Can I talk to a person?"),
    ]
    mood = call_mood(again, previous_calls_7d=2, person_intents=frozenset({"request_human"}))
    assert mood.frustrated and mood.negative_turns == 0, "no angry word, but three signs in what the caller did"
    assert mood.signals == ["asked for a person", "asked the same again", "call 3 in 7 days"]

    angry = [_turn("route:payments_debt", "payment_problem", "This is the third time I call, I'm furious.")]
    mood = call_mood(angry, previous_calls_7d=0, person_intents=frozenset())
    assert mood.frustrated and mood.signals == ["negative words"] and mood.lowest <= -0.25
