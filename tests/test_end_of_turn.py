"""The end-of-turn model and Silero VAD on real recorded speech, carried over the phone line; bad model files."""

from __future__ import annotations

import numpy as np
import pytest

from foundation.settings import EndOfTurnSettings, Settings, smart_turn_model_path
from voice.codecs import TELEPHONE_RATE, float_to_pcm16, read_audio, telephone_round_trip
from voice.end_of_turn import EndOfTurnError, create_end_of_turn
from voice.silero import SileroModel
from voice.vad import FRAME_MS, Endpointer, SpeechStarted, UtteranceEnded

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def smart_turn():  # type: ignore[no-untyped-def]
    models_dir = Settings().models_dir
    return create_end_of_turn(EndOfTurnSettings(engine="smart_turn", model_path=smart_turn_model_path(models_dir)))


def _phone(real_recordings, stem: str) -> np.ndarray:
    path, _ = real_recordings[stem]
    return float_to_pcm16(telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE))


def _cut_after(pcm: np.ndarray, word: str) -> np.ndarray:
    """The recording up to the end of the first ``word`` (faster-whisper's word times), then 200 ms of silence."""
    from faster_whisper import WhisperModel

    from voice.asr.packaged_models import packaged_tiny_en
    from voice.codecs import resample

    model = WhisperModel(str(packaged_tiny_en()), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(resample(pcm.astype(np.float32) / 32768.0, TELEPHONE_RATE, 16000),
                                   word_timestamps=True, language="en")  # fmt: skip
    words = [w for s in segments for w in (s.words or [])]
    end = next(w.end for w in words if w.word.strip(" ,.").lower() == word)
    return np.concatenate([pcm[: int(end * TELEPHONE_RATE)], np.zeros(TELEPHONE_RATE // 5, dtype=np.int16)])


def test_a_whole_sentence_is_complete_and_one_cut_after_a_function_word_is_not(smart_turn, real_recordings):
    whole = _phone(real_recordings, "jfk")
    complete = smart_turn.complete(np.concatenate([whole, np.zeros(TELEPHONE_RATE // 5, dtype=np.int16)]))
    # "... ask not what your country can do for" : a caller pausing mid-sentence.
    incomplete = smart_turn.complete(_cut_after(whole, "for"))
    print(f"complete {complete:.3f}, cut after 'for' {incomplete:.3f}")
    assert complete >= EndOfTurnSettings().threshold > incomplete


def test_silero_hears_speech_in_real_audio_and_not_in_silence(real_recordings):
    model = SileroModel()
    pcm = np.concatenate([np.zeros(TELEPHONE_RATE, dtype=np.int16), _phone(real_recordings, "ps_goforward"),
                          np.zeros(TELEPHONE_RATE, dtype=np.int16)])  # fmt: skip
    endpointer = Endpointer(2, 700, 200, 28.0, detector=model.detector(0.5))
    frame = TELEPHONE_RATE * FRAME_MS // 1000
    events = [e for i in range(0, len(pcm) - frame + 1, frame) for e in endpointer.feed(pcm[i : i + frame])]
    [started] = [e for e in events if isinstance(e, SpeechStarted)]
    [ended] = [e for e in events if isinstance(e, UtteranceEnded)]
    assert 800 <= started.at_ms <= 1300  # the speech begins after the first second of silence
    assert ended.speech_end_ms - started.at_ms >= 800


def test_a_missing_or_corrupt_model_file_is_named_in_one_line(tmp_path):
    missing = tmp_path / "none.onnx"
    with pytest.raises(EndOfTurnError, match="none.onnx is missing"):
        create_end_of_turn(EndOfTurnSettings(engine="smart_turn", model_path=missing))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(EndOfTurnError, match="corrupt.onnx is corrupt"):
        create_end_of_turn(EndOfTurnSettings(engine="smart_turn", model_path=corrupt))
    assert create_end_of_turn(EndOfTurnSettings()) is None  # the silence rule needs no model
