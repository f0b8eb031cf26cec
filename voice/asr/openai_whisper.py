"""openai-whisper (PyTorch) batch recognizer, on a checkpoint made from the packaged CTranslate2 model.

An optional engine: PyTorch is large, and faster-whisper runs the same weights faster. It is here for deployments that
standardise on PyTorch and as a reference implementation: with the same weights, decoding options and float32
arithmetic its transcripts match faster-whisper's. ``helpline models`` writes the checkpoint
(voice/asr/whisper_checkpoint.py); ``HELPLINE_ASR__MODEL_PATH`` may point at another one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from voice.asr.base import AsrCapabilities, AsrError, DecodedSegment, RecognitionContext, Transcript, whisper_transcript
from voice.asr.registry import register_asr
from voice.codecs import ASR_RATE, resample

if TYPE_CHECKING:
    from foundation.settings import AsrSettings

# The decoding faster-whisper uses in voice/asr/faster_whisper.py, in openai-whisper's terms.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@register_asr
class OpenAiWhisperAsr:
    name: ClassVar[str] = "openai_whisper"
    capabilities: ClassVar[AsrCapabilities] = AsrCapabilities(
        streaming_partials=False, word_confidences=True, languages=("en",), contextual_biasing=True
    )

    def __init__(self, settings: AsrSettings) -> None:
        try:
            import torch
            from whisper.model import ModelDimensions, Whisper
        except ImportError as e:
            raise AsrError(
                "openai-whisper is not installed: ./setup.sh installs it (PyTorch CPU and openai-whisper)"
            ) from e
        path = settings.model_path
        if path is None or not Path(path).is_file():
            raise AsrError(f"no openai-whisper checkpoint at {path}: run `helpline models` to make it")
        self._settings = settings
        checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        model = Whisper(ModelDimensions(**checkpoint["dims"]))
        model.load_state_dict(checkpoint["model_state_dict"])
        if checkpoint.get("alignment_heads"):
            model.set_alignment_heads(checkpoint["alignment_heads"])
        self._model = model.float().eval()
        if settings.cpu_threads:
            torch.set_num_threads(settings.cpu_threads)

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        import whisper

        audio16 = resample(audio.astype(np.float32), sample_rate, ASR_RATE)
        try:
            result = whisper.transcribe(
                self._model,
                audio16,
                language=self._settings.language,
                temperature=TEMPERATURES,
                beam_size=self._settings.beam_size if self._settings.beam_size > 1 else None,
                condition_on_previous_text=False,
                initial_prompt=(context.prompt if context else "") or None,  # openai-whisper has no hotwords
                word_timestamps=self._settings.word_confidences,
                no_speech_threshold=self._settings.no_speech_threshold,
                compression_ratio_threshold=self._settings.compression_ratio_threshold,
                fp16=False,
                verbose=None,
            )
        except (RuntimeError, ValueError) as e:
            raise AsrError(f"openai-whisper failed: {e}", retryable=isinstance(e, RuntimeError)) from e
        decoded = [
            DecodedSegment(
                s["text"],
                s["avg_logprob"],
                len(s["tokens"]),
                s["no_speech_prob"],
                tuple((w["word"], float(w["probability"])) for w in s.get("words", [])),
                tuple((float(w["start"]), float(w["end"])) for w in s.get("words", [])),
            )
            for s in result.get("segments", [])
        ]
        language, audio_s = result.get("language", self._settings.language), len(audio16) / ASR_RATE
        return whisper_transcript(decoded, language, audio_s, tail_below=self._settings.invented_tail_below)
