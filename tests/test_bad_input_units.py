"""Bad input on the line, as pure units: noise the recogniser wrote words for is told apart from a caller's words,
and the pieces of a turn longer than the longest utterance are joined into one transcript."""

import numpy as np
import pytest

from nlu.asr_context import AsrVocabulary
from telephony.guards import echoes_prompt, heard_noise
from voice.asr.base import Transcript, Word, join_transcripts
from voice.codecs import TELEPHONE_RATE
from voice.line_conditions import NOISES_ALONE, noise_alone

PROMPT = AsrVocabulary.load("en").prompt  # the domain prompt every turn is recognised with


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        ("I'm calling about my parental benefit, child allowance.", True),  # Whisper on babble, biased by the prompt
        ("parental benefit, sickness benefit, housing allowance", True),
        ("I'm calling about my parental benefit, I'm calling about my parental benefit. Okay.", True),  # babble
        # Hiss, in a call under load (CI, 2026-12-06): the prompt's words in another order, answered as a question
        ("I'm calling about my parental benefit, child allowance and child allowance.", True),
        ("I'm calling about my child allowance, when is it paid?", False),  # a caller who starts like the prompt
        ("When is the housing allowance paid out?", False),
        ("benefit", False),  # too short to tell
    ],
)
def test_an_echo_of_the_prompt_is_told_from_a_caller_using_the_same_words(text, echo):
    assert echoes_prompt(text, PROMPT) is echo
    assert echoes_prompt(text, None) is False


@pytest.mark.parametrize(
    ("text", "confidence", "no_speech", "noise"),
    [
        ("Thank you. We'll see you next week.", 0.37, 0.57, True),  # unsure words where the engine heard no speech
        ("No, no, no, no, no, no, no, no.", 0.54, 0.2, True),  # a loop
        ("Yeah, yeah, yeah, yeah, yeah.", 0.6, 0.65, True),
        # Hiss in a CI call, at the 15 s window: a phrase looped after other words (no_speech not recorded)
        ("Three five, six, child allowance, child allowance, child allowance.", 0.24, 0.3, True),
        ("My child allowance, my child allowance is late again.", 0.5, 0.1, False),  # said twice: a caller
        ("no no no that's wrong", 0.5, 0.2, False),  # a caller saying no
        ("When is it paid, when is it paid, when is it paid?", 0.9, 0.05, False),  # surely heard: said so
        ("I have been waiting for my money and nobody tells me " * 3, 0.5, 0.1, False),  # a caller repeating himself
        ("I'm calling about my parental benefit, child allowance.", 0.45, 0.3, True),  # an unsure echo of the prompt
        ("I'm calling about my parental benefit, child allowance.", 0.9, 0.05, False),  # said, and heard surely
        ("When is the child allowance paid?", 0.45, 0.1, False),  # unsure, but speech: the read-back deals with it
        ("yes", 0.3, 0.45, False),
    ],
)
def test_noise_read_as_words_is_not_a_request(text, confidence, no_speech, noise):
    assert heard_noise(text, confidence, no_speech, PROMPT) is noise


def test_the_pieces_of_a_long_turn_are_one_transcript_in_order():
    first = Transcript("My landlord raised the rent", 0.9, "en", 20.0, (Word("My", 0.9), Word("landlord", 0.8)), 0.1)
    empty = Transcript("", 0.0, "en", 1.0, no_speech=1.0)
    last = Transcript("so when is the housing allowance paid?", 0.6, "en", 5.0, (Word("so", 0.7),), 0.2)
    whole = join_transcripts([first, empty, last])
    assert whole.text == "My landlord raised the rent so when is the housing allowance paid?"
    assert whole.audio_s == 26.0
    assert whole.confidence == pytest.approx((0.9 * 20 + 0.6 * 5) / 25, abs=1e-3)  # weighted by speech, not by pieces
    assert [w.text for w in whole.words] == ["My", "landlord", "so"]
    assert whole.no_speech == 0.1
    assert join_transcripts([last]) is last


@pytest.mark.parametrize("kind", NOISES_ALONE)
def test_noise_alone_is_as_loud_as_the_speech_it_stands_in_for(kind):
    t = np.arange(TELEPHONE_RATE * 2) / TELEPHONE_RATE
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    noise = noise_alone(kind, speech, seed=7)
    assert len(noise) == len(speech)
    voiced = speech[np.abs(speech) > 0.006]
    level_db = 20 * np.log10(np.sqrt(np.mean(noise**2)) / np.sqrt(np.mean(voiced**2)))
    assert -3.0 < level_db < 1.0  # as loud as the voiced speech, less what G.711 and the clipping take
    assert np.array_equal(noise, noise_alone(kind, speech, seed=7))
    with pytest.raises(ValueError, match="unknown noise"):
        noise_alone("hum", speech, seed=7)
