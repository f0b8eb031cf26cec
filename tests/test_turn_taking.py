"""Turn-taking on the phone line, through the real gateway, ASR, Rasa and TTS: barge-in, listening noises, the
keypad menu, no-input handling and reading back an uncertain transcript. The softphone speaks Twilio's protocol and
plays the caller: it talks over the assistant, presses keys or stays silent on cue."""

import numpy as np
import pytest

from telephony.routing import KeypadMenu
from telephony.softphone import Press, Say, Silence, Softphone
from tests.conftest import extra_gateway, spoken
from voice.codecs import TELEPHONE_RATE

pytestmark = [pytest.mark.rasa, pytest.mark.models]

SPEED = 3.0


def kinds(result, kind):
    return [e for e in result["events"] if e["kind"] == kind]


async def test_caller_interrupting_an_answer_stops_it_and_is_heard(stack, caller_voice):
    result = (
        await Softphone(stack, speed=SPEED).call(
            [
                Say(spoken(caller_voice, "When is the child allowance paid out?")),
                Say(spoken(caller_voice, "Sorry, can I talk to a person instead?"), barge_in_after_s=2.0),
            ]
        )
    ).as_dict()
    first, second = [t for t in result["turns"] if t["transcript"]]
    assert first["decision"] == "answer:payment_dates"
    # The answer was cut: Twilio was told to drop its buffer, and the record knows what the caller did not hear.
    assert result["clears_received"] >= 1
    assert first["interrupted"]["cause"] == "speech"
    assert first["interrupted"]["unheard"]
    assert first["reply"].endswith(first["interrupted"]["unheard"])
    assert first["reply"] not in result["said"]  # only what was heard counts as said
    barge_ins = kinds(result, "barge_in")
    assert len(barge_ins) == 1, result["events"]
    [barge_in] = barge_ins
    assert barge_in["prompt"] == "turn-1"
    # The interruption itself is the next turn, acted on at once.
    assert second["barged_in"] is True
    assert second["decision"] == "route:general"
    assert result["outcome"] == "routed:general"


async def test_listening_noises_over_the_assistant_are_not_a_turn(stack, caller_voice):
    result = (
        await Softphone(stack, speed=SPEED).call(
            [
                Say(spoken(caller_voice, "When is the child allowance paid out?")),
                Say(spoken(caller_voice, "Yeah, okay."), barge_in_after_s=1.5),
            ]
        )
    ).as_dict()
    turns = [t for t in result["turns"] if t["transcript"]]
    assert [t["decision"] for t in turns] == ["answer:payment_dates"]
    [noise] = kinds(result, "backchannel")
    assert "yeah" in noise["text"].lower()
    if noise["stopped_prompt"]:  # long enough to stop the answer: it carried on where it was cut
        assert kinds(result, "resumed")
        assert result["said"][-1] == turns[0]["interrupted"]["unheard"]
    # Either way the caller heard the whole answer.
    assert "twentieth" in " ".join(result["said"])
    assert result["outcome"] == "answered:payment_dates"


async def test_keypad_menu_answers_routes_and_repeats(stack, caller_voice):
    menu = KeypadMenu.load()
    result = (
        await Softphone(stack, speed=SPEED).call([Press("1"), Press("*", barge_in_after_s=1.0), Press("#"), Press("0")])
    ).as_dict()
    turns = result["turns"]
    assert [t["input"] for t in turns] == ["keypad", "keypad"]
    assert turns[0]["decision"] == "answer:payment_dates" and turns[0]["transcript"] == "[key 1]"
    assert turns[0]["interrupted"]["cause"] == "key"  # star pressed over the answer stopped it
    assert menu.menu_text() in result["said"]  # star: the menu
    assert any(s.startswith("Sorry, that key is not in the menu.") for s in result["said"])  # hash: not a menu key
    assert turns[1]["decision"] == "route:general"
    assert [e["key"] for e in kinds(result, "key")] == ["1", "*", "#", "0"]
    assert result["outcome"] == "routed:general"


async def test_silence_gets_a_reprompt_then_the_keypad_menu(stack):
    result = (await Softphone(stack, speed=8.0).call([Silence(prompts=2), Press("5")])).as_dict()
    assert [e["count"] for e in kinds(result, "no_input")] == [1, 2]
    assert any("didn't hear anything" in s for s in result["said"])
    assert any("use your keypad" in s and "press 1." in s for s in result["said"])
    [turn] = result["turns"]
    assert turn["decision"] == "answer:apply_housing_allowance"


async def test_a_silent_line_is_put_through_to_a_person(stack):
    # After the third prompt (the handoff) the caller stays on the line: the assistant is the one to end the call.
    result = (await Softphone(stack, speed=8.0).call([Silence(prompts=3), Silence(prompts=1)])).as_dict()
    assert [e["count"] for e in kinds(result, "no_input")] == [1, 2, 3]
    assert result["outcome"] == "routed:general"
    assert result["handoff"]["reason"] == "no input from the caller"
    assert result["hung_up_by"] == "assistant"


@pytest.fixture(scope="module")
def confirming_gateway(stack):
    """A second gateway on the same Rasa that reads back every transcript (confirmation thresholds 1.0)."""
    turn_taking = {"confirm_below_confidence": 1.0, "confirm_below_nlu_confidence": 1.0}
    with extra_gateway(stack, "confirming", turn_taking=turn_taking) as settings:
        yield settings


async def test_uncertain_transcript_is_read_back_and_acted_on_when_confirmed(confirming_gateway, caller_voice):
    result = (
        await Softphone(confirming_gateway, speed=SPEED).call(
            [spoken(caller_voice, "How do I apply for housing allowance?"), spoken(caller_voice, "Yes, that's right.")]
        )
    ).as_dict()
    asked, confirmed = result["turns"]
    assert asked["decision"] == "confirm:asr"
    assert asked["reply"].startswith("I think you said") and "housing allowance" in asked["reply"].lower()
    assert confirmed["decision"] == "answer:apply_housing_allowance"
    assert result["outcome"] == "answered:apply_housing_allowance"


async def test_uncertain_transcript_denied_is_asked_again(confirming_gateway, caller_voice):
    result = (
        await Softphone(confirming_gateway, speed=SPEED).call(
            [spoken(caller_voice, "How do I apply for housing allowance?"), spoken(caller_voice, "No, that's wrong.")]
        )
    ).as_dict()
    asked, denied = result["turns"]
    assert asked["decision"] == "confirm:asr"
    assert denied["decision"] == "confirm:denied"
    assert "say it again" in denied["reply"] or "tell me again" in denied["reply"]
    assert result["outcome"] == "abandoned"  # the caller hung up without saying it again


async def test_unsure_words_the_nlu_is_sure_of_are_acted_on_without_a_read_back(stack, caller_voice):
    """Every transcript counts as unsure here, but the NLU is sure what this one asks (above the production 0.70):
    the caller gets the answer, not "I think you said ..."."""
    turn_taking = {"confirm_below_confidence": 1.0, "confirm_below_nlu_confidence": 0.7}
    with extra_gateway(stack, "confirming unsure readings", turn_taking=turn_taking) as settings:
        result = (
            await Softphone(settings, speed=SPEED).call(
                [
                    spoken(caller_voice, "How do I apply for housing allowance?"),
                    spoken(caller_voice, "Thank you, goodbye."),
                ]
            )
        ).as_dict()
    asked = result["turns"][0]
    assert asked["decision"] == "answer:apply_housing_allowance", asked
    assert asked["confidence"] >= 0.7 and not asked["reply"].startswith("I think you said")


@pytest.fixture(scope="module")
def vosk_gateway(stack):
    """A gateway recognising with Vosk (the packaged Korean model), whose partial results stop a prompt: the speech
    length rule is set out of reach, so only recognised words can barge in."""
    from voice.asr.vosk import packaged_korean_model

    with extra_gateway(
        stack,
        "vosk",
        asr={"engine": "vosk", "model_path": packaged_korean_model()},
        turn_taking={"barge_in_min_speech_ms": 60000},
    ) as settings:
        yield settings


async def test_streaming_partials_stop_a_prompt_as_soon_as_words_are_recognised(vosk_gateway):
    from tests.test_engine_contract import korean_speech

    korean = korean_speech("안녕하세요. 오늘 날씨가 좋습니다. 감사합니다.")
    # In real time, as on the phone: the Korean model needs about 0.36 s of CPU per second of audio here, so audio
    # played three times faster would leave the partial results lagging behind the speech.
    result = (await Softphone(vosk_gateway, speed=1.0).call([Say(korean, barge_in_after_s=6.0)])).as_dict()
    # Three sentences: on a loaded machine the stream may end the first utterance at a pause, and the rest then
    # stops the reply to it in the same way. The greeting is always stopped first, by words.
    barge_ins = kinds(result, "barge_in")
    assert barge_ins and all(b["by"] == "words" for b in barge_ins), result["events"]
    assert barge_ins[0]["prompt"] == "greeting"
    assert "automated assistant" in barge_ins[0]["heard"]  # the disclosure is never cut
    turn = next(t for t in result["turns"] if t["transcript"])
    assert turn["barged_in"] is True
    assert any("\uac00" <= ch <= "\ud7a3" for ch in turn["transcript"])  # the final result came from the stream
    assert result["clears_received"] == len(barge_ins)


@pytest.fixture(scope="module")
def short_utterance_gateway(stack):
    """A gateway whose longest utterance is 3 s, so that an ordinary request is a long turn to it."""
    with extra_gateway(stack, "short-utterances", vad={"max_utterance_s": 3.0}) as settings:
        yield settings


async def test_a_turn_longer_than_the_longest_utterance_is_decided_whole(short_utterance_gateway, caller_voice):
    story = (
        "I have read the letter you sent me three times this week and I still do not understand it. "
        "Can I please just talk to a real person?"
    )
    # Recognised in pieces, then whole: on a machine busy with other tests the reply may take longer than a default
    # caller's 20 s of patience, so this caller waits up to 60 s.
    softphone = Softphone(short_utterance_gateway, speed=SPEED, reply_timeout_s=60)
    result = (await softphone.call([spoken(caller_voice, story)])).as_dict()
    assert len(kinds(result, "long_turn_held")) >= 2  # about 9 s of speech: cut at 3 s, twice or more
    [turn] = [t for t in result["turns"] if t["transcript"]]
    words = turn["transcript"].lower()
    assert "letter" in words and "person" in words, words  # the story and its request, in one transcript
    # Decided whole: put through, or asked back. Which matter a clarifying question names first is the NLU's reading
    # of the whole story (on one CI run "three times this week ... the letter" made it processing times): that is the
    # understanding gates' business (issue 14), not this mechanism's.
    assert turn["decision"] == "route:general" or turn["decision"].startswith("clarify:"), turn["decision"]


async def test_background_talk_alone_is_not_answered_as_a_request(stack, real_recordings):
    """Other people talking near the phone while the caller is silent: babble made of real speech, reversed."""
    from voice.codecs import TELEPHONE_RATE, read_audio
    from voice.line_conditions import noise_alone

    path, _ = real_recordings["jfk"]
    babble = noise_alone("babble", read_audio(path, TELEPHONE_RATE)[: TELEPHONE_RATE * 4], seed=1)
    result = (await Softphone(stack, speed=SPEED).call([Say(babble)])).as_dict()
    assert not [t for t in result["turns"] if t["decision"]]  # nothing was decided, answered or routed
    heard_words = kinds(result, "noise_words")
    assert heard_words or kinds(result, "no_words")  # the recogniser heard it; no turn came of it
    if heard_words:
        assert any("didn't catch that" in said for said in result["said"])  # asked again
    assert result["outcome"] == "abandoned"


async def test_a_caller_who_pauses_mid_sentence_is_answered_once_on_the_whole_request(stack, caller_voice):
    """ "I would like to ... speak to a real person": a second's pause after "to" is longer than the 700 ms that ends
    an utterance, but the words stop where a sentence cannot, so the line waits and decides the whole."""
    pause = np.zeros(TELEPHONE_RATE, dtype=np.float32)
    said = np.concatenate(
        [spoken(caller_voice, "I would like to"), pause, spoken(caller_voice, "speak to a real person")]
    )
    result = (await Softphone(stack, speed=SPEED).call([said, Silence(prompts=1)])).as_dict()
    heard = [t for t in result["turns"] if t["transcript"]]
    assert len(heard) == 1, [t["transcript"] for t in heard]
    words = heard[0]["transcript"].lower()
    assert "like to" in words and "person" in words, words
    assert heard[0]["decision"] in {"route:general", "clarify:request_human"}, heard[0]["decision"]
    assert kinds(result, "turn_unfinished"), result["events"]


@pytest.fixture(scope="module")
def taking_back_gateway(stack):
    """A gateway that decides words as soon as they are recognised and takes a reply back whenever the caller goes on
    within 2.5 s of their words: the path of a reply taken back, whatever this machine's speed."""
    turn_taking = {"decide_after_ms": 0, "unfinished_wait_ms": 2500, "take_back_heard_ms": 3000}
    with extra_gateway(stack, "taking back", turn_taking=turn_taking) as settings:
        yield settings


async def test_a_reply_taken_back_is_forgotten_by_the_dialogue_and_the_whole_request_decided(
    taking_back_gateway, caller_voice
):
    """ "I would like to speak to a person ... about my housing allowance": the first part is a whole request, decided
    at once, and the caller goes on 1.2 s later while its reply is being prepared or begins. The reply is taken back,
    Rasa rewinds the first words (its tracker holds the whole request alone), and the call goes on from the whole."""
    import httpx

    pause = np.zeros(int(1.2 * TELEPHONE_RATE), dtype=np.float32)
    said = np.concatenate([spoken(caller_voice, "I would like to speak to a person"), pause,
                           spoken(caller_voice, "about my housing allowance")])  # fmt: skip
    call_sid = "CA" + "7a" * 16
    result = await Softphone(taking_back_gateway, speed=1.0).call([said, Silence(prompts=1)], call_sid=call_sid)
    record = result.as_dict()
    [taken] = kinds(record, "reply_taken_back")
    heard = [t for t in record["turns"] if t["transcript"]]
    assert [t["index"] for t in heard] == [1], [t["transcript"] for t in heard]
    words = heard[0]["transcript"].lower()
    assert "person" in words and "housing" in words, words
    assert heard[0]["taken_back"]["decision"] == taken["decision"]
    assert "housing" in heard[0]["decision"], heard[0]["decision"]  # decided on the whole, not on its first part
    async with httpx.AsyncClient() as http:
        tracker = (await http.get(f"{taking_back_gateway.rasa.url}/conversations/{call_sid}/tracker")).json()
    said_to_rasa: list[str] = []  # the user messages the conversation holds: a rewind takes the last one back
    for event in tracker["events"]:
        if event["event"] == "user" and not (event.get("text") or "").startswith("EXTERNAL:"):  # not call_start
            said_to_rasa.append(event.get("text") or "")
        elif event["event"] == "rewind":
            said_to_rasa.pop()
    assert len(said_to_rasa) == 1 and "housing" in said_to_rasa[0].lower(), said_to_rasa
    rewound = any(e["event"] == "rewind" for e in tracker["events"])
    assert rewound or taken["decision"] == "confirm:asr", "words the dialogue decided are rewound (a read-back is not)"
