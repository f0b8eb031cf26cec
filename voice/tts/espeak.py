"""espeak-ng (Debian package) as the fallback voice: robotic but always there."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from voice.tts.base import Speech, TtsError
from voice.tts.registry import register_tts

if TYPE_CHECKING:
    from foundation.settings import TtsSettings


@register_tts
class EspeakTts:
    name: ClassVar[str] = "espeak"

    def __init__(self, settings: TtsSettings) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise TtsError("espeak-ng is not installed (apt-get install espeak-ng)")
        self._binary = binary
        self._voice = settings.espeak_voice

    def synthesize(self, text: str) -> Speech:
        if not text.strip():
            raise TtsError("nothing to say")
        try:
            done = subprocess.run(
                [self._binary, "-v", self._voice, "--stdout", "--", text],
                capture_output=True,
                timeout=30,
                check=True,
            )
            with wave.open(io.BytesIO(done.stdout)) as wav:
                rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        except (subprocess.SubprocessError, wave.Error, EOFError) as e:
            raise TtsError(f"espeak-ng failed: {e}") from e
        return Speech(pcm=pcm.copy(), sample_rate=rate)
