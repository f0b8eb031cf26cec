"""Whole calls through the real gateway over a real WebSocket, with real ASR, Rasa, actions and TTS.

The softphone plays Twilio exactly: signed webhook, TwiML, signed WebSocket upgrade, 20 ms mu-law frames.
"""

import json
import subprocess
import sys

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from helpline.loadgen import noise_for_lines
from telephony.line import media_stream_url, voice_webhook_url
from telephony.softphone import Silence, Softphone
from tests.conftest import spoken
from voice.codecs import TELEPHONE_RATE, read_audio
from voice.wer import wer

pytestmark = [pytest.mark.rasa, pytest.mark.models]

SPEED = 2.0  # faster than real time; the gateway sees the same frames, only sooner


async def test_call_with_a_complex_matter_is_routed_to_its_queue(stack, caller_voice):
    said = "Hello. I got a letter last week with a decision that I think is wrong, and I would like to appeal it."
    # After the handoff message the caller stays on the line (10 s of it): the assistant is the one to end the call. A
    # caller who hung up the moment the message ended raced the gateway's own hang-up, and on a busy machine won.
    listening = Silence(prompts=1, quiet_s=10.0)
    result = (await Softphone(stack, speed=SPEED).call([spoken(caller_voice, said), listening])).as_dict()
    assert "automated assistant" in result["greeting"]
    [turn] = [t for t in result["turns"] if t["transcript"]]
    assert wer(said, turn["transcript"]) <= 0.2, turn["transcript"]
    assert turn["decision"] == "route:appeals"
    assert turn["reply_audio_s"] > 1.0  # the handoff message came back as audio
    assert turn["latency_ms"] is not None
    assert result["outcome"] == "routed:appeals"
    assert result["hung_up_by"] == "assistant"
    assert result["handoff"]["queue"] == "appeals"
    assert result["packet"]["transcript"][0]["text"] == turn["transcript"]


async def test_two_turn_call_answers_then_ends(stack, caller_voice):
    turns = [
        spoken(caller_voice, "When is the child allowance paid out?"),
        spoken(caller_voice, "No thanks, that was all."),
    ]
    # Often the session's first call: on a busy 2-core machine without AVX-512 (CI, 2026-12-04) a line still warming
    # up decided the first turn 18 s after the call began, when the softphone's patience was 20 s of line time (10 s
    # at this speed), and the caller talked over the answer. This caller waits up to 60 s for it.
    result = (await Softphone(stack, speed=SPEED, reply_timeout_s=60).call(turns)).as_dict()
    heard = [t for t in result["turns"] if t["transcript"]]
    assert heard[0]["decision"] == "answer:payment_dates"
    assert "twentieth" in heard[0]["reply"]
    assert heard[0]["reply_audio_s"] > 5.0
    assert heard[-1]["decision"] in ("smalltalk:goodbye", "smalltalk:deny", "smalltalk:thanks")
    assert result["outcome"] == "answered:payment_dates"


async def test_real_recording_through_the_phone_line(stack, real_recordings):
    """A real human recording (not our TTS): the transcript survives the line and the caller gets an answer.

    A LibriVox sentence read without long pauses: an orator's second-long pauses (jfk) split into several
    utterances at the default end-of-speech silence, which is endpointing's business, not this test's.
    """
    path, reference = real_recordings["ps_librivox_0870"]
    result = (await Softphone(stack, speed=SPEED).call([read_audio(path, TELEPHONE_RATE)])).as_dict()
    heard = " ".join(t["transcript"] for t in result["turns"])
    assert wer(reference, heard) <= 0.2, heard
    assert all(t["reply_audio_s"] > 0 for t in result["turns"] if t["transcript"])
    # Not a question the agency answers: the assistant must not pretend to answer a topic.
    assert not any(t["decision"].startswith("answer:") for t in result["turns"])


async def test_a_caller_on_a_noisy_line_is_answered_when_they_stop(stack, caller_voice):
    """Pink noise 10 dB under the caller's voice, through the greeting, their question and their silence after it:
    WebRTC VAD hears it as speech, so without the noise floor the question would not end while the noise goes on."""
    said = "When is the child allowance paid out?"
    question = spoken(caller_voice, said)
    noise = noise_for_lines("pink:10", [(question,)])
    result = (await Softphone(stack, speed=SPEED, line_noise=noise).call([question])).as_dict()
    heard = [t for t in result["turns"] if t["transcript"]]
    assert heard and heard[0]["decision"] == "answer:payment_dates", (result["turns"], result["events"])
    # The turn ended at the question: no words written for the noise after it. Under 10 dB of noise the recogniser
    # may mishear a word or two (a CI run on a busy machine heard "When does the child allowance pay doubt?").
    transcript = heard[0]["transcript"]
    assert len(transcript.split()) <= len(said.split()) + 1, transcript
    assert wer(said, transcript) <= 0.5, transcript
    assert heard[0]["latency_ms"] is not None and heard[0]["reply_audio_s"] > 1.0


async def test_malformed_media_messages_are_skipped_and_the_call_goes_on(stack, caller_voice):
    stray = (
        "this is not json",
        json.dumps({"event": "media", "streamSid": "MZ-other", "media": {"payload": "AAAA"}}),
        json.dumps({"event": "media", "media": {"payload": "@@@"}}),
        b"\x00\x01binary",
        json.dumps({"event": "dtmf"}),
    )
    audio = spoken(caller_voice, "What are your opening hours on weekdays?")
    result = (await Softphone(stack, speed=SPEED).call([audio], stray_messages=stray)).as_dict()
    heard = [t for t in result["turns"] if t["transcript"]]
    assert heard[0]["decision"] == "answer:opening_hours"
    async with httpx.AsyncClient() as http:
        record = (await http.get(f"{stack.gateway_url}/api/calls/{result['call_sid']}")).json()
    assert record["malformed_messages"] == len(stray)


async def test_unsigned_or_wrongly_signed_webhook_is_refused(stack):
    url = voice_webhook_url(stack)
    params = {"CallSid": "CA1", "From": "+46700000000"}
    good = RequestValidator(stack.twilio_auth_token).compute_signature(url, params)
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(f"{stack.gateway_url}/twilio/voice", data=params)
        forged = await http.post(
            f"{stack.gateway_url}/twilio/voice", data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
        )
        tampered = await http.post(
            f"{stack.gateway_url}/twilio/voice",
            data=params | {"From": "+1"},
            headers={"X-Twilio-Signature": good},
        )
        signed = await http.post(f"{stack.gateway_url}/twilio/voice", data=params, headers={"X-Twilio-Signature": good})
    assert (unsigned.status_code, forged.status_code, tampered.status_code) == (403, 403, 403)
    assert signed.status_code == 200
    assert "<Connect><Stream" in signed.text and media_stream_url(stack) in signed.text
    assert '<Parameter name="from" value="+46700000000"' in signed.text


async def test_unsigned_media_stream_upgrade_is_refused(stack):
    ws_url = f"ws://{stack.gateway.host}:{stack.gateway.port}/twilio/media"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url):
            pass
    assert refused.value.response.status_code == 403


def _helpline(stack, *args):
    from helpline.services import settings_environment

    env = dict(__import__("os").environ) | settings_environment(stack)
    return subprocess.run(
        [sys.executable, "-m", "helpline.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_call_with_unreadable_audio_exits_2_with_one_line(stack, tmp_path):
    bogus = tmp_path / "voicemail.wav"
    bogus.write_bytes(b"RIFF....not really a wave")
    done = _helpline(stack, "call", str(bogus))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "cannot read audio file" in done.stderr


def test_cli_ask_prints_one_json_object(stack):
    done = _helpline(stack, "ask", "--json", "how long does it take before I get a decision")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"intent", "confidence", "decision", "reply"} <= result.keys()
    assert result["decision"] == "answer:processing_times"


def test_cli_call_prints_turns_and_outcome_as_json(stack, caller_voice, tmp_path):
    import wave

    import numpy as np

    speech = caller_voice.synthesize("Can I speak to a person please?")
    path = tmp_path / "caller.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(speech.sample_rate)
        w.writeframes(np.asarray(speech.pcm, dtype=np.int16).tobytes())
    done = _helpline(stack, "call", str(path), "--json", "--speed", "3")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"intent", "confidence", "decision", "reply", "turns", "outcome"} <= result.keys()
    assert result["decision"] == "route:general" and result["outcome"] == "routed:general"
