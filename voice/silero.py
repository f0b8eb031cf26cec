"""Silero VAD (the `silero-vad` package's ONNX model, MIT) as the endpointer's speech detector, on the telephone
line's own 8 kHz audio: one model per line, a small state per call."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from voice.codecs import TELEPHONE_RATE, pcm16_to_float

WINDOW = 256  # samples per model step at 8 kHz (32 ms)
CONTEXT = 32  # samples of the previous step the model hears again


class SileroError(RuntimeError):
    """The Silero model is missing or cannot be loaded."""


def packaged_model() -> Path:
    try:
        path = Path(str(resources.files("silero_vad.data").joinpath("silero_vad.onnx")))
    except ModuleNotFoundError:
        raise SileroError("the silero-vad package is not installed: run ./setup.sh") from None
    if not path.is_file():
        raise SileroError(f"the Silero VAD model {path} is missing: reinstall the silero-vad package")
    return path


class SileroModel:
    """The ONNX session, shared by every call of the line (onnxruntime runs are thread-safe)."""

    def __init__(self, path: Path | None = None):
        import onnxruntime as ort

        path = path or packaged_model()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise SileroError(f"the Silero VAD model {path} cannot be loaded: {e}") from e
        self._rate = np.array(TELEPHONE_RATE, dtype=np.int64)

    def step(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Speech probability of one window (CONTEXT + WINDOW float32 samples), and the next state."""
        out, state = self._session.run(None, {"input": window[np.newaxis, :], "state": state, "sr": self._rate})
        return float(out.reshape(-1)[0]), state

    def detector(self, threshold: float) -> SileroDetector:
        return SileroDetector(self, threshold)


class SileroDetector:
    """One call's speech detector: says for each 20 ms frame whether the caller is speaking. The model steps every
    32 ms; a frame is speech while the latest probability is over the threshold (with hysteresis: once speaking,
    until it falls 0.15 under it)."""

    def __init__(self, model: SileroModel, threshold: float):
        self._model = model
        self._threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._speaking = False
        self.probability = 0.0

    def is_speech(self, pcm: np.ndarray) -> bool:
        self._pending = np.concatenate([self._pending, pcm16_to_float(pcm)])
        while len(self._pending) >= WINDOW:
            chunk, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            self.probability, self._state = self._model.step(np.concatenate([self._context, chunk]), self._state)
            self._context = chunk[-CONTEXT:]
            low = self._threshold - 0.15 if self._speaking else self._threshold
            self._speaking = self.probability >= low
        return self._speaking
