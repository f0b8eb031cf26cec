import warnings

import numpy as np
import pytest

from voice.codecs import (
    TELEPHONE_FRAME_BYTES,
    AudioFileError,
    float_to_pcm16,
    frames,
    read_audio,
    resample,
    telephone_round_trip,
    ulaw_decode,
    ulaw_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the CPython reference G.711 codec, still present on 3.11


def test_ulaw_encode_matches_reference_for_every_sample_value():
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)


def test_ulaw_decode_matches_reference_for_every_code():
    codes = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype=np.int16)
    assert np.array_equal(ulaw_decode(codes), expected)


def test_ulaw_round_trip_error_is_within_quantisation_step():
    rng = np.random.default_rng(1)
    pcm = rng.integers(-20000, 20000, size=8000).astype(np.int16)
    decoded = ulaw_decode(ulaw_encode(pcm)).astype(np.int32)
    # mu-law keeps about 3 % relative precision (plus a small absolute step near zero).
    assert np.all(np.abs(decoded - pcm) <= np.abs(pcm.astype(np.int32)) * 0.035 + 8)


def test_frames_are_20ms_and_last_is_padded_with_silence():
    chunks = frames(b"\x00" * 330)
    assert [len(c) for c in chunks] == [TELEPHONE_FRAME_BYTES] * 3
    assert chunks[-1][10:] == b"\xff" * (TELEPHONE_FRAME_BYTES - 10)


def test_resample_changes_length_by_rate_ratio_and_keeps_dtype():
    tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    narrow = resample(tone, 22050, 8000)
    assert narrow.dtype == np.float32 and abs(len(narrow) - 8000) <= 2
    pcm = resample(float_to_pcm16(tone), 22050, 8000)
    assert pcm.dtype == np.int16


def test_telephone_round_trip_keeps_speech_band_tone():
    rate = 16000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    out = telephone_round_trip(tone, rate)
    assert abs(len(out) - rate) <= 4
    correlation = np.corrcoef(tone[1000:-1000], out[1000 : len(tone) - 1000])[0, 1]
    assert correlation > 0.99


def test_read_audio_of_unreadable_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "not-audio.wav"
    bogus.write_text("this is not a wave file")
    with pytest.raises(AudioFileError, match="cannot read audio file"):
        read_audio(bogus, 8000)
    with pytest.raises(AudioFileError):
        read_audio(tmp_path / "missing.wav", 8000)


def test_read_audio_converts_any_rate_and_channels_to_mono(real_recordings):
    path, _ = real_recordings["jfk"]  # 44.1 kHz stereo FLAC
    audio = read_audio(path, 8000)
    assert audio.ndim == 1 and 10.5 < len(audio) / 8000 < 11.5
