"""Real phone-line conditions for spoken evaluations, applied to a caller's speech at 8 kHz.

Background noise at 10-20 dB SNR (synthesised: pink noise, street rumble, or babble of other speech), the level
+-10 dB, 1-3 % of 20 ms frames lost (as a jitter buffer conceals them: silence), all after G.711 mu-law. Speaking
rate is chosen here but applied by the voice (see voice/caller_voices.py), which speaks at that pace. Every draw
comes from a seeded generator: the same turn gets the same line every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from voice.codecs import FRAME_MS, TELEPHONE_RATE, telephone_round_trip

FRAME = TELEPHONE_RATE * FRAME_MS // 1000
NOISES = ("pink", "street", "babble")  # mixed into a degraded line (the draw of `degraded` depends on this order)
NOISES_ALONE = (*NOISES, "hiss")  # what a line may carry while nobody speaks: also white hiss


@dataclass(frozen=True)
class LineCondition:
    """How one call's line sounds. ``clean`` is the phone line alone (G.711, nothing else)."""

    name: str
    rate: float = 1.0
    snr_db: float | None = None
    noise: str = "pink"
    level_db: float = 0.0
    frame_loss: float = 0.0

    def describe(self) -> str:
        if self.snr_db is None:
            return f"{self.name}: G.711 only, rate {self.rate:.2f}"
        return (
            f"{self.name}: {self.noise} noise at {self.snr_db:.0f} dB SNR, level {self.level_db:+.0f} dB, "
            f"rate {self.rate:.2f}, {self.frame_loss:.1%} frames lost"
        )


CLEAN = LineCondition("clean")


def seed_of(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "little")


def degraded(seed: int) -> LineCondition:
    """A line drawn from the ranges of a real one: noise 10-20 dB SNR, level +-10 dB, rate 0.85-1.2, loss 1-3 %."""
    rng = np.random.default_rng(seed)
    return LineCondition(
        name="degraded",
        rate=float(rng.uniform(0.85, 1.2)),
        snr_db=float(rng.uniform(10, 20)),
        noise=NOISES[int(rng.integers(len(NOISES)))],
        level_db=float(rng.uniform(-10, 10)),
        frame_loss=float(rng.uniform(0.01, 0.03)),
    )


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    return np.fft.irfft(spectrum, n)


def _street(rng: np.random.Generator, n: int) -> np.ndarray:
    """Brown-noise rumble with slow swells, like traffic behind a caller."""
    rumble = np.cumsum(rng.standard_normal(n))
    rumble -= np.convolve(rumble, np.ones(400) / 400, mode="same")  # keep it from drifting
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * np.arange(n) / TELEPHONE_RATE)
    return rumble * swell


def _babble(rng: np.random.Generator, n: int, speech: np.ndarray) -> np.ndarray:
    """Other talkers: the caller's own speech, reversed and shifted four times (speech-like, never intelligible)."""
    source = np.tile(speech[::-1], 1 + n // max(1, len(speech)) + 1)
    out = np.zeros(n)
    for _ in range(4):
        start = int(rng.integers(0, max(1, len(source) - n)))
        out += source[start : start + n]
    return out


def _noise(kind: str, rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
    """``kind`` noise as long as ``audio``, at no set level (babble is made of ``audio`` itself)."""
    if kind == "babble":
        return _babble(rng, len(audio), audio)
    if kind == "street":
        return _street(rng, len(audio))
    if kind == "hiss":
        return rng.standard_normal(len(audio))
    return _pink(rng, len(audio))


def _voiced(audio: np.ndarray) -> np.ndarray:
    """The samples of ``audio`` loud enough to be speech: what a noise level is set against."""
    return audio[np.abs(audio) > 0.02 * np.abs(audio).max()] if audio.any() else audio


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def apply(speech: np.ndarray, condition: LineCondition, seed: int) -> np.ndarray:
    """``speech`` (float32, 8 kHz) as the gateway receives it on ``condition``'s line."""
    rng = np.random.default_rng(seed)
    audio = speech.astype(np.float64) * 10 ** (condition.level_db / 20)
    if condition.snr_db is not None:
        voiced = _voiced(audio)
        noise = _noise(condition.noise, rng, audio)
        noise *= _rms(voiced) / _rms(noise) * 10 ** (-condition.snr_db / 20)
        audio = audio + noise
    line = telephone_round_trip(np.clip(audio, -1.0, 1.0).astype(np.float32), TELEPHONE_RATE)
    if condition.frame_loss > 0:
        lost = rng.random(len(line) // FRAME) < condition.frame_loss
        for index in np.flatnonzero(lost):
            line[index * FRAME : (index + 1) * FRAME] = 0.0
    return line


def noise_alone(kind: str, speech: np.ndarray, seed: int) -> np.ndarray:
    """``kind`` noise (pink, street, babble made from ``speech``, or white hiss) as long as ``speech`` and as loud as
    its voiced part, with no speech in it, as the gateway receives it (G.711): what a line carries while the caller is
    silent."""
    if kind not in NOISES_ALONE:
        raise ValueError(f"unknown noise {kind!r}: one of {', '.join(NOISES_ALONE)}")
    audio = speech.astype(np.float64)
    noise = _noise(kind, np.random.default_rng(seed), audio)
    noise *= _rms(_voiced(audio)) / _rms(noise)
    return apply(noise.astype(np.float32), CLEAN, seed)
