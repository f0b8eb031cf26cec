"""Audio codecs for the telephone line: G.711 mu-law <-> PCM16, resampling, reading audio files. No I/O but files."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import soxr

TELEPHONE_RATE = 8000
ASR_RATE = 16000
FRAME_MS = 20
TELEPHONE_FRAME_BYTES = TELEPHONE_RATE * FRAME_MS // 1000  # 160 mu-law bytes = 20 ms

WAVE_FORMAT_MULAW = 7
_BIAS = 0x84
_CLIP14 = 8159


class AudioFileError(ValueError):
    """An audio file that cannot be read or holds no audio."""


def _build_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_DECODE_TABLE = _build_decode_table()


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> int16 PCM samples."""
    return _DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM samples -> G.711 mu-law bytes, bit-exact with the ITU-T reference (and audioop.lin2ulaw)."""
    value = np.asarray(pcm, dtype=np.int32) >> 2  # the reference works on 14-bit samples (floor shift)
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), _CLIP14) + (_BIAS >> 2)
    # Segment = how many times the magnitude exceeds 0x3F doubling: the highest set bit above bit 5.
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0, 8)
    code = np.where(segment > 7, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8).tobytes()


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 or int16 mono audio; returns the same dtype."""
    if from_rate == to_rate or len(audio) == 0:
        return audio
    if audio.dtype == np.int16:
        return float_to_pcm16(soxr.resample(pcm16_to_float(audio), from_rate, to_rate))
    return soxr.resample(audio.astype(np.float32), from_rate, to_rate).astype(np.float32)


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Read any soundfile-readable file as float32 mono at ``rate``; AudioFileError if unreadable or empty."""
    import soundfile as sf

    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioFileError(f"cannot read audio file {path}: {e}") from e
    if audio.size == 0:
        raise AudioFileError(f"audio file {path} holds no samples")
    return resample(audio.mean(axis=1), int(file_rate), rate)


def telephone_round_trip(audio: np.ndarray, rate: int) -> np.ndarray:
    """What a caller's audio sounds like after the phone line: 8 kHz mu-law and back to ``rate`` float32."""
    narrow = float_to_pcm16(resample(audio, rate, TELEPHONE_RATE))
    return resample(pcm16_to_float(ulaw_decode(ulaw_encode(narrow))), TELEPHONE_RATE, rate)


def frames(data: bytes, frame_bytes: int = TELEPHONE_FRAME_BYTES) -> list[bytes]:
    """Split a byte string into fixed-size frames; the last one is padded with mu-law silence (0xFF)."""
    out = [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]
    if out and len(out[-1]) < frame_bytes:
        out[-1] = out[-1] + b"\xff" * (frame_bytes - len(out[-1]))
    return out


def mulaw_wav(interleaved: bytes, channels: int, rate: int = TELEPHONE_RATE) -> bytes:
    """A WAV file of 8-bit mu-law samples (format 7: a ``fmt`` chunk with no extra bytes and a ``fact`` chunk)."""
    frames = len(interleaved) // channels
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_MULAW, channels, rate, rate * channels, channels, 8, 0)
    fact = struct.pack("<I", frames)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(interleaved))
        + interleaved
        + (b"\0" if len(interleaved) % 2 else b"")
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm_wav(wav: bytes) -> bytes:
    """Any WAV soundfile reads (a recording's mu-law) as 16-bit PCM, which every browser plays; AudioFileError when
    it is not one."""
    import soundfile as sf

    try:
        audio, rate = sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFileError(f"not a readable WAV: {e}") from e
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
