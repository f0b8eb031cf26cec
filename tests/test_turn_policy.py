"""The turn-taking rules (telephony/turn_policy.py): pure functions, no call needed."""

from foundation.settings import Settings
from telephony.turn_policy import after_nothing_heard, is_backchannel, is_listening_noise, worth_reading_back

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
    assert worth_reading_back("appeal_decision", 0.5, smalltalk, 0.7)
    assert not worth_reading_back("appeal_decision", 0.9, smalltalk, 0.7)
    assert not worth_reading_back("deny", 0.3, smalltalk, 0.7)


def test_nothing_heard_asks_again_then_offers_the_keypad_then_a_person():
    assert [after_nothing_heard(n, 3, keypad=True) for n in (1, 2, 3)] == ["reprompt", "menu", "handoff"]
    assert [after_nothing_heard(n, 3, keypad=False) for n in (1, 2, 3)] == ["reprompt", "reprompt", "handoff"]
    assert after_nothing_heard(1, 1, keypad=True) == "handoff"
