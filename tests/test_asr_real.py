"""The real faster-whisper model (tiny.en, int8, from its package) on real recorded speech."""

import pytest

from voice.codecs import ASR_RATE, TELEPHONE_RATE, read_audio, telephone_round_trip
from voice.wer import corpus_wer

pytestmark = pytest.mark.models


def test_wer_on_real_speech_at_16khz(asr_model, real_recordings):
    pairs = []
    for path, reference in real_recordings.values():
        transcript = asr_model.transcribe(read_audio(path, ASR_RATE), ASR_RATE)
        assert 0.0 < transcript.confidence <= 1.0
        pairs.append((reference, transcript.text))
    assert corpus_wer(pairs) <= 0.08, pairs


def test_wer_on_real_speech_after_the_telephone_round_trip(asr_model, real_recordings):
    """8 kHz mu-law, as the caller's audio reaches us from Twilio."""
    pairs = []
    for path, reference in real_recordings.values():
        line_audio = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
        transcript = asr_model.transcribe(line_audio, TELEPHONE_RATE)
        pairs.append((reference, transcript.text))
    assert corpus_wer(pairs) <= 0.15, pairs


def test_a_recognition_alone_on_more_threads_hears_the_same_words(asr_model, real_recordings):
    """ASR__CPU_THREADS_ALONE: the second loading of the model, on more threads, is the same model."""
    from voice.asr.base import RecognitionContext

    assert asr_model._alone is not asr_model._shared  # two threads alone, one beside another recognition
    for path, _ in list(real_recordings.values())[:3]:
        audio = telephone_round_trip(read_audio(path, TELEPHONE_RATE), TELEPHONE_RATE)
        shared = asr_model.transcribe(audio, TELEPHONE_RATE, RecognitionContext())
        alone = asr_model.transcribe(audio, TELEPHONE_RATE, RecognitionContext(alone=True))
        assert alone.text and alone.text == shared.text


def test_silence_gives_an_empty_or_unconfident_transcript(asr_model):
    import numpy as np

    transcript = asr_model.transcribe(np.zeros(TELEPHONE_RATE * 2, dtype=np.float32), TELEPHONE_RATE)
    assert transcript.is_empty or transcript.no_speech > 0.5 or transcript.confidence < 0.5


class _ModelSpy:
    """The real CTranslate2 model, with the length of every encoder input noted, and the sampling temperature of each
    decoding (0: greedy)."""

    def __init__(self, model):
        self._model = model
        self.frames: list[int] = []
        self.temperatures: list[float] = []

    def encode(self, features, **kwargs):
        self.frames.append(features.shape[-1])
        return self._model.encode(features, **kwargs)

    def generate(self, *args, **kwargs):
        self.temperatures.append(kwargs.get("sampling_temperature", 0.0))
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.mark.parametrize(
    "window_s, expected_frames", [(15.0, [1500, 1500]), (10.0, [1000, 1200]), (30.0, [3000, 3000])]
)
def test_the_encoder_window_fits_the_utterance(real_recordings, window_s, expected_frames):
    """A 2.8 s turn is not padded to Whisper's 30 s (the window is the engine's setting), and an 11 s one gets its
    own length plus a margin when that is longer; the words stay right."""
    from foundation.settings import AsrSettings
    from voice.asr import create_asr
    from voice.wer import wer

    engine = create_asr(AsrSettings(window_s=window_s))
    spy = _ModelSpy(engine._model.model)
    engine._model.model = spy
    for stem in ("ps_goforward", "jfk"):
        path, reference = real_recordings[stem]
        transcript = engine.transcribe(read_audio(path, ASR_RATE), ASR_RATE)
        assert wer(reference, transcript.text) <= 0.1, transcript.text
    assert spy.frames == expected_frames


def test_a_recognition_that_stops_writing_early_is_heard_again_whole_and_unbiased(asr_model):
    """Biased by the domain prompt (and hurried or not), Whisper can end the text early: an espeak-ng caller reading
    a number out, then asking, was heard as "My personal number in 850,". The request must survive."""
    from nlu.asr_context import AsrVocabulary
    from voice.asr.base import RecognitionContext
    from voice.caller_voices import CALLER_VOICES

    said = "My personal number is 850314-1239. How much child allowance do you get per month?"
    audio = telephone_round_trip(CALLER_VOICES["espeak-us"].speak(said), TELEPHONE_RATE)
    prompt = AsrVocabulary.load("en").context("How can I help you?").prompt
    heard = asr_model.transcribe(audio, TELEPHONE_RATE, RecognitionContext(prompt=prompt, hurry=True))
    assert "child allowance" in heard.text.lower(), heard.text


def test_without_whispers_compression_check_a_repeated_sentence_is_not_sampled_again():
    """A 28 s piece of one sentence said again and again compresses so well that Whisper's own loop check samples it
    again at five temperatures (best of five each). ``ASR__COMPRESSION_RATIO_THRESHOLD`` unset turns that check off
    (measured, not the default: README "Faults, hostile input, load"); the piece is then decoded greedily only, and
    heard. What the sampling writes is left to chance (a fresh-clone CI emulation got nothing at all, no_speech 1.0):
    only that it sampled is asked of it."""
    import numpy as np

    from foundation.settings import AsrSettings
    from nlu.asr_context import AsrVocabulary
    from voice.asr import create_asr
    from voice.caller_voices import CALLER_VOICES

    said = "I have been waiting for my money for weeks and nobody tells me anything and"
    sentence = CALLER_VOICES["espeak-us"].speak(said)
    piece = np.tile(sentence, int(np.ceil(28 * TELEPHONE_RATE / len(sentence))))[: 28 * TELEPHONE_RATE]
    context = AsrVocabulary.load("en").context(None)
    for threshold, sampled in ((2.4, True), (None, False)):
        engine = create_asr(AsrSettings(compression_ratio_threshold=threshold))
        spy = _ModelSpy(engine._model.model)
        engine._model.model = spy
        heard = engine.transcribe(telephone_round_trip(piece, TELEPHONE_RATE), TELEPHONE_RATE, context)
        assert any(spy.temperatures) == sampled, (threshold, spy.temperatures)
        if not sampled:
            assert "waiting for my money" in heard.text.lower(), heard.text


def test_a_short_turn_biased_by_the_domain_prompt_is_heard_in_one_pass(caller_voice):
    """Biased by the domain prompt, Whisper often ends a short turn's text without a closing timestamp; faster-whisper
    then decodes again from the last word's end: the 100 ms of silence after it, another full encoder pass, and the
    ". ." Whisper writes there sampled again at up to five temperatures (1.2-3.1 s for a 1.6 s turn instead of
    0.6-0.8 s on an AMD EPYC without AVX-512). The window reached the end of the turn, so it is heard once, its words
    written to its end. Not word for word: Piper samples each synthesis afresh, and one "What are your opening hours?"
    in three or four is heard as "... opening now?" or "... opening now hours?", in one pass as in faster-whisper's two
    (12 syntheses each, AMD EPYC with AVX-512)."""
    from foundation.settings import AsrSettings
    from nlu.asr_context import AsrVocabulary
    from tests.conftest import spoken
    from voice.asr import create_asr
    from voice.wer import wer

    engine = create_asr(AsrSettings())
    spy = _ModelSpy(engine._model.model)
    engine._model.model = spy
    context = AsrVocabulary.load("en").context("How can I help you?")
    for said in ("What are your opening hours?", "I want to talk to a person.", "How do I report a new bank account?"):
        spy.frames.clear()
        heard = engine.transcribe(spoken(caller_voice, said), TELEPHONE_RATE, context)
        assert len(spy.frames) == 1, (said, spy.frames)
        assert wer(said, heard.text) <= 0.2, heard.text
        assert heard.audio_s - heard.words[-1].end < 0.5, (heard.audio_s, heard.words)
