"""The call session on fakes (tests/fakes.py), driven by stream time: turn-taking without Rasa, models or sockets.

The session is the real one, with its real WebRTC VAD hearing real recorded speech; the recogniser's words and the
dialogue's decisions are scripted, so each test says exactly what the caller said and what the dialogue decided.
"""

import asyncio

import numpy as np
import pytest
from fakes import FakeCall, Reply, ScriptedDialogue, telephone_frames

from foundation.language import load_language
from foundation.settings import Settings
from telephony.routing import KeypadMenu
from telephony.transport import is_holding_mark
from voice.codecs import TELEPHONE_RATE, read_audio
from voice.line_conditions import noise_alone

SAY = load_language("en").prompts

SCRIPT = {
    "what are your opening hours": Reply(
        "ask_opening_hours",
        "answer:opening_hours",
        "Our phone lines are open weekdays from eight to six. On Saturdays we are closed. Is there anything else?",
    ),
    "i want to appeal the decision": Reply("appeal_decision", "route:appeals", "I'm putting you through.", 0.5),
    "yes": Reply("affirm", "smalltalk:affirm", "Okay."),
    "no": Reply("deny", "smalltalk:deny", "Okay."),
    "i would like to speak to a person": Reply("request_human", "route:general", "I'm putting you through."),
    "i would like to": Reply("out_of_scope", "smalltalk:out_of_scope", "I can't help with that."),
    "mhm": Reply("affirm", "smalltalk:affirm", "Okay."),
}


@pytest.fixture(scope="module")
def speech(real_recordings) -> list[bytes]:
    """About two seconds of a real person speaking, as the caller's phone sends it."""
    path, _ = real_recordings["ps_goforward"]
    audio = read_audio(path, TELEPHONE_RATE)
    return telephone_frames(audio)


def call(settings: Settings | None = None, keypad: KeypadMenu | None = None) -> FakeCall:
    return FakeCall(ScriptedDialogue(dict(SCRIPT)), settings, keypad)


async def test_a_question_is_answered_and_the_caller_hears_the_answer(speech):
    async with call() as line:
        await line.reply()
        assert line.voice.said[:2] == ScriptedDialogue.greeting  # sentence by sentence
        await line.caller_says("What are your opening hours?", speech)
        await line.reply()
    record = line.session.record
    assert [t.decision for t in record.turns] == ["answer:opening_hours"]
    assert line.dialogue.respond_texts == ["What are your opening hours?"]
    assert record.said[-1] == SCRIPT["what are your opening hours"].reply
    assert record.turns[0].response_ms is not None and record.turns[0].response_ms >= 0
    assert record.outcome == "answered:opening_hours"
    assert [t.index for t in line.turns] == [1]  # the store was told of the turn once it was decided


async def test_speech_over_an_answer_stops_it_and_is_a_turn(speech):
    async with call() as line:
        await line.reply()
        line.asr.hearing = lambda s: "What are your opening hours?"
        await line.say(speech[:10])  # the caller starts; the first words of the answer start playing on its end
        await line.say(speech[10:])
        await line.until(lambda: line.transport.playing)
        await line.silence(0.3)
        await line.caller_says("I would like to speak to a person", speech)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.transport.clears == 1, "the answer's audio still buffered at Twilio was dropped"
    (barge_in,) = line.events("barge_in")
    assert barge_in["prompt"] == "turn-1"
    assert record.turns[0].interrupted is not None
    assert [t.decision for t in record.turns] == ["answer:opening_hours", "route:general"]
    assert record.handoff is not None and record.handoff.queue == "general"


async def test_a_backchannel_over_an_answer_lets_it_go_on(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("What are your opening hours?", speech)
        await line.until(lambda: line.transport.playing)
        line.asr.hearing = lambda s: "Mhm."
        await line.say(speech)  # long enough to stop the answer; then heard as listening, not a turn
        await line.reply()
    record = line.session.record
    assert line.events("backchannel") and line.events("resumed")
    assert [t.decision for t in record.turns] == ["answer:opening_hours"], "the backchannel was not a turn"
    assert record.said[-1].startswith("On Saturdays") or "Is there anything else?" in record.said[-1]


async def test_an_uncertain_transcript_is_read_back_and_a_yes_acts_on_it(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("I want to appeal the decision", speech, confidence=0.5)
        await line.reply()
        assert line.session.record.said[-1] == SAY.confirm.format(text="I want to appeal the decision")
        await line.caller_says("Yes.", speech)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert [t.decision for t in record.turns] == ["confirm:asr", "route:appeals"]
    assert record.turns[1].confirms_turn == 1
    assert line.dialogue.respond_texts == ["I want to appeal the decision"], "the dialogue saw the read-back words"
    assert record.handoff is not None and record.handoff.queue == "appeals"


async def test_an_agency_word_heard_unsure_reaches_the_dialogue_put_right_and_the_record_says_so(speech):
    paid = Reply("ask_payment_dates", "answer:payment_dates", "On the 20th.")
    script = {**SCRIPT, "when is my housing allowance paid": paid}
    async with FakeCall(ScriptedDialogue(script)) as line:
        await line.reply()
        await line.caller_says("When is my housing alone paid?", speech, confidence=0.6)  # no word confidences
        await line.reply()
    assert line.dialogue.respond_texts == ["When is my housing allowance paid?"]
    assert line.session.record.turns[0].transcript == "When is my housing allowance paid?"
    assert line.events("key_words_repaired")[0]["words"] == [{"heard": "housing alone", "written": "housing allowance"}]
    assert line.session.record.turns[0].decision == "answer:payment_dates"


async def test_words_barely_heard_are_read_back_even_when_the_dialogue_is_sure_of_them(speech):
    paid = Reply("ask_payment_dates", "answer:payment_dates", "On the 20th.")  # the NLU is sure (0.95)
    script = {**SCRIPT, "when is my housing allowance paid": paid}
    async with FakeCall(ScriptedDialogue(script)) as line:
        await line.reply()
        await line.caller_says("When is my housing allowance paid?", speech, confidence=0.25)
        await line.reply()
    assert line.session.record.said[-1] == SAY.confirm.format(text="When is my housing allowance paid")
    assert [t.decision for t in line.session.record.turns] == ["confirm:asr"]


async def test_with_key_word_repair_off_the_words_as_heard_are_read_back(speech):
    settings = Settings(asr={"key_word_repair": False})
    async with call(settings) as line:
        await line.reply()
        await line.caller_says("When is my housing alone paid?", speech, confidence=0.5)
        await line.reply()
    assert line.session.record.said[-1] == SAY.confirm.format(text="When is my housing alone paid")
    assert line.events("key_words_repaired") == []


async def test_a_no_to_the_read_back_asks_again_and_anything_else_is_a_new_request(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("I want to appeal the decision", speech, confidence=0.5)
        await line.reply()
        await line.caller_says("No.", speech)
        await line.reply()
        assert line.session.record.said[-1] == SAY.confirm_denied
        await line.caller_says("I want to appeal the decision", speech, confidence=0.5)
        await line.reply()
        await line.caller_says("What are your opening hours?", speech)
        await line.reply()
    decisions = [t.decision for t in line.session.record.turns]
    assert decisions == ["confirm:asr", "confirm:denied", "confirm:asr", "answer:opening_hours"]


async def test_silence_is_asked_about_twice_then_the_caller_goes_to_a_person():
    settings = Settings(turn_taking={"no_input_timeout_s": 2.0})
    async with call(settings) as line:
        await line.until(lambda: line.session.finished.is_set(), max_s=40)
    record = line.session.record
    assert [e["count"] for e in line.events("no_input")] == [1, 2, 3]
    assert record.said.count(SAY.no_input_reprompt) == 2  # no keypad menu on this line
    assert record.said[-1] == SAY.no_input_handoff
    assert record.handoff is not None and record.handoff.queue == "general" and not record.handoff.fault


async def test_a_dialogue_fault_is_apologised_for_and_the_caller_goes_to_a_person(speech):
    async with call() as line:
        await line.reply()
        line.dialogue.fail_respond = True
        await line.caller_says("What are your opening hours?", speech)
        await line.until(lambda: line.session.finished.is_set())
        await line.until(lambda: not line.transport.playing)
    record = line.session.record
    assert record.handoff is not None and record.handoff.queue == "general" and record.handoff.fault
    assert record.outcome == "failed"
    assert record.turns[0].error.startswith("nlu:")
    assert line.transport.played_ms >= 800 // 8, "the caller heard the apology"


async def test_a_recognition_fault_is_apologised_for_and_the_caller_goes_to_a_person(speech):
    async with call() as line:
        await line.reply()
        line.asr.fail = True
        await line.say(speech)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert record.handoff is not None and record.handoff.fault and record.turns[0].error.startswith("asr:")


# In wall time, as on a real line.
HOLDING = Settings(turn_taking={"hold_after_s": 0.2, "reply_limit_s": 60.0})
SLOW_LINE = Settings(turn_taking={"hold_after_s": 0.2, "reply_limit_s": 0.6})


async def test_a_reply_slow_to_come_is_preceded_by_the_holding_phrase(speech):
    async with call(HOLDING) as line:
        await line.reply()
        line.asr.released.clear()  # the recogniser is slow: the caller waits longer than hold_after_s for words
        await line.caller_says("What are your opening hours?", speech)
        await line.until(lambda: bool(line.events("holding")))
        line.asr.released.set()
        await line.reply()
    record = line.session.record
    [holding] = line.events("holding")
    assert holding["waited_ms"] >= 200  # from the end of the caller's speech
    echoed = line.transport.marks_echoed
    [phrase] = [i for i, mark in enumerate(echoed) if is_holding_mark(mark)]
    reply = [i for i, mark in enumerate(echoed) if mark.startswith("turn-1.")]
    assert reply and phrase < reply[0], f"the caller heard the phrase, then the reply: {echoed}"
    assert record.said[-2:] == [SAY.holding, SCRIPT["what are your opening hours"].reply]
    assert [t.decision for t in record.turns] == ["answer:opening_hours"] and record.handoff is None


async def test_a_caller_asked_to_hold_on_is_asked_again_when_no_words_came(speech):
    """A cough or a click the recogniser was slow to find no words in: after "One moment, please." the caller is not
    left waiting for a reply that will not come."""
    async with call(HOLDING) as line:
        await line.reply()
        line.asr.released.clear()
        await line.caller_says("", speech)  # heard as no words at all
        await line.until(lambda: bool(line.events("holding")))
        line.asr.released.set()
        await line.reply()
    record = line.session.record
    assert line.events("no_words") and record.said[-2:] == [SAY.holding, SAY.not_caught_reprompt]
    assert record.turns == [] and line.dialogue.respond_texts == []


async def test_nothing_is_said_over_a_caller_who_goes_on_while_their_words_are_slow_to_come(speech):
    """The words before a pause are still being recognised when the holding phrase is due, but the caller has gone
    on talking: the phrase waits until they stop (played in real time here, as the phrase's clock is the wall's)."""
    pause = [b"\xff" * 160] * 50  # 1 s: the first part ends as an utterance of its own (700 ms)
    rest = speech[25:]  # 1.5 s from the recording's first word: the phrase falls due while the caller says it
    async with call(Settings(turn_taking={"hold_after_s": 1.5, "reply_limit_s": 60.0})) as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to speak" if s < 1.6 else "to a person"
        line.asr.released.clear()
        for frame in speech[:50] + pause + rest:
            await line.frame(frame)
            await asyncio.sleep(0.02)
        talked_until_ms = line.ms
        await line.until(lambda: bool(line.events("holding")))
        line.asr.released.set()
        await line.until(lambda: line.session.finished.is_set())
    [holding] = line.events("holding")
    assert holding["at_ms"] >= talked_until_ms, "the phrase came after the caller stopped, not over them"
    assert line.dialogue.respond_texts == ["I would like to speak to a person"]


async def test_the_holding_phrase_counts_the_wait_from_the_end_of_the_greeting_for_speech_said_over_it(speech):
    """Words said over the greeting's disclosure (not to be cut) are handled once it has played: the caller has been
    listening meanwhile, not waiting in silence, so a reply that comes at once is not preceded by "One moment"."""
    dialogue = ScriptedDialogue(dict(SCRIPT))
    dialogue.greeting = [" ".join(["Hello, you are talking to an automated assistant."] * 8), "How can I help you?"]
    async with FakeCall(dialogue, HOLDING) as line:
        await line.silence(0.2)
        await line.caller_says("What are your opening hours?", speech)  # over the 6 s disclosure
        await line.silence(1.0)  # the utterance has ended; the disclosure plays on
        await asyncio.sleep(0.5)  # wall time longer than hold_after_s since the caller stopped
        await line.reply()  # the greeting
        greeting_heard_ms = line.ms
        await line.reply()  # the answer
    assert not line.events("holding")
    [turn] = line.session.record.turns
    assert turn.decision == "answer:opening_hours" and turn.speech_end_ms < greeting_heard_ms - 2000


async def test_the_noise_of_the_line_as_the_call_starts_is_not_heard_as_words(real_recordings):
    """Hiss from the call's first frame: WebRTC VAD hears speech before the noise floor is known (500 ms), and
    Whisper writes words for such noise ("Thank you."). Not one frame of it stands out of the floor: no turn."""
    path, _ = real_recordings["ps_librivox_0870"]
    hiss = telephone_frames(noise_alone("hiss", read_audio(path, TELEPHONE_RATE)[: 3 * TELEPHONE_RATE], seed=5))
    async with call() as line:
        line.asr.hearing = lambda seconds: "Thank you."
        await line.say(hiss)
        await line.reply()
    [noise] = line.events("no_words")
    assert noise["line_noise"] and noise["started_ms"] == 0
    assert line.session.record.turns == [] and line.dialogue.respond_texts == []


@pytest.mark.parametrize("stuck", ["recognition", "dialogue"])
async def test_no_reply_within_the_limit_puts_the_caller_through_to_a_person_saying_so(speech, stuck):
    async with call(SLOW_LINE) as line:
        await line.reply()
        waiting = line.asr.released if stuck == "recognition" else line.dialogue.released
        waiting.clear()
        try:
            await line.caller_says("What are your opening hours?", speech)
            await line.until(lambda: line.session.finished.is_set())
        finally:
            waiting.set()  # the stuck work may finish now: the call has moved on without it
        await line.until(lambda: not line.transport.playing)
    record = line.session.record
    assert record.said[-2:] == [SAY.holding, SAY.too_slow]
    assert record.handoff is not None and record.handoff.queue == "general" and record.handoff.fault
    assert record.handoff.reason == "no reply within 0.6 s" and record.outcome == "failed"
    assert [e["part"] for e in line.events("fault")] == ["slow"]
    [turn] = record.turns  # the turn the caller took, whether or not its words were known yet
    assert turn.error == "slow: no reply within 0.6 s" and turn.decision == ""
    assert turn.transcript == ("" if stuck == "recognition" else "What are your opening hours?")
    assert line.turns == [turn], "the store was told of the turn"


def test_a_reply_limit_shorter_than_the_holding_phrases_wait_is_refused():
    with pytest.raises(ValueError, match="reply_limit_s"):
        Settings(turn_taking={"hold_after_s": 5.0, "reply_limit_s": 3.0})


async def test_a_speculation_the_caller_talks_past_is_thrown_away(speech):
    pause = [b"\xff" * 160] * 25  # 500 ms: past the 300 ms speculation point, short of the 700 ms end of speech
    first, rest = speech[:60], speech[60:]
    first_s = len(first) * 0.02
    async with call() as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to" if s < first_s + 0.6 else "I would like to speak to a person"
        await line.say(first + pause + rest)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert record.speculations_started == 2, "one at the mid-sentence pause, one at the end"
    assert record.speculations_used == 1, "the first was thrown away"
    assert line.dialogue.respond_texts == ["I would like to speak to a person"], "decided on the whole utterance"
    assert [t.decision for t in record.turns] == ["route:general"]


async def test_words_that_stop_mid_sentence_wait_for_the_rest_and_the_whole_is_one_turn(speech):
    pause = [b"\xff" * 160] * 50  # 1 s: past the 700 ms end of speech, so the VAD alone would end the turn here
    async with call() as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to" if s < 1.6 else "speak to a person"
        await line.say(speech[:50] + pause + speech)
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.dialogue.respond_texts == ["I would like to speak to a person"], "one turn, not the fragment first"
    assert [t.decision for t in record.turns] == ["route:general"]
    assert [e["text"] for e in line.events("turn_unfinished")] == ["I would like to"]


async def test_unfinished_words_the_caller_does_not_go_on_from_are_the_turn_after_the_wait(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("I would like to", speech[:50])
        await line.reply()
    record = line.session.record
    assert line.dialogue.respond_texts == ["I would like to"], "decided, not lost"
    [taken] = line.events("unfinished_turn_taken")
    wait_ms = Settings().turn_taking.unfinished_wait_ms
    assert wait_ms <= taken["waited_ms"] < wait_ms + 100  # the wait runs from the caller's last word
    assert record.turns[0].endpointing_ms >= wait_ms and record.turns[0].decision == "smalltalk:out_of_scope"


@pytest.mark.parametrize("heard_first", [15, 4], ids=["speech-started", "voice-starting"])
async def test_a_caller_who_goes_on_while_the_words_are_recognised_is_answered_once_on_the_whole(speech, heard_first):
    """ "I would like to speak" ends where a sentence may, but the caller goes on after a 1 s pause, while those words
    are still being recognised: the pause was inside the turn, and the first part is not answered on its own. Also
    when the words are known after only 80 ms of the caller's voice, less than it takes to count as speech."""
    pause = [b"\xff" * 160] * 50  # 1 s: past the 700 ms end of speech
    rest = speech[25:]  # from the recording's first word
    async with call() as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to speak" if s < 1.6 else "to a person"
        line.asr.released.clear()  # a slow recogniser: the words are not known yet when the caller goes on
        await line.say(speech[:50] + pause + rest[:heard_first])
        line.asr.released.set()
        await line.meanwhile(lambda: bool(line.events("caller_went_on")))  # decided before the next frame
        await line.say(rest[heard_first:])
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.dialogue.respond_texts == ["I would like to speak to a person"], "one turn, not the first part first"
    assert [t.decision for t in record.turns] == ["route:general"]
    assert [e["text"] for e in line.events("caller_went_on")] == ["I would like to speak"]


async def test_a_click_heard_while_the_words_are_recognised_delays_them_only_until_it_has_passed(speech):
    pause = [b"\xff" * 160] * 50
    async with call() as line:
        await line.reply()
        line.asr.hearing = lambda s: "What are your opening hours"
        line.asr.released.clear()
        await line.say(speech[:50] + pause + speech[25:27])  # 40 ms of voice: not speech
        line.asr.released.set()
        await line.meanwhile(lambda: bool(line.events("caller_went_on")))
        await line.reply()
    assert line.dialogue.respond_texts == ["What are your opening hours"]
    assert line.events("caller_went_on") and line.events("unfinished_turn_taken")


async def test_words_already_decided_when_the_caller_speaks_again_are_a_turn_of_their_own(speech):
    """Decided at once, the words' reply begins before the caller goes on after a 1 s pause; with no reply taken back
    once the caller has heard any of it, the first words are a turn of their own."""
    pause = [b"\xff" * 160] * 50
    settings = Settings(turn_taking={"decide_after_ms": 0, "take_back_heard_ms": 0})
    async with call(settings) as line:
        await line.reply()
        line.asr.hearing = lambda s: "What are your opening hours" if s < 1.6 else "I would like to speak to a person"
        await line.say(speech[:50] + pause + speech[25:])  # recognised at once: answered before the caller goes on
        await line.until(lambda: line.session.finished.is_set())
    assert line.dialogue.respond_texts == ["What are your opening hours", "I would like to speak to a person"]
    assert not line.events("caller_went_on") and not line.events("reply_taken_back")
    assert not line.dialogue.taken_back
    assert [t.decision for t in line.session.record.turns] == ["answer:opening_hours", "route:general"]


async def test_a_reply_the_caller_talks_into_as_it_begins_is_taken_back_and_the_whole_is_one_turn(speech):
    """Decided at once, "I would like to speak" gets its reply; the caller goes on after a 1 s pause, when they have
    heard less than TURN_TAKING__TAKE_BACK_HEARD_MS of it: the reply stops, the dialogue forgets the words, and the
    whole is decided as one turn, in the record under the same turn number."""
    pause = [b"\xff" * 160] * 50
    async with call(Settings(turn_taking={"decide_after_ms": 0})) as line:
        await line.reply()
        line.asr.hearing = lambda s: "What are your opening hours" if s < 1.6 else "to a person"
        script = line.dialogue.script
        script["what are your opening hours to a person"] = script["i would like to speak to a person"]
        await line.say(speech[:50] + pause + speech[25:])
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.dialogue.respond_texts == ["What are your opening hours", "What are your opening hours to a person"]
    assert line.dialogue.taken_back == ["What are your opening hours"]
    [turn] = record.turns
    whole = "What are your opening hours to a person"
    assert (turn.index, turn.decision, turn.transcript) == (1, "route:general", whole)
    assert turn.taken_back is not None and turn.taken_back["decision"] == "answer:opening_hours"
    assert 0 < turn.taken_back["reply_heard_ms"] <= Settings().turn_taking.take_back_heard_ms
    assert 0 < turn.taken_back["went_on_ms"] <= Settings().turn_taking.unfinished_wait_ms
    assert turn.speech_end_ms - turn.speech_started_ms > 2000  # both parts and the pause between them: one turn
    [event] = line.events("reply_taken_back")
    assert event["turn"] == 1 and event["went_on_ms"] == turn.taken_back["went_on_ms"]
    [cut] = line.events("barge_in")
    assert (cut["prompt"], cut["by"]) == ("turn-1", "went_on")
    assert line.transport.clears >= 1  # what Twilio had buffered of the reply is dropped
    assert SCRIPT["what are your opening hours"].reply not in record.said
    assert record.outcome == "routed:general" and record.answered_topics == []
    # The store was told: the first decision, then the turn open again, then the whole.
    assert [t.decision for t in line.turns] == ["answer:opening_hours", "", "route:general"]


async def test_a_reply_taken_back_while_the_dialogue_decides_is_never_heard(speech):
    """The caller goes on while the dialogue is still deciding the first words: nothing of that reply is said."""
    pause = [b"\xff" * 160] * 50
    async with call(Settings(turn_taking={"decide_after_ms": 0})) as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to speak" if s < 1.6 else "to a person"
        line.dialogue.script["i would like to speak"] = Reply("out_of_scope", "smalltalk:out_of_scope", "I can't.")
        line.dialogue.released.clear()  # a slow dialogue: still deciding when the caller goes on
        await line.say(speech[:50] + pause + speech[25:40])
        assert line.dialogue.respond_texts == ["I would like to speak"]
        line.dialogue.released.set()
        await line.meanwhile(lambda: bool(line.events("reply_taken_back")))
        await line.say(speech[40:])
        await line.until(lambda: line.session.finished.is_set())
    record = line.session.record
    assert line.dialogue.taken_back == ["I would like to speak"]
    assert line.dialogue.respond_texts[-1] == "I would like to speak to a person"
    assert "I can't." not in line.voice.said, "the reply taken back was never synthesised"
    [event] = line.events("reply_taken_back")
    assert event["reply_heard_ms"] == 0 and event["decision"] == "smalltalk:out_of_scope"
    assert [t.decision for t in record.turns] == ["route:general"]


async def test_a_read_back_the_caller_talks_into_is_taken_back_and_the_whole_read_back(speech):
    """Unsure words are read back ("I think you said ..."); the caller goes on as it begins: the question is withdrawn
    and forgotten (the dialogue never had the words), and the whole turn is what the line asks about."""
    pause = [b"\xff" * 160] * 50
    async with call() as line:
        await line.reply()
        line.asr.confidence = 0.5
        line.asr.hearing = lambda s: "I want to appeal the decision" if s < 1.6 else "on my pension"
        await line.say(speech[:50] + pause + speech[25:])
        await line.reply()
    record = line.session.record
    [turn] = record.turns
    assert turn.taken_back is not None and turn.taken_back["decision"] == "confirm:asr"
    assert (turn.decision, turn.transcript) == ("confirm:asr", "I want to appeal the decision on my pension")
    assert record.said[-1] == SAY.confirm.format(text="I want to appeal the decision on my pension")
    assert SAY.confirm.format(text="I want to appeal the decision") not in record.said
    assert line.dialogue.respond_texts == [] and line.dialogue.taken_back == []  # a read-back tells it nothing


async def test_a_caller_who_goes_on_after_a_long_pause_is_a_new_turn_even_before_the_reply(speech):
    """Past the unfinished-words wait after their words, the caller's voice is a turn of its own: the reply stands."""
    pause = [b"\xff" * 160] * 100  # 2 s: past the 1.5 s wait
    async with call(Settings(turn_taking={"decide_after_ms": 0})) as line:
        await line.reply()
        line.asr.hearing = lambda s: "What are your opening hours" if s < 1.6 else "I would like to speak to a person"
        line.dialogue.released.clear()
        await line.say(speech[:50] + pause + speech[25:])
        line.dialogue.released.set()
        await line.until(lambda: line.session.finished.is_set())
    assert not line.events("reply_taken_back") and not line.dialogue.taken_back
    assert [t.decision for t in line.session.record.turns] == ["answer:opening_hours", "route:general"]


async def test_words_recognised_at_once_wait_to_be_decided_for_a_caller_who_goes_on(speech):
    """A fast recogniser knows "I would like to speak" right after the endpoint, before the caller goes on after a 1 s
    pause; with no reply taken back, the words are decided no sooner than TURN_TAKING__DECIDE_AFTER_MS (here 1.1 s)
    after the caller's last word, and the pause is inside the turn, as it is on a slower machine."""
    pause = [b"\xff" * 160] * 50
    async with call(Settings(turn_taking={"decide_after_ms": 1100, "take_back": False})) as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to speak" if s < 1.6 else "to a person"
        await line.say(speech[:50] + pause + speech[25:])
        await line.until(lambda: line.session.finished.is_set())
    assert line.dialogue.respond_texts == ["I would like to speak to a person"], "one turn, not the first part first"
    assert [e["text"] for e in line.events("caller_went_on")] == ["I would like to speak"]


async def test_with_the_wait_off_a_fragment_is_answered_at_once(speech):
    settings = Settings(turn_taking={"unfinished_wait_ms": 0})
    pause = [b"\xff" * 160] * 50
    async with call(settings) as line:
        await line.reply()
        line.asr.hearing = lambda s: "I would like to" if s < 1.6 else "I would like to speak to a person"
        await line.say(speech[:50] + pause)
        await line.reply()
    assert line.dialogue.respond_texts == ["I would like to"] and not line.events("turn_unfinished")


async def test_a_caller_who_hangs_up_while_their_words_are_recognised_leaves_a_turn_with_no_decision(speech):
    async with call() as line:
        await line.reply()
        line.asr.released.clear()  # the recogniser is slow to give the words
        await line.caller_says("I want to appeal the decision", speech)
        await line.silence(1.0)  # past the end of the utterance: its words are being recognised
        await line.session.close()  # the caller hangs up before the words are known
        line.asr.released.set()
    record = line.session.record
    [turn] = record.turns
    assert (turn.transcript, turn.decision, turn.reply) == ("", "", "")
    assert 0 < turn.speech_started_ms < turn.speech_end_ms <= line.ms
    assert [(e["turn"], e["recognised"]) for e in line.events("hung_up_unanswered")] == [(1, False)]
    assert record.outcome == "abandoned" and line.dialogue.respond_texts == []
    assert line.turns == [], "no decision was told to the store: the turn is written with the call"


async def test_unfinished_words_left_waiting_for_the_rest_by_a_caller_who_hangs_up_are_kept(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("I would like to", speech[:50])
        await line.until(lambda: bool(line.events("turn_unfinished")))
        await line.session.close()
    record = line.session.record
    [turn] = record.turns
    assert (turn.transcript, turn.decision) == ("I would like to", "")
    assert [(e["turn"], e["recognised"]) for e in line.events("hung_up_unanswered")] == [(1, True)]
    assert record.outcome == "abandoned" and line.dialogue.respond_texts == []


async def test_a_caller_who_hangs_up_during_the_apology_for_a_recognition_fault_has_that_turn_once(speech):
    async with call() as line:
        await line.reply()
        line.asr.fail = True
        await line.say(speech)
        await line.until(lambda: bool(line.events("fault")))  # the apology is playing
        await line.session.close()
    assert [t.error[:4] for t in line.session.record.turns] == ["asr:"]
    assert line.events("hung_up_unanswered") == []


async def test_a_call_that_ends_after_its_reply_has_no_unanswered_turn(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("What are your opening hours?", speech)
        await line.reply()
    assert [t.decision for t in line.session.record.turns] == ["answer:opening_hours"]
    assert line.events("hung_up_unanswered") == []


async def test_a_flood_of_keys_during_a_prompt_is_counted_not_queued():
    keypad = KeypadMenu.load()
    async with call(keypad=keypad) as line:
        await line.until(lambda: line.transport.playing)
        for _ in range(20):
            line.session.on_dtmf("5")
        await line.silence(10)
    (dropped,) = line.events("key_dropped")
    assert dropped["count"] == 20 - 2  # two wait for the dialogue task (busy with the greeting); the rest dropped
    assert len(line.events("key")) <= 3


def test_the_fake_speech_is_real_speech(speech):
    audio = np.frombuffer(b"".join(speech), dtype=np.uint8)
    assert len(speech) > 50 and len(set(audio.tolist())) > 50, "a real recording, not silence"


async def test_the_call_moves_through_explicit_states_and_records_each_move(speech):
    async with call() as line:
        await line.reply()
        await line.caller_says("I want to appeal the decision", speech, confidence=0.5)
        await line.reply()
        assert line.session.state.value == "confirming"
        await line.caller_says("Yes.", speech)
        await line.until(lambda: line.session.finished.is_set())
    moves = [(e["from"], e["to"]) for e in line.events("state")]
    assert moves == [
        ("greeting", "listening"),
        ("listening", "thinking"),
        ("thinking", "speaking"),  # the read-back
        ("speaking", "confirming"),
        ("confirming", "thinking"),
        ("thinking", "speaking"),  # "I'm putting you through."
        ("speaking", "handed_off"),
        ("handed_off", "ended"),
    ]
    assert line.session.state.value == "ended"
