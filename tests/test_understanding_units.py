"""Pure units of the understanding evaluation and the never-dismiss policy: verdicts, agency words, the recogniser's
context, and the simulated phone line."""

import dataclasses

import numpy as np
import pytest

from dialogues.policy import concerns_agency, likeliest_matters
from foundation.language import load_language
from foundation.routing_table import RoutingTable
from helpline.understanding import Judged, Scores, judge, wilson_interval
from nlu.asr_context import AsrContextError, AsrVocabulary
from nlu.caller_turns import SETS, CallerTurn, CallerTurnsError, load_turns, turns_of_rows
from voice.codecs import TELEPHONE_RATE
from voice.line_conditions import CLEAN, FRAME, LineCondition, apply, degraded

ROUTING = RoutingTable.load()


def turn(intent: str, also: tuple[str, ...] = ()) -> CallerTurn:
    return CallerTurn("t", intent, "plain", "some words", also)


@pytest.mark.parametrize(
    ("intent", "also", "decision", "verdict"),
    [
        ("ask_payment_dates", (), "answer:payment_dates", "right"),
        ("ask_payment_dates", ("ask_opening_hours",), "answer:opening_hours", "right"),  # two requests, either one
        ("payment_problem", (), "clarify:payment_problem", "asked_back"),
        ("payment_problem", (), "confirm:asr", "asked_back"),
        ("payment_problem", (), "smalltalk:out_of_scope", "dismissed"),
        ("payment_problem", (), "answer:payment_dates", "wrong_action"),
        ("payment_problem", (), "route:general", "wrong_action"),
        ("payment_problem", (), "clarify:rephrase", "asked_back"),  # "please say it again" is not a dismissal
        ("out_of_scope", (), "smalltalk:out_of_scope", "right"),
        ("out_of_scope", (), "clarify:rephrase", "right"),  # told what the line can help with, either way
        ("out_of_scope", (), "answer:opening_hours", "wrong_action"),
        ("thanks", (), "smalltalk:goodbye", "other"),
        ("request_human", (), "route:general", "right"),
    ],
)
def test_a_decision_is_judged_as_the_caller_experiences_it(intent, also, decision, verdict):
    assert judge(turn(intent, also), decision, ROUTING) == verdict


def test_scores_count_dismissals_as_wrong_actions_and_benefit_problems_apart():
    judged = [
        Judged(turn("payment_problem"), "v", "clean", "", "smalltalk:out_of_scope", "dismissed"),
        Judged(turn("request_human"), "v", "clean", "", "smalltalk:out_of_scope", "dismissed"),
        Judged(turn("ask_login_help"), "v", "clean", "", "answer:login_help", "right", ("e-id",), ("e-id",)),
        Judged(turn("ask_login_help"), "v", "clean", "", "confirm:asr", "asked_back", ("bankid",), ()),
        Judged(turn("ask_opening_hours"), "v", "clean", "", "", "other"),
    ]
    scores = Scores.of(judged, ROUTING)
    assert (scores.right, scores.asked_back, scores.wrong_action, scores.other) == (0.2, 0.2, 0.4, 0.2)
    assert scores.dismissed_benefit_problems == 1  # asking for a person is not a benefit problem
    assert scores.key_word_recall == 0.5
    low, high = scores.right_interval  # one of five right
    assert low < 0.2 < high and (round(low, 3), round(high, 3)) == (0.036, 0.624)


def test_saved_rows_of_another_dev_set_are_refused_though_their_ids_exist_there():
    trainer, dev = SETS["trainer"], SETS["dev"]
    first = load_turns(trainer)[0]
    assert first.id in {t.id for t in load_turns(dev)}  # the dev sets' ids repeat across files
    assert turns_of_rows(trainer, [(first.id, trainer.name)])[first.id] == first
    assert turns_of_rows(trainer, [(first.id, "")])[first.id] == first  # rows saved before they named their set
    with pytest.raises(CallerTurnsError, match="the rows are of trainer.yml, not of"):
        turns_of_rows(dev, [(first.id, trainer.name)])
    with pytest.raises(CallerTurnsError, match="does not hold .no-such-turn"):
        turns_of_rows(dev, [("no-such-turn", "")])


def test_the_interval_of_a_share_right_is_wilsons():
    # Published values of the 95 % Wilson score interval: 5 of 10 -> 0.237-0.763, 0 of 10 -> 0-0.278.
    assert tuple(round(x, 3) for x in wilson_interval(5, 10)) == (0.237, 0.763)
    assert tuple(round(x, 3) for x in wilson_interval(0, 10)) == (0.0, 0.278)
    assert tuple(round(x, 3) for x in wilson_interval(10, 10)) == (0.722, 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing counted: nothing known


# Written for this test, apart from every data set: callers describing a problem with the agency's matters.
BENEFIT_PROBLEMS = [
    "the money you sent me was less than last month",
    "i've had a letter from you and i don't understand it",
    "my landlord says the allowance should be higher",
    "you want eleven thousand back from me",
    "the e-id thing on my pages just spins",
    "they refused my claim and i think it's unfair",
    "someone used my personal number",
    "i was ill all of october and my boss won't pay",
    "nothing has come into my account since the decision",
    "the pension part of my payment is missing",
]
NOT_THE_AGENCY = [
    "can you book me a haircut",
    "what's the capital of norway",
    "is the swimming pool open today",
    "play some music",
]


@pytest.mark.parametrize("text", BENEFIT_PROBLEMS)
def test_a_turn_about_the_agencys_matters_is_never_out_of_scope(text):
    assert concerns_agency(text)


@pytest.mark.parametrize("text", NOT_THE_AGENCY)
def test_a_turn_about_nothing_of_the_agency_may_be_out_of_scope(text):
    assert not concerns_agency(text)


def test_the_likeliest_matters_are_those_the_assistant_can_name():
    ranking = [{"name": "out_of_scope"}, {"name": "payment_problem"}, {"name": "greet"}, {"name": "housing_repayment"}]
    matters = load_language("en").dialogue.matters
    assert likeliest_matters(ranking, matters) == ["payment_problem", "housing_repayment"]


def test_the_recogniser_context_names_the_agencys_words_and_the_question():
    vocabulary = AsrVocabulary.load("en")
    for name in ("parental benefit", "sickness benefit", "housing allowance", "child allowance", "e-ID"):
        assert name in vocabulary.prompt
    assert vocabulary.context("Is that right?").prompt == vocabulary.prompt  # measured: the question hurts (English)
    asking = dataclasses.replace(vocabulary, with_question=True)
    assert asking.context("Is that right?").prompt == f"{vocabulary.prompt} Is that right?"
    assert vocabulary.key_words_in("The E-ID login failed; my Housing Allowance") == [
        "housing allowance",
        "e-id",
        "log in",  # "log in" and "login" are listed both: one word, as first listed
    ]
    assert vocabulary.key_words_kept("my housing allowance and e-ID login", "my housing alone and e-ID login") == (3, 2)
    assert vocabulary.key_words_kept("I can't log in", "I can't login") == (1, 1)
    with pytest.raises(AsrContextError, match="'xx'"):
        AsrVocabulary.load("xx")
    assert AsrVocabulary.load_if_any("xx") is None  # a language without biasing data: its line starts unbiased


def tone(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * TELEPHONE_RATE)) / TELEPHONE_RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


@pytest.mark.parametrize("noise", ["pink", "street", "babble"])
def test_a_degraded_line_has_the_noise_level_it_names(noise):
    speech = tone()
    condition = LineCondition("degraded", snr_db=15.0, noise=noise)
    heard = apply(speech, condition, seed=3)
    clean = apply(speech, CLEAN, seed=3)
    voiced = np.abs(speech) > 0.02 * np.abs(speech).max()
    snr = 10 * np.log10(np.mean(clean[voiced] ** 2) / np.mean((heard - clean)[voiced] ** 2))
    assert 13.0 <= snr <= 17.0  # G.711's own quantisation noise is in both


def test_a_degraded_line_loses_frames_and_changes_the_level_as_drawn():
    speech = tone(10.0)
    condition = LineCondition("degraded", level_db=-10.0, frame_loss=0.03)
    heard = apply(speech, condition, seed=5)
    frames = heard[: len(heard) // FRAME * FRAME].reshape(-1, FRAME)
    lost = np.mean(~frames.any(axis=1))
    assert 0.01 <= lost <= 0.06
    kept = frames[frames.any(axis=1)]
    original = speech[: len(heard) // FRAME * FRAME].reshape(-1, FRAME)[frames.any(axis=1)]
    assert np.sqrt(np.mean(kept**2)) / np.sqrt(np.mean(original**2)) == pytest.approx(10 ** (-10 / 20), rel=0.1)


def test_degraded_lines_are_drawn_within_a_real_lines_ranges_and_repeatably():
    lines = [degraded(seed) for seed in range(200)]
    assert lines[7] == degraded(7)
    assert all(10 <= c.snr_db <= 20 and -10 <= c.level_db <= 10 for c in lines if c.snr_db is not None)
    assert all(0.85 <= c.rate <= 1.2 and 0.01 <= c.frame_loss <= 0.03 for c in lines)
    assert {c.noise for c in lines} == {"pink", "street", "babble"}
