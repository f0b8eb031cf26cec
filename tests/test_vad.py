import numpy as np

from foundation.settings import VadSettings
from voice.codecs import (
    FRAME_MS,
    TELEPHONE_RATE,
    float_to_pcm16,
    read_audio,
    telephone_round_trip,
    ulaw_decode,
    ulaw_encode,
)
from voice.line_conditions import LineCondition, apply, noise_alone
from voice.vad import CallerLevel, Endpointer, NoiseFloor, SpeechPaused, SpeechStarted, UtteranceEnded

FRAME = 160


def _run(endpointer: Endpointer, audio: np.ndarray) -> list:
    pcm = ulaw_decode(ulaw_encode(float_to_pcm16(audio)))
    pcm = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME, dtype=np.int16)])
    events = []
    for i in range(0, len(pcm), FRAME):
        events += endpointer.feed(pcm[i : i + FRAME], at_ms=i // 8)
    return events


def _endpointer(**overrides) -> Endpointer:
    params = {"aggressiveness": 2, "end_silence_ms": 600, "min_speech_ms": 200, "max_utterance_s": 20.0}
    return Endpointer(**(params | overrides))


def test_speech_between_silences_is_one_utterance_with_its_end_time(real_recordings):
    path, _ = real_recordings["ps_goforward"]
    speech = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
    silence = np.zeros(TELEPHONE_RATE, dtype=np.float32)
    events = _run(_endpointer(), np.concatenate([silence, speech, silence]))
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(starts) == len(ends) == 1
    # Speech begins after the leading second of silence and ends before the trailing one.
    assert 1000 <= starts[0].at_ms < 1000 + len(speech) / 8
    assert starts[0].at_ms < ends[0].speech_end_ms <= 1000 + len(speech) / 8 + 20
    assert not ends[0].truncated
    assert len(ends[0].pcm) / TELEPHONE_RATE > 1.0


def test_silence_and_low_noise_make_no_utterance():
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(TELEPHONE_RATE * 3) * 0.001).astype(np.float32)
    assert _run(_endpointer(), quiet) == []


def test_long_speech_is_cut_at_the_maximum_utterance_length(real_recordings):
    path, _ = real_recordings["jfk"]
    speech = read_audio(path, TELEPHONE_RATE)
    events = _run(_endpointer(max_utterance_s=3.0), speech)
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    assert ends and ends[0].truncated
    assert len(ends[0].pcm) <= 3.0 * TELEPHONE_RATE + FRAME * 15


def test_voiced_time_grows_with_speech_and_is_zero_between_utterances(real_recordings):
    """What the barge-in policy weighs: voiced audio in the utterance under way."""
    path, _ = real_recordings["ps_goforward"]
    speech = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
    pcm = ulaw_decode(ulaw_encode(float_to_pcm16(np.concatenate([np.zeros(TELEPHONE_RATE, np.float32), speech]))))
    endpointer = _endpointer()
    seen = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        endpointer.feed(pcm[i : i + FRAME], at_ms=i // 8)
        seen.append(endpointer.voiced_ms)
    assert seen[: TELEPHONE_RATE // FRAME] == [0] * (TELEPHONE_RATE // FRAME)  # the leading second of silence
    assert max(seen) >= 500
    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False) if b)  # never shrinks within an utterance


def test_a_pause_offers_exactly_the_audio_the_end_of_the_utterance_will_carry(real_recordings):
    """Speculative recognition starts at the pause; its input must be the final utterance's, sample for sample."""
    path, _ = real_recordings["ps_goforward"]
    speech = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
    silence = np.zeros(TELEPHONE_RATE, dtype=np.float32)
    events = _run(_endpointer(pause_ms=300), np.concatenate([silence, speech, silence]))
    pauses = [e for e in events if isinstance(e, SpeechPaused)]
    [end] = [e for e in events if isinstance(e, UtteranceEnded)]
    last = pauses[-1]
    assert (last.started_ms, last.speech_end_ms) == (end.started_ms, end.speech_end_ms)
    assert np.array_equal(last.pcm, end.pcm)
    # Speech that goes on after a pause makes a longer utterance than the pause offered.
    twice = np.concatenate([silence, speech, silence[:3200], speech, silence, silence, silence])
    events = _run(_endpointer(pause_ms=300, end_silence_ms=2000), twice)
    pauses = [e for e in events if isinstance(e, SpeechPaused)]
    [end] = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(pauses) >= 2 and len(pauses[0].pcm) < len(end.pcm)
    unpaused = _run(_endpointer(pause_ms=0), np.concatenate([silence, speech, silence]))
    assert not any(isinstance(e, SpeechPaused) for e in unpaused)


def test_an_utterance_can_be_ended_early_by_another_endpointer(real_recordings):
    path, _ = real_recordings["ps_goforward"]
    speech = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
    endpointer = _endpointer()
    assert endpointer.end_now() is None  # nothing under way
    events = _run(endpointer, np.concatenate([np.zeros(TELEPHONE_RATE, np.float32), speech, speech[:0]]))
    assert endpointer.in_speech and endpointer.silence_ms < 600
    ended = endpointer.end_now()
    assert ended is not None and not endpointer.in_speech
    assert ended.started_ms == next(e for e in events if isinstance(e, SpeechStarted)).at_ms
    assert len(ended.pcm) / TELEPHONE_RATE > 1.0


def test_voice_that_may_start_an_utterance_is_dated_from_its_first_voiced_frame(real_recordings):
    path, _ = real_recordings["ps_goforward"]
    speech = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
    endpointer = _endpointer()
    _run(endpointer, np.zeros(TELEPHONE_RATE, dtype=np.float32))
    assert endpointer.starting_at_ms() is None, "silence: nothing starting"
    # Feed the recording frame by frame (after the second of silence) until its voice is heard, not yet speech.
    pcm = ulaw_decode(ulaw_encode(float_to_pcm16(speech)))
    at_ms = 1000
    while endpointer.starting_at_ms() is None:
        events = endpointer.feed(pcm[(at_ms - 1000) * 8 : (at_ms - 1000) * 8 + FRAME], at_ms=at_ms)
        assert not events
        at_ms += 20
    assert endpointer.starting_at_ms() == at_ms - 20, "the frame just fed is the first voiced one"
    while not endpointer.in_speech:
        (started,) = endpointer.feed(pcm[(at_ms - 1000) * 8 : (at_ms - 1000) * 8 + FRAME], at_ms=at_ms) or (None,)
        at_ms += 20
    assert isinstance(started, SpeechStarted) and endpointer.starting_at_ms() is None


def _on_noisy_line(real_recordings, snr_db: float, noise: str = "pink", seed: int = 3) -> np.ndarray:
    """JFK's speech after 2 s and before 3 s of the line, ``noise`` at ``snr_db`` under it throughout, as int16."""
    path, _ = real_recordings["jfk"]
    line = np.zeros(TELEPHONE_RATE, dtype=np.float32)
    audio = np.concatenate([line, line, read_audio(path, TELEPHONE_RATE), line, line, line])
    return float_to_pcm16(apply(audio, LineCondition("noisy", snr_db=snr_db, noise=noise), seed=seed))


def _feed(endpointer: Endpointer, pcm: np.ndarray) -> list:
    return [e for i in range(0, len(pcm) - FRAME + 1, FRAME) for e in endpointer.feed(pcm[i : i + FRAME], at_ms=i // 8)]


VAD = VadSettings()
GATED = {  # the defaults
    "end_silence_ms": 700,
    "noise_gate_db": VAD.noise_gate_db,
    "noise_end_ms": VAD.noise_end_ms,
    "caller_range_db": VAD.caller_range_db,
}


def test_on_a_noisy_line_the_utterance_ends_when_the_caller_stops(real_recordings):
    pcm = _on_noisy_line(real_recordings, snr_db=10)
    speech_end_ms = 2000 + 11000  # the recording is 11 s long, then 3 s of the noisy line
    ungated = _feed(_endpointer(end_silence_ms=700), pcm)
    gated = _feed(_endpointer(**GATED), pcm)
    # WebRTC VAD hears the noise as speech: the utterance never ends, though the caller stopped 3 s ago.
    assert not any(isinstance(e, UtteranceEnded) for e in ungated)
    ends = [e for e in gated if isinstance(e, UtteranceEnded) and e.speech_end_ms > 2000]
    assert ends, "over the noise floor, the caller's speech ends as an utterance"
    assert 2000 < ends[0].started_ms < 3000  # the caller's first words are in it
    assert speech_end_ms - 1500 < ends[-1].speech_end_ms <= speech_end_ms  # and their last ones
    assert not any(isinstance(e, SpeechStarted) and e.at_ms > speech_end_ms for e in gated)  # noise starts nothing
    # What the noise started before the floor was known is marked as the line's noise; the caller's speech is not.
    assert all(e.line_noise == (e.speech_end_ms <= 2000) for e in gated if isinstance(e, UtteranceEnded))


def test_a_caller_speaking_before_the_noise_floor_is_known_is_not_the_lines_noise(real_recordings):
    path, _ = real_recordings["jfk"]
    line = np.zeros(TELEPHONE_RATE * 3, dtype=np.float32)
    for said_s in (0.4, 2.0):  # "And so", over before the floor is known; "And so, my fellow Americans"
        speech = read_audio(path, TELEPHONE_RATE)[: int(TELEPHONE_RATE * said_s)]
        noisy = apply(np.concatenate([speech, line]), LineCondition("noisy", snr_db=10, noise="pink"), seed=3)
        ends = [e for e in _feed(_endpointer(**GATED), float_to_pcm16(noisy)) if isinstance(e, UtteranceEnded)]
        assert ends and ends[0].started_ms < NoiseFloor.MIN_FRAMES * FRAME_MS  # it began before the floor was known
        assert not any(e.line_noise for e in ends), said_s  # their voice stands out of the floor, once it is known


def test_a_pause_under_noise_offers_the_audio_the_noise_end_will_carry(real_recordings):
    events = _feed(_endpointer(**GATED, pause_ms=300), _on_noisy_line(real_recordings, snr_db=10))
    last = max(i for i, e in enumerate(events) if isinstance(e, UtteranceEnded))
    pause = events[last - 1]
    assert isinstance(pause, SpeechPaused)  # the line can start recognising 300 ms into the caller's silence
    assert (pause.started_ms, pause.speech_end_ms) == (events[last].started_ms, events[last].speech_end_ms)
    assert np.array_equal(pause.pcm, events[last].pcm)


def test_a_quiet_line_is_left_to_the_detector(real_recordings):
    path, _ = real_recordings["ps_librivox_0870"]  # read in a quiet room, on a digital line silent around it
    silence = np.zeros(TELEPHONE_RATE * 2, dtype=np.float32)
    pcm = float_to_pcm16(telephone_round_trip(np.concatenate([silence, read_audio(path, TELEPHONE_RATE), silence]),
                                              TELEPHONE_RATE))  # fmt: skip
    gated, ungated = _feed(_endpointer(**GATED), pcm), _feed(_endpointer(end_silence_ms=700), pcm)

    def described(events: list) -> list:
        return [(type(e).__name__, getattr(e, "pcm", np.zeros(0)).tobytes(), [v for v in vars(e).values()
                 if not isinstance(v, np.ndarray)]) for e in events]  # fmt: skip

    assert described(gated) == described(ungated)  # every event, its audio and its times the same
    assert any(isinstance(e, UtteranceEnded) for e in gated)


def test_the_noise_floor_follows_the_line():
    rng = np.random.default_rng(1)
    floor = NoiseFloor(margin_db=6)
    quiet, loud = 300.0, 3000.0  # noise rms in int16 steps: about 50 and 70 dB over one step
    for i in range(NoiseFloor.WINDOW_FRAMES):
        out = floor.stands_out((rng.standard_normal(FRAME) * quiet).astype(np.int16))
        if i + 1 < NoiseFloor.MIN_FRAMES:
            assert out and floor.floor_db is None  # not enough of the line heard yet: every frame stands out
    assert floor.floor_db is not None and abs(floor.floor_db - 20 * np.log10(quiet)) < 3
    # A frame 12 dB louder stands out (8 dB over the floor once levelled with the 40 ms before it).
    assert floor.stands_out((rng.standard_normal(FRAME) * quiet * 4).astype(np.int16))
    for _ in range(NoiseFloor.WINDOW_FRAMES):
        floor.stands_out((rng.standard_normal(FRAME) * loud).astype(np.int16))
    assert floor.floor_db is not None and abs(floor.floor_db - 20 * np.log10(loud)) < 3
    assert not floor.stands_out((rng.standard_normal(FRAME) * loud).astype(np.int16))


def test_steady_noise_heard_as_speech_is_over_once_the_floor_is_known(real_recordings):
    path, _ = real_recordings["ps_librivox_0870"]
    hiss = float_to_pcm16(noise_alone("hiss", read_audio(path, TELEPHONE_RATE), seed=5))  # as loud as that voice
    ungated = _feed(_endpointer(end_silence_ms=700), hiss)
    gated = _feed(_endpointer(**GATED), hiss)
    assert [type(e) for e in ungated] == [SpeechStarted]  # WebRTC VAD: speech from the first frame, never over
    # The floor is not known in the first 500 ms; once it is, what they started ends, and nothing starts again.
    assert [type(e) for e in gated] == [SpeechStarted, UtteranceEnded]
    assert gated[1].speech_end_ms <= NoiseFloor.MIN_FRAMES * FRAME_MS
    assert gated[1].line_noise  # not one frame of it stood out of the floor: no voice to recognise


def test_other_voices_near_the_caller_do_not_hold_the_utterance_open(real_recordings):
    # Babble (other people talking, 15 dB under the caller) stands out of the noise floor as a voice does.
    pcm = _on_noisy_line(real_recordings, snr_db=15, noise="babble", seed=2)
    speech_end_ms = 2000 + 11000  # as above; the recording's last word ends about 800 ms before its end
    floor_only = _feed(_endpointer(**(GATED | {"caller_range_db": 0})), pcm)
    gated = _feed(_endpointer(**GATED), pcm)
    assert not any(isinstance(e, UtteranceEnded) for e in floor_only)  # still "speaking" 3 s after the last word
    ends = [e for e in gated if isinstance(e, UtteranceEnded)]
    assert ends, "under the caller's own level, the babble no longer holds the utterance open"
    assert ends[0].started_ms < 3000  # with the caller's first words (the babble began before the floor was known)
    assert speech_end_ms - 1500 < ends[0].speech_end_ms <= speech_end_ms  # and it ends at their last ones


def test_the_callers_level_follows_their_voice():
    level = CallerLevel(range_db=10)
    assert all(level.is_caller(40.0) for _ in range(CallerLevel.MIN_FRAMES))  # too little voice heard to judge yet
    for _ in range(CallerLevel.WINDOW_FRAMES):
        level.is_caller(70.0)
    assert level.is_caller(62.0)  # a softer word of theirs, 8 dB under their level
    assert not level.is_caller(55.0)  # another voice 15 dB under it
    for _ in range(CallerLevel.WINDOW_FRAMES):
        level.is_caller(55.0)  # they moved the phone away: their level follows over the last 10 s
    assert level.is_caller(55.0)
