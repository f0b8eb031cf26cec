"""Call recordings (telephony/recording.py): where personal data is in the audio, how both channels are laid on the
call's clock, and, on the session's fakes, the greeting's notice and what a call keeps."""

import io

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeCall, FakeVoice, Reply, ScriptedDialogue, telephone_frames

from foundation.redaction import personal_spans, redact_text
from foundation.settings import Settings
from telephony.recording import CallRecording, personal_audio
from voice.asr.base import Transcript, Word, join_transcripts
from voice.codecs import TELEPHONE_RATE, pcm_wav, read_audio, ulaw_decode

NUMBER = "19811218-9876"  # checksum-valid


def timed(*words: tuple[str, float, float]) -> Transcript:
    return Transcript(" ".join(w for w, _, _ in words), 0.9, "en", 5.0, tuple(Word(w, 0.9, a, b) for w, a, b in words))


def test_personal_spans_are_where_redaction_masks_in_the_text_itself():
    text = f"my number is {NUMBER}, mail me at anna@example.se or call 070-123 45 67"
    spans = personal_spans(text)
    assert [(text[a:b], label) for a, b, label in spans] == [
        (NUMBER, "personnummer"),
        ("anna@example.se", "email"),
        ("070-123 45 67", "phone number"),
    ]
    assert redact_text(text) == "my number is [personnummer], mail me at [email] or call [phone number]"


def test_a_number_after_personal_number_words_is_masked_even_when_misheard():
    # One digit misheard: the checksum fails, the rest is still the caller's number.
    assert redact_text("my personal number is 19811218-9875 thanks") == "my personal number is [personnummer] thanks"
    # ... or written by the recogniser in groups with words between them.
    misheard = "My personal number is 90 million 800 11200 80-9,876. When is it paid?"
    assert redact_text(misheard) == "My personal number is [personnummer]. When is it paid?"
    spelt = "my personal number is nineteen eighty one twelve eighteen ninety eight seventy six."
    assert redact_text(spelt) == "my personal number is [personnummer]."
    assert redact_text("my personal number is 2026-12-04") == "my personal number is 2026-12-04"  # a date
    assert redact_text("I called three or four times") == "I called three or four times"
    assert redact_text("the decision came on the 12th") == "the decision came on the 12th"


def test_the_audio_of_a_personal_number_is_found_from_word_times():
    transcript = timed(
        ("My", 0.0, 0.3), ("number", 0.3, 0.7), ("is", 0.7, 1.5), (NUMBER, 1.5, 4.0), ("thanks", 4.2, 4.6)
    )
    # From the start of the word before it (Whisper stretches that word over the first digit) to a margin after.
    assert personal_audio(transcript, (0, 5000)) == [(700, 4250)]


def test_long_numbers_are_silenced_whatever_their_shape_and_short_ones_are_not():
    transcript = timed(("I", 0.0, 0.2), ("got", 0.2, 0.4), ("3", 0.4, 0.6), ("letters", 0.6, 1.0))
    assert personal_audio(transcript, (0, 2000)) == []
    # A misheard number: groups and words between them are one number.
    misheard = timed(("is", 0.0, 0.5), ("90", 0.5, 0.8), ("million", 0.8, 1.2), ("800", 1.2, 1.6), ("or", 1.6, 1.8),
                     ("11200,", 1.8, 2.6), ("when", 3.0, 3.2))  # fmt: skip
    in_words = timed(("account", 0.0, 0.4), ("one", 0.5, 0.7), ("hundred", 0.7, 1.0), ("and", 1.0, 1.1),
                     ("twenty", 1.1, 1.4), ("three", 1.4, 1.6), ("please", 1.8, 2.2))  # fmt: skip
    assert personal_audio(in_words, (0, 3000)) == [(0, 1850)]  # four number words are a number too
    # Words that stop at a digit: the recogniser stopped writing in the middle of a number, the rest is silenced.
    stopped = timed(("my", 0.0, 0.2), ("account", 0.2, 0.6), ("number", 0.6, 1.0), ("is", 1.0, 1.3), ("8,", 1.3, 1.6))
    assert personal_audio(stopped, (0, 2500)) == [(900, 2500)]
    # Most of it dropped: the kept words' times are stretched over 12 s ...
    stretched = timed(
        ("hello,", 0.0, 2.0), ("my", 2.0, 4.5), ("account", 4.5, 7.0), ("is", 7.0, 10.1), ("8,", 10.1, 11.0)
    )
    assert personal_audio(stretched, (0, 12000)) == [(0, 12000)]
    squeezed = timed(("hello,", 9.9, 11.2), ("my", 11.2, 11.2), ("account", 11.2, 11.3), ("8,", 11.3, 11.3))
    assert personal_audio(squeezed, (0, 11500)) == [(0, 11500)]  # or squeezed into its last second
    # To the next word the recogniser wrote: a group of digits it dropped lies before it.
    assert personal_audio(misheard, (0, 4000)) == [(0, 3000)]


def test_words_without_times_silence_the_whole_utterance():
    untimed = Transcript(f"my number is {NUMBER}", 0.9, "en", 3.0, (Word("my", 0.9), Word("number", 0.9)))
    assert personal_audio(untimed, (1200, 4300)) == [(1200, 4300)]
    no_words = Transcript(f"my number is {NUMBER}", 0.9, "en", 3.0)
    assert personal_audio(no_words, (1200, 4300)) == [(1200, 4300)]


def test_word_times_move_onto_the_stream_clock_and_survive_joining():
    first = timed(("my", 0.1, 0.3), ("number", 0.3, 0.6)).shifted(10.0)
    second = timed(("is", 0.0, 0.2), (NUMBER, 0.2, 2.0)).shifted(14.0)
    joined = join_transcripts([first, second])
    assert [(w.start, w.end) for w in joined.words] == [(10.1, 10.3), (10.3, 10.6), (14.0, 14.2), (14.2, 16.0)]
    # 400 ms before the number, and on to the end of the utterance: the words stop at the number (the recogniser
    # may have dropped the rest of it).
    assert personal_audio(joined, (9900, 16500)) == [(13800, 16500)]  # a pause between pieces is no stretching


def channels(wav: bytes) -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)
    assert rate == TELEPHONE_RATE and audio.shape[1] == 2
    return audio


LOUD = bytes([0x10]) * 160  # a loud mu-law frame


def test_both_channels_on_the_call_clock():
    recording = CallRecording()
    recording.caller_audio(LOUD, 0)
    recording.caller_audio(LOUD, 100)  # 80 ms of frames lost in between: silence
    recording.assistant_audio(LOUD * 3, now_ms=20)  # sent at once: plays 20-80 ms
    recording.assistant_audio(LOUD, now_ms=20)  # sent while that plays: follows it, 80-100 ms
    audio = channels(recording.finish().wav)
    caller, assistant = np.abs(audio[:, 0]), np.abs(audio[:, 1])
    assert caller[:160].min() > 0 and caller[160:800].max() == 0 and caller[800:960].min() > 0
    assert assistant[:160].max() == 0 and assistant[160:800].min() > 0


def test_a_clear_drops_what_was_not_played_and_private_audio_is_never_kept():
    recording = CallRecording()
    recording.assistant_audio(LOUD * 10, now_ms=0)  # 200 ms sent
    recording.cleared(now_ms=60)  # the caller barged in: Twilio played 60 ms of it
    recording.assistant_audio(LOUD * 2, now_ms=100, private=True)  # the caller's number read back
    recording.caller_audio(LOUD, 200)
    assistant = np.abs(channels(recording.finish().wav)[:, 1])
    assert assistant[:480].min() > 0 and assistant[480:].max() == 0


def test_silenced_passages_apply_to_audio_that_came_before_and_after():
    recording = CallRecording()
    for at in range(0, 1000, 20):
        recording.caller_audio(LOUD, at)
    recording.silence([(200, 400), (200, 400), (-50, 40)])  # the same passage twice (a piece, then the turn whole)
    recorded = recording.finish()
    caller = np.abs(channels(recorded.wav)[:, 0])
    assert recorded.silenced == [(0, 40), (200, 400)]
    assert caller[: 40 * 8].max() == 0 and caller[200 * 8 : 400 * 8].max() == 0
    assert caller[40 * 8 : 200 * 8].min() > 0 and caller[400 * 8 :].min() > 0
    assert recorded.seconds == 1.0
    pcm = channels(pcm_wav(recorded.wav))  # what the dashboard serves: 16-bit PCM of the same samples
    assert np.array_equal(pcm[:, 0], ulaw_decode(LOUD)[0] * (caller > 0))


class LoudVoice(FakeVoice):
    """Synthesis as a loud tone: the assistant's channel shows what was kept of each sentence."""

    def telephone(self, text: str) -> bytes:
        self.said.append(text)
        return LOUD * (5 * max(1, len(text.split())))


@pytest.fixture(scope="module")
def speech(real_recordings) -> list[bytes]:
    path, _ = real_recordings["ps_goforward"]
    return telephone_frames(read_audio(path, TELEPHONE_RATE))


def recorded_call(**turn_taking) -> FakeCall:
    settings = Settings(recording={"enabled": True}, turn_taking=turn_taking)  # type: ignore[arg-type]
    script = {"when is my payment": Reply("payment_dates", "answer:payment_dates", "On the twenty-fifth.")}
    return FakeCall(ScriptedDialogue(script), settings, voice=LoudVoice())


async def test_the_greeting_says_the_call_is_recorded_right_after_the_disclosure_and_it_is_heard_whole(speech):
    line = recorded_call()
    async with line:
        await line.reply()
        assert line.voice.said[:3] == [
            "Hello, you are talking to an automated assistant.",
            line.settings.spoken.prompts.recording_notice,
            "How can I help you?",
        ]
        assert line.session.recording is not None and line.session.recording.notice_heard
        await line.caller_says(f"my personal number is {NUMBER}", speech)
        await line.reply()
    record = line.session.record
    assert record.turns[0].transcript == "my personal number is [personnummer]"
    # The fake recogniser gives no word times: the whole utterance is silenced.
    (passage,) = line.session.recording.silenced
    turn = record.turns[0]
    assert passage[0] <= turn.speech_started_ms and passage[1] >= turn.speech_end_ms
    caller = np.abs(channels(line.session.recording.finish().wav)[:, 0])
    assert caller[passage[0] * 8 : passage[1] * 8].max() == 0
    assert caller.max() > 0  # the caller's other audio (the line's noise floor) is kept


async def test_a_caller_gone_before_the_notice_was_heard_is_not_recorded():
    line = recorded_call()
    async with line:
        await line.say([b"\xff" * 160] * 10)  # 200 ms: the greeting has only begun
    assert line.session.recording is not None and not line.session.recording.notice_heard


async def test_the_read_back_of_a_number_is_not_in_the_recording(speech):
    line = recorded_call(confirm_below_confidence=1.0)  # every turn is read back
    async with line:
        await line.reply()
        await line.caller_says(f"my personal number is {NUMBER}", speech, confidence=0.5)
        await line.reply()
    said = line.voice.said
    assert any(NUMBER in sentence for sentence in said)  # the caller heard their number read back
    assistant = channels(line.session.recording.finish().wav)[:, 1]
    # Every sentence is in the assistant's channel but the one that says the number.
    kept = [s for s in said if NUMBER not in s]
    assert len(kept) == len(said) - 1
    assert np.count_nonzero(assistant) == sum(5 * len(s.split()) * 160 for s in kept)


async def test_words_never_recognised_because_the_caller_hung_up_are_not_in_the_recording(speech):
    """No one has checked them for personal data: a turn still being recognised, and speech under way, at the
    hang-up."""
    line = recorded_call()
    async with line:
        await line.reply()
        line.asr.released.clear()  # the recogniser is slow to give the words
        await line.caller_says(f"my personal number is {NUMBER}", speech)
        await line.silence(1.0)  # past the end of the utterance: its words are being recognised
        await line.say(speech[:40])  # and the caller speaks again as they hang up
        await line.session.close()
        line.asr.released.set()
    recording = line.session.recording
    assert recording is not None and recording.notice_heard
    turn = line.session.record.turns[0]
    unheard, under_way = recording.silenced
    assert unheard[0] <= turn.speech_started_ms and unheard[1] >= turn.speech_end_ms
    assert under_way[0] > unheard[1] and under_way[1] == line.ms
    caller = np.abs(channels(recording.finish().wav)[:, 0])
    for start, end in (unheard, under_way):
        assert caller[start * 8 : end * 8].max() == 0
    assert caller.max() > 0  # the rest of the caller's audio is kept
