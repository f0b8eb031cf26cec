"""Smart Turn v3.2 (pipecat-ai's open end-of-turn model, BSD-2; int8 ONNX, 8.7 MB): it hears the last 8 s of the
caller's audio (resampled 8 -> 16 kHz, Whisper log-mel features) and judges from the sound of the words and their
intonation whether the turn is complete. Set-up takes the file out of the pipecat-ai wheel (``helpline models``);
the product does not depend on that framework.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from foundation.files import file_sha256
from voice.codecs import TELEPHONE_RATE, pcm16_to_float, resample
from voice.end_of_turn.base import EndOfTurnError
from voice.end_of_turn.registry import register_end_of_turn

if TYPE_CHECKING:
    from foundation.settings import EndOfTurnSettings

MODEL_RATE = 16000
WINDOW_S = 8  # the model hears the last 8 s of the turn; shorter turns are padded with silence in front
PIPECAT_WHEEL = "pipecat-ai==1.14.0"  # the wheel that carries the model file; only that file is taken
SMART_TURN_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


def take_smart_turn_model(target: Path) -> None:
    """Download the pipecat-ai wheel (pip, from the package index set-up uses) and take the Smart Turn model file out
    of it, checked against its known SHA-256; the framework itself is not installed."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, PIPECAT_WHEEL],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("pipecat_ai-*.whl"))
        if done.returncode != 0 or not wheels:
            raise EndOfTurnError(f"pip could not download {PIPECAT_WHEEL}: {done.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                data = wheel.read(SMART_TURN_IN_WHEEL)
            except KeyError:
                raise EndOfTurnError(f"{wheels[0].name} holds no {SMART_TURN_IN_WHEEL}") from None
    if hashlib.sha256(data).hexdigest() != SMART_TURN_SHA256:
        raise EndOfTurnError(f"{SMART_TURN_IN_WHEEL} in {PIPECAT_WHEEL} is not the model this line was measured with")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)


@register_end_of_turn
class SmartTurn:
    name: ClassVar[str] = "smart_turn"

    def __init__(self, settings: EndOfTurnSettings):
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        path = settings.model_path
        if path is None or not path.is_file():
            raise EndOfTurnError(f"the end-of-turn model {path} is missing: run `helpline models` (or ./setup.sh)")
        if file_sha256(path) != SMART_TURN_SHA256:
            raise EndOfTurnError(
                f"the end-of-turn model {path} is corrupt (wrong SHA-256): run `helpline models --force`"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
        # The model is int8. On x86 CPUs without VNNI, ONNX Runtime's int8 products saturate at 16 bits and the model
        # misjudges: on an AMD EPYC without AVX-512 the JFK sentence whole scored 0.26 (0.66 with VNNI), so a finished
        # turn looked unfinished. This widens them there (0.66 again), at about 1.2x the CPU per decision.
        options.add_session_config_entry("session.x64quantprecision", "1")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for a truncated or foreign file
            raise EndOfTurnError(f"the end-of-turn model {path} cannot be loaded ({e}): run `helpline models`") from e
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(feature_size=80, sampling_rate=MODEL_RATE)
        self._lock = threading.Lock()  # the feature extractor keeps per-call sizes on itself

    def complete(self, pcm: np.ndarray) -> float:
        audio = resample(pcm16_to_float(pcm), TELEPHONE_RATE, MODEL_RATE)
        window = WINDOW_S * MODEL_RATE
        audio = audio[-window:] if len(audio) >= window else np.pad(audio, (window - len(audio), 0))
        # Zero mean, unit variance, as the model was trained (Whisper's feature extractor with normalisation).
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        with self._lock:
            features = self._features(audio.astype(np.float32), padding=0)
        try:
            [probability] = self._session.run(None, {self._input: features[np.newaxis, :, : WINDOW_S * 100]})
        except Exception as e:
            raise EndOfTurnError(f"the end-of-turn model failed: {e}") from e
        return float(np.asarray(probability).reshape(-1)[0])
