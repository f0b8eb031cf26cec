"""The turn-taking rules (telephony/turn_policy.py): pure functions, no call needed."""

import pytest

from foundation.language import load_language
from foundation.settings import Settings
from telephony.turn_policy import (
    after_nothing_heard,
    is_backchannel,
    is_listening_noise,
    sounds_unfinished,
    went_on_before_reply_heard,
    worth_reading_back,
)

BACKCHANNELS = Settings().turn_taking.backchannels  # the English line's


def test_backchannels_are_listening_noises_only():
    assert is_backchannel("Mhm.", BACKCHANNELS)
    assert is_backchannel("uh-huh, yeah", BACKCHANNELS)
    assert not is_backchannel("yeah but my payment is late", BACKCHANNELS)
    assert not is_backchannel("", BACKCHANNELS)


def test_a_backchannel_is_an_answer_over_a_question_or_a_read_back():
    assert is_listening_noise("mm", "turn-1", 0, 3, BACKCHANNELS)  # over the first of three sentences
    assert not is_listening_noise("mm", "turn-1", 2, 3, BACKCHANNELS)  # over the last ("anything else?")
    assert not is_listening_noise("yeah", "confirm", 0, 2, BACKCHANNELS)  # "Is that right?" -> "yeah" is a yes
    assert not is_listening_noise("mm", None, 0, 0, BACKCHANNELS)  # over nothing: a turn


def test_read_back_only_what_the_nlu_is_unsure_of_and_never_small_talk():
    smalltalk = frozenset({"greet", "deny"})
    assert worth_reading_back("appeal_decision", 0.5, smalltalk, 0.7, 0.6, 0.3)
    assert not worth_reading_back("appeal_decision", 0.9, smalltalk, 0.7, 0.6, 0.3)
    assert not worth_reading_back("deny", 0.3, smalltalk, 0.7, 0.6, 0.3)
    # Barely heard: a sure reading is a guess, read back all the same (small talk still is not)
    assert worth_reading_back("ask_child_allowance", 0.95, smalltalk, 0.7, 0.24, 0.3)
    assert not worth_reading_back("greet", 0.95, smalltalk, 0.7, 0.24, 0.3)


def test_nothing_heard_asks_again_then_offers_the_keypad_then_a_person():
    assert [after_nothing_heard(n, 3, keypad=True) for n in (1, 2, 3)] == ["reprompt", "menu", "handoff"]
    assert [after_nothing_heard(n, 3, keypad=False) for n in (1, 2, 3)] == ["reprompt", "reprompt", "handoff"]
    assert after_nothing_heard(1, 1, keypad=True) == "handoff"


ENDINGS = load_language("en").unfinished_endings


@pytest.mark.parametrize(
    ("text", "last_word_confidence", "unfinished"),
    [
        ("How do I apply for?", 0.9, True),  # the recogniser's question mark does not finish it
        ("I would like to...", 0.9, True),
        ("um", 0.9, True),
        ("I sent my payslip, my contract, and", 0.9, True),
        ("I want to appeal the decision on my panel.", 0.11, True),  # "panel": Whisper finishing the fragment
        ("I want to appeal the decision on my pension.", 0.93, False),
        ("What are your opening hours?", 0.9, False),
        # The recogniser heard the speech trail off, or a word broken off.
        ("Can you tell me how long it...", 0.9, True),
        ("Can you tell me how long it\u2026", 0.9, True),
        ("When do you pay the sh-", 0.9, True),
        ("I need the e-ID login.", 0.9, False),  # a hyphen inside a word finishes nothing
        ("...", 0.9, False),  # no words
        ("I need a new bank account form", 0.2, False),  # unsure of its last word, but "account" can end a turn
        # Callers read numbers out in groups, pausing between them; "in": "is" as the recogniser heard it.
        ("My personal number in 850,", 0.9, True),
        ("my account number is 8327-9,", 0.9, True),
        ("I got 3", 0.9, False),  # a number no such words introduce
        ("call me on 070", 0.9, False),
        ("", 1.0, False),
    ],
)
def test_words_that_stop_where_a_sentence_cannot_end_sound_unfinished(text, last_word_confidence, unfinished):
    assert sounds_unfinished(text, ENDINGS, last_word_confidence) is unfinished


def test_every_language_says_which_words_leave_a_sentence_open():
    assert "för" in load_language("sv").unfinished_endings and "for" in ENDINGS


@pytest.mark.parametrize(
    ("spoke_at_ms", "reply_started_ms", "taken_back"),
    [
        (1900, None, True),  # the caller goes on before the reply's first frame: it was never heard
        (1900, 1700, True),  # 200 ms of it heard: the two started at once, and the assistant yields
        (2100, 1700, True),  # exactly the 400 ms it may have been heard
        (2120, 1700, False),  # more: the reply stands, and what the caller says now is a turn of its own
        (2600, None, False),  # past the 1.5 s wait after the words: a new turn, even before the reply
        (1000, None, False),  # not after the words' end (a start the line saw before them)
    ],
)
def test_a_reply_is_taken_back_only_for_a_caller_who_goes_on_before_hearing_much_of_it(
    spoke_at_ms, reply_started_ms, taken_back
):
    # The words ended at 1000 ms (stream time); the words wait is 1500 ms, the reply may have been heard 400 ms.
    assert went_on_before_reply_heard(spoke_at_ms, 1000, reply_started_ms, 1500, 400) is taken_back
    assert not went_on_before_reply_heard(spoke_at_ms, 1000, reply_started_ms, 0, 400)  # the wait off: never
