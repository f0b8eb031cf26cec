"""The agency's words the recogniser nearly heard, put right (nlu/key_word_repair.py, AsrVocabulary.repair): what is
rewritten, what is left as heard, and the transcript's words that follow."""

import pytest

from nlu.asr_context import AsrVocabulary
from nlu.key_word_repair import KeyWordRepairer, sound_key, tokens_of
from voice.asr.base import Transcript, Word


@pytest.fixture(scope="module")
def vocabulary() -> AsrVocabulary:
    return AsrVocabulary.load("en")


def heard(text: str, *unsure: str, sure: float = 0.95) -> Transcript:
    """``text`` as a recogniser gives it, one timed word per word, ``unsure`` words at confidence 0.4."""
    words = tuple(
        Word(" " + w, 0.4 if w.strip(".,?") in unsure else sure, start=i * 0.5, end=i * 0.5 + 0.4)
        for i, w in enumerate(text.split())
    )
    return Transcript(text=text, confidence=0.8, language="en", audio_s=len(words) * 0.5, words=words)


@pytest.mark.parametrize(
    ("text", "unsure", "expected"),
    [
        ("I have a question about my housing alone.", ("alone",), "I have a question about my housing allowance."),
        ("when is the parent of benefit paid", ("of",), "when is the parental benefit paid"),
        ("I want to apply for sick this benefit", ("this",), "I want to apply for sickness benefit"),
    ],
)
def test_an_agency_word_heard_unsure_as_ordinary_words_is_put_right(vocabulary, text, unsure, expected):
    repaired, repairs = vocabulary.repair(heard(text, *unsure))
    assert repaired.text == expected
    assert len(repairs) == 1 and repairs[0].phrase in expected


def test_words_heard_with_confidence_stay_as_heard(vocabulary):
    for text in ("is my child allowed to work", "I have a question about my housing alone", "I want to apply"):
        transcript = heard(text)
        assert vocabulary.repair(transcript) == (transcript, [])


def test_ordinary_words_unsure_but_nothing_like_an_agency_word_stay_as_heard(vocabulary):
    text = "I want to pay my rent on time"
    transcript = heard(text, *text.split())
    assert vocabulary.repair(transcript) == (transcript, [])


def test_an_agency_word_spelled_apart_is_written_as_one_however_sure(vocabulary):
    repaired, _ = vocabulary.repair(heard("I cannot sign in with bank ID or my E ID"))
    assert repaired.text == "I cannot sign in with BankID or my e-ID"


def test_an_agency_word_already_there_even_in_the_plural_is_left_alone(vocabulary):
    plural = ("my sickness benefits are late", "I applied for parental benefits from my adopted son")
    for text in ("I cannot log in", "the login fails", "my e-ID and my BankID", "my parental benefit is late", *plural):
        transcript = heard(text, *text.split())
        assert vocabulary.repair(transcript) == (transcript, []), text


def test_a_rewritten_span_becomes_one_word_with_its_times_and_least_confidence(vocabulary):
    original = heard("when is the parent of benefit paid", "of")
    repaired, _ = vocabulary.repair(original)
    assert [w.text.strip() for w in repaired.words] == ["when", "is", "the", "parental benefit", "paid"]
    joined = repaired.words[3]
    assert (joined.start, joined.end, joined.confidence) == (original.words[3].start, original.words[5].end, 0.4)
    assert repaired.words[4] == original.words[6]


def test_without_word_confidences_the_transcript_confidence_decides(vocabulary):
    bare = Transcript(text="my housing alone is late", confidence=0.5, language="en", audio_s=2.0)
    assert vocabulary.repair(bare)[0].text == "my housing allowance is late"
    assert vocabulary.repair(Transcript(bare.text, 0.9, "en", 2.0))[0].text == bare.text


def test_the_sound_key_joins_spellings_of_one_sound():
    assert sound_key("Allowance") == sound_key("alowanse")
    assert sound_key("phone") == sound_key("fone")
    assert sound_key("e-ID") == "eid"


def test_two_misheard_agency_words_in_one_turn_are_both_put_right():
    repairer = KeyWordRepairer(["housing allowance", "child allowance"])
    text = "my housing alone and my child allowanse"
    heard = [(w, 0.4 if w in ("alone", "allowanse") else 0.9) for w in text.split(" ")]
    text, repairs, _ = repairer.repair(text, heard)
    assert text == "my housing allowance and my child allowance"
    assert [r.heard for r in repairs] == ["housing alone", "child allowanse"]


def test_words_the_engine_split_are_one_word_of_the_text_with_the_least_confidence():
    # Whisper writes "e-ID" as the words "e" and "-ID".
    words = [("I", 0.9), ("lost", 0.8), ("my", 0.9), ("e", 0.3), ("-ID.", 0.6)]
    tokens = tokens_of("I lost my e-ID.", words, 0.7)
    assert [(t.text, t.confidence, t.heard_as) for t in tokens][-1] == ("e-ID", 0.3, (3, 5))
    # Words that do not spell the text: every word as unsure as the least sure of them.
    assert {t.confidence for t in tokens_of("I lost my e-ID.", [("I", 0.9), ("lust", 0.2)], 0.7)} == {0.2}


def test_a_repair_over_split_words_keeps_the_other_words_and_their_times(vocabulary):
    words = (
        Word(" my", 0.9, 0.0, 0.2),
        Word(" e", 0.5, 0.3, 0.4),
        Word("-ID", 0.5, 0.4, 0.6),
        Word(" is", 0.9, 0.7, 0.8),
    )
    words += (Word(" blocked", 0.9, 0.8, 1.2), Word(" since", 0.9, 1.3, 1.5), Word(" my", 0.9, 1.6, 1.7))
    words += (Word(" sweetness", 0.3, 1.8, 2.3), Word(" benefit", 0.8, 2.3, 2.7))
    text = "my e-ID is blocked since my sweetness benefit"
    repaired, _ = vocabulary.repair(Transcript(text, 0.7, "en", 3.0, words))
    assert repaired.text == "my e-ID is blocked since my sickness benefit"
    assert repaired.words[:-1] == words[:-2]
    assert repaired.words[-1] == Word(" sickness benefit", 0.3, 1.8, 2.7)
