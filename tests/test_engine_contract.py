"""Every registered engine meets the same contract (the registries are iterated, so a new engine is checked too)."""

import numpy as np
import pytest

from helpline.settings import AsrSettings, TtsSettings
from voice.asr import ASR_ENGINES, create_asr
from voice.asr.registry import ASR_REGISTRY
from voice.codecs import TELEPHONE_RATE, read_audio, telephone_round_trip
from voice.registry import Registry
from voice.tts import TTS_ENGINES, create_tts
from voice.tts.base import TtsError, split_sentences
from voice.wer import wer

create_asr(AsrSettings())  # imports the built-in engines, filling the registries
create_tts(TtsSettings())


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(ASR_ENGINES))
def test_asr_engine_transcribes_real_speech_from_the_phone_line(name, real_recordings):
    engine = create_asr(AsrSettings(engine=name))
    assert engine.capabilities.languages
    path, reference = real_recordings["ps_librivox_0920"]
    transcript = engine.transcribe(
        telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE), TELEPHONE_RATE
    )
    assert wer(reference, transcript.text) <= 0.2
    assert 0.0 <= transcript.confidence <= 1.0 and transcript.audio_s > 3
    if engine.capabilities.word_confidences:
        assert " ".join(w.text for w in transcript.words) == " ".join(transcript.text.split())
        assert all(0.0 <= w.confidence <= 1.0 for w in transcript.words)
    for alternative in transcript.alternatives:
        assert alternative.text != transcript.text and 0.0 <= alternative.confidence <= 1.0


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(TTS_ENGINES))
def test_tts_engine_speaks_intelligibly_for_the_phone_line(name, asr_model):
    """Each voice is checked by listening: the ASR must recognise what it said, after the phone line."""
    text = "Your application has been received."
    speech = TTS_ENGINES[name](TtsSettings()).synthesize(text)
    assert speech.pcm.dtype == np.int16 and 1.0 < speech.duration_s < 6.0
    line = speech.to_telephone()
    assert len(line) == pytest.approx(speech.duration_s * TELEPHONE_RATE, rel=0.01)
    from voice.codecs import pcm16_to_float, ulaw_decode

    heard = asr_model.transcribe(pcm16_to_float(ulaw_decode(line)), TELEPHONE_RATE)
    assert wer(text, heard.text) <= 0.35, heard.text


def test_registry_refuses_duplicates_and_names_the_known_engines():
    registry: Registry[object] = Registry("test")

    @registry.register
    class One:
        name = "one"

    with pytest.raises(ValueError, match="registered twice"):

        @registry.register
        class Other:
            name = "one"

    with pytest.raises(ValueError, match="unknown test engine 'two'; registered: one"):
        registry.get("two")
    assert ASR_REGISTRY.get("faster_whisper") is ASR_ENGINES["faster_whisper"]


def test_sentences_are_split_for_streaming_synthesis():
    assert split_sentences("Hello there. How can I help? Say 'a person'!") == [
        "Hello there.",
        "How can I help?",
        "Say 'a person'!",
    ]


@pytest.mark.models
def test_repeated_sentences_are_not_synthesised_again_and_a_failing_voice_falls_back():
    from voice.tts.espeak import EspeakTts
    from voice.tts.piper import PiperTts
    from voice.tts.registry import FallbackTts

    voice = FallbackTts(PiperTts(TtsSettings()), None)
    first = voice.telephone("Please hold.")
    assert voice.telephone("Please hold.") is first  # the same audio, from the cache
    # A primary that really fails (espeak-ng has no such voice): the fallback speaks, and nothing is cached.
    broken = FallbackTts(EspeakTts(TtsSettings(espeak_voice="zzqq")), PiperTts(TtsSettings()))
    rescued = broken.telephone("Please hold.")
    assert len(rescued) > TELEPHONE_RATE // 2
    assert broken.telephone("Please hold.") is not rescued
    with pytest.raises(TtsError):
        FallbackTts(EspeakTts(TtsSettings(espeak_voice="zzqq")), None).telephone("Please hold.")
