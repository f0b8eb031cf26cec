"""End of turn in the call session, on fakes driven by stream time: a pause the end-of-turn model calls incomplete
keeps the turn whole, one it calls complete ends the turn at once, and a model fault falls back to the silence rule
for the rest of the call. The real model on real speech: tests/test_end_of_turn.py."""

import numpy as np
import pytest
from fakes import FakeCall, FakeEndOfTurn, Reply, ScriptedDialogue, telephone_frames

from foundation.settings import Settings
from voice.codecs import TELEPHONE_RATE, read_audio

SCRIPT = {
    "i would like to speak to a person": Reply("request_human", "route:general", "I'm putting you through."),
    "i would like to": Reply("out_of_scope", "smalltalk:out_of_scope", "I can't help with that."),
}


@pytest.fixture(scope="module")
def speech(real_recordings) -> list[bytes]:
    path, _ = real_recordings["ps_goforward"]
    return telephone_frames(read_audio(path, TELEPHONE_RATE))


def the_caller_pauses_mid_sentence(line: FakeCall) -> None:
    """What the recogniser hears: the whole request from a long utterance, its first half from a short one."""
    line.asr.hearing = lambda seconds: "I would like to speak to a person" if seconds > 2.0 else "I would like to"


def smart_turn_settings() -> Settings:
    return Settings(end_of_turn={"engine": "smart_turn", "model_path": "unused-by-the-fake.onnx"})  # type: ignore[arg-type]


async def paused_call(line: FakeCall, speech: list[bytes], pause_s: float) -> None:
    await line.reply()
    the_caller_pauses_mid_sentence(line)
    half = len(speech) // 2
    await line.say(speech[:half])
    await line.silence(pause_s)
    await line.say(speech[half:])
    await line.until(lambda: bool(line.session.record.turns) and bool(line.session.record.turns[-1].decision))
    await line.silence(3.0)


async def test_a_pause_the_model_calls_incomplete_keeps_the_turn_whole(speech):
    model = FakeEndOfTurn(probability=0.1)
    async with FakeCall(ScriptedDialogue(dict(SCRIPT)), smart_turn_settings(), end_of_turn=model) as line:
        await paused_call(line, speech, pause_s=1.0)
    record = line.session.record
    assert [t.decision for t in record.turns] == ["route:general"]  # one turn: the request, not its first half
    assert model.asked and record.semantic_endpoints == 0


async def test_the_same_pause_cuts_the_turn_in_two_under_the_silence_rule_alone(speech):
    """Without the unfinished-words wait (tests/test_call_session.py has the line with it)."""
    alone = Settings(turn_taking={"unfinished_wait_ms": 0})
    async with FakeCall(ScriptedDialogue(dict(SCRIPT)), alone) as line:
        await paused_call(line, speech, pause_s=1.0)
    assert [t.decision for t in line.session.record.turns][:1] == ["smalltalk:out_of_scope"]


async def test_a_pause_the_model_calls_complete_ends_the_turn_before_the_silence_rule_would(speech):
    model = FakeEndOfTurn(probability=0.9)
    async with FakeCall(ScriptedDialogue(dict(SCRIPT)), smart_turn_settings(), end_of_turn=model) as line:
        await line.reply()
        line.asr.hearing = lambda seconds: "I would like to speak to a person"
        await line.say(speech)
        spoken_until = line.ms
        await line.until(lambda: bool(line.session.record.turns) and bool(line.session.record.turns[-1].decision))
        decided_at = line.ms
    record = line.session.record
    assert record.semantic_endpoints == 1 and [t.decision for t in record.turns] == ["route:general"]
    assert decided_at - spoken_until < Settings().vad.end_silence_ms  # sooner than 700 ms of silence


async def test_after_held_unfinished_words_the_model_hears_the_whole_turn_so_far(speech):
    """The model calls every pause complete, so the first part ends at once; its words stop mid-sentence, so they
    are held; at the next pause the model is asked about the held part and the rest together."""
    model = FakeEndOfTurn(probability=0.9)
    async with FakeCall(ScriptedDialogue(dict(SCRIPT)), smart_turn_settings(), end_of_turn=model) as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to" if s < 1.6 else "speak to a person"
        await line.say(speech[:50])
        await line.silence(1.0)
        await line.say(speech)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.dialogue.respond_texts == ["I would like to speak to a person"], "one turn"
    assert [t.decision for t in record.turns] == ["route:general"] and record.semantic_endpoints >= 1
    assert [e["text"] for e in line.events("turn_unfinished")] == ["I would like to"]
    first, last = model.heard[0], model.heard[-1]
    assert len(model.heard) >= 2 and len(last) > len(first)
    assert np.array_equal(last[: len(first)], first), "the last question began with the held words' audio"


async def test_a_model_fault_falls_back_to_the_silence_rule_and_the_caller_is_answered(speech):
    model = FakeEndOfTurn()
    model.fail = True
    async with FakeCall(ScriptedDialogue(dict(SCRIPT)), smart_turn_settings(), end_of_turn=model) as line:
        await line.reply()
        line.asr.hearing = lambda seconds: "I would like to speak to a person"
        await line.say(speech)
        await line.until(lambda: bool(line.session.record.turns) and bool(line.session.record.turns[-1].decision))
    assert line.events("end_of_turn_failed")
    assert [t.decision for t in line.session.record.turns] == ["route:general"]
    assert len(model.asked) == 1  # not asked again in this call


async def test_barge_in_and_no_input_work_with_the_model_on(speech):
    script = dict(SCRIPT) | {
        "what are your opening hours": Reply(
            "ask_opening_hours",
            "answer:opening_hours",
            "Our phone lines are open weekdays from eight to six. On Saturdays we are closed. Is there anything else?",
        )
    }
    async with FakeCall(ScriptedDialogue(script), smart_turn_settings(), end_of_turn=FakeEndOfTurn(0.9)) as line:
        await line.reply()
        await line.caller_says("What are your opening hours?", speech)
        await line.until(lambda: line.transport.playing)
        await line.caller_says("I would like to speak to a person", speech)  # over the answer
        await line.until(lambda: line.session.finished.is_set())
    assert line.events("barge_in") and line.transport.clears == 1
    async with FakeCall(ScriptedDialogue(script), smart_turn_settings(), end_of_turn=FakeEndOfTurn(0.9)) as line:
        await line.reply()
        await line.until(lambda: bool(line.events("no_input")), max_s=Settings().turn_taking.no_input_timeout_s + 2)
