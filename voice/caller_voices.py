"""Voices that play callers in spoken evaluations: other engines and speakers than the assistant's own Piper voice.

flite (Debian's `flite`: the CMU slt, rms and awb speakers) and espeak-ng (another engine, British and American
voices). Each speaks at a chosen rate (1.0 = the voice's own pace, 1.2 = 20 % faster) and returns float32 mono at
the phone line's 8 kHz. One voice is not a caller population: evaluations use all of them.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voice.codecs import TELEPHONE_RATE, pcm16_to_float, resample

if TYPE_CHECKING:
    from voice.tts.piper import PiperTts


class CallerVoiceError(RuntimeError):
    """The voice's engine is missing or failed; the message says which and how to install it."""


@dataclass(frozen=True)
class CallerVoice:
    """One simulated caller voice: an engine and a speaker of it."""

    name: str
    engine: str  # "flite" or "espeak-ng"
    speaker: str

    def speak(self, text: str, rate: float = 1.0) -> np.ndarray:
        """``text`` spoken at ``rate`` times the voice's pace, float32 mono at 8 kHz."""
        if not text.strip():
            raise CallerVoiceError("nothing to say")
        if not 0.5 <= rate <= 2.0:
            raise CallerVoiceError(f"speaking rate {rate} is outside 0.5-2.0")
        binary = shutil.which(self.engine)
        if binary is None:
            raise CallerVoiceError(f"{self.engine} is not installed (apt-get install {self.engine})")
        try:
            wav_bytes = self._run(binary, text, rate)
            with wave.open(io.BytesIO(wav_bytes)) as wav:
                sample_rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        except (subprocess.SubprocessError, OSError, wave.Error, EOFError) as e:
            raise CallerVoiceError(f"{self.name} failed: {e}") from e
        return resample(pcm16_to_float(pcm.copy()), sample_rate, TELEPHONE_RATE)

    def _run(self, binary: str, text: str, rate: float) -> bytes:
        if self.engine == "espeak-ng":
            words_per_minute = str(round(165 * rate))
            command = [binary, "-v", self.speaker, "-s", words_per_minute, "--stdout", "--", text]
            return subprocess.run(command, capture_output=True, timeout=30, check=True).stdout
        # flite writes only to a file; duration_stretch > 1 is slower speech.
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "speech.wav"
            command = [binary, "-voice", self.speaker, "--setf", f"duration_stretch={1 / rate:.3f}", "-t", text,
                       "-o", str(out)]  # fmt: skip
            subprocess.run(command, capture_output=True, timeout=30, check=True)
            return out.read_bytes()


CALLER_VOICES: dict[str, CallerVoice] = {
    voice.name: voice
    for voice in (
        CallerVoice("flite-slt", "flite", "slt"),  # US English, female
        CallerVoice("flite-rms", "flite", "rms"),  # US English, male
        CallerVoice("flite-awb", "flite", "awb"),  # Scottish English, male
        CallerVoice("espeak-gb", "espeak-ng", "en-gb-x-rp+f3"),  # British English, female variant
        CallerVoice("espeak-us", "espeak-ng", "en-us+m3"),  # American English, male variant
    )
}

# Voices that speak training sentences for the NLU's ASR-variant examples (`helpline nlu asr-variants`): other
# speakers than the evaluations' (a test keeps the two apart), so the spoken evaluations still judge voices whose
# mishearings the NLU never learnt from.
TRAINING_VOICES: dict[str, CallerVoice] = {
    voice.name: voice
    for voice in (
        CallerVoice("flite-kal16", "flite", "kal16"),  # US English, male, diphone synthesis
        CallerVoice("espeak-scotland", "espeak-ng", "en-gb-scotland+m2"),  # Scottish English, male variant
        CallerVoice("espeak-caribbean", "espeak-ng", "en-029+f2"),  # Caribbean English, female variant
    )
}


def piper_caller() -> PiperTts:
    """The assistant's own Piper voice playing a caller, 10 % slower than the assistant speaks: the demo call, the
    load generator, the seeded demo calls and the tests' callers. Not a voice of the spoken evaluations."""
    from foundation.settings import TtsSettings
    from voice.tts.piper import PiperTts

    return PiperTts(TtsSettings(length_scale=1.1))
