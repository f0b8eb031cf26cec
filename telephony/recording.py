"""A call's recording (RECORDING__ENABLED, off by default): the caller's audio and the assistant's, as the caller
heard them, two channels of 8 kHz mu-law on the call's stream clock, with personal data silenced.

- The caller's channel is every inbound frame at its stream time (a frame the network lost stays silent).
- The assistant's channel is what Twilio played: audio sent while earlier audio still plays follows it; a ``clear``
  (barge-in) drops what had not been played yet. A sentence that holds personal data (the caller's number read back)
  is never kept: silence takes its place.
- The caller's personal data, as the transcripts' masking finds it (foundation/redaction.py: personal numbers, card
  and account numbers, e-mail addresses, phone numbers), every number of four digits or more (in digits or number
  words) and a number the words end with (``_long_numbers``), are silenced from
  the word timestamps of the words that say them: from the start of the word before (or 400 ms before, if earlier) to
  the start of the word after (or 250 ms after, if later), or to the end of the utterance when the words stop at the
  number (Whisper starts a number late, and drops a trailing group of digits more often than a caller stops there);
  when a span cannot be placed on timed words, the whole utterance is silenced.
- A recording is kept only when the caller heard the greeting's recording notice whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from foundation.redaction import personal_spans, spoken_numbers
from voice.asr.base import Transcript, Word
from voice.codecs import TELEPHONE_RATE, mulaw_wav

SILENT = 0xFF  # mu-law for a sample of 0
SAMPLES_PER_MS = TELEPHONE_RATE // 1000
# Silenced before and after the words that say personal data: Whisper's word times drift, most often starting a
# number late (seen 0.4-0.6 s late on synthetic callers, the word before it stretched over its first digit: that
# word is silenced too).
MARGIN_BEFORE_MS = 400
MARGIN_AFTER_MS = 250
# When the recogniser drops most of what was said, it stretches the times of the words it kept over the rest (words
# this long on average; callers' last 0.2-0.5 s) or squeezes them into a corner (less than this share of it).
STRETCHED_WORD_S = 1.0
SQUEEZED_SHARE = 0.5
NUMBER_MIN_DIGITS = 4  # a number this long is silenced whatever it is
MAX_SECONDS = 3600  # nothing past an hour is kept (a call that long in the assistant is a fault of its own)


def _place(buffer: bytearray, at: int, data: bytes) -> None:
    """Write ``data`` into ``buffer`` at sample ``at``, silence filling any gap before it."""
    if at >= MAX_SECONDS * 1000 * SAMPLES_PER_MS:
        return
    if at > len(buffer):
        buffer.extend(bytes([SILENT]) * (at - len(buffer)))
    buffer[at : at + len(data)] = data


def _word_places(text: str, words: tuple[Word, ...]) -> list[tuple[int, int]] | None:
    """Where each word stands in ``text`` (character offsets), found in order; None when a word is not there."""
    places, position = [], 0
    for word in words:
        found = text.find(word.text, position) if word.text else -1
        if found < 0:
            return None
        places.append((found, found + len(word.text)))
        position = found + len(word.text)
    return places


def _long_numbers(text: str) -> list[tuple[int, int, str]]:
    """Every number of four digits or more (as a recogniser writes a spoken one), and a number the words end with
    however short: the recording silences these too. A personal number the recogniser misheard can escape the
    transcript's masking, and the rest of it is still the caller's; Whisper often stops writing in the middle of a
    long number ("my account number is 8,"); an amount or a year lost from a recording costs little."""
    end = len(text.rstrip(" .,;:?!"))
    return [
        (start, stop, "number")
        for start, stop, digits in spoken_numbers(text)
        if digits >= NUMBER_MIN_DIGITS or stop >= end
    ]


def _times_untrustworthy(words: tuple[Word, ...], audio_ms: tuple[int, int]) -> bool:
    """The recogniser dropped most of what was said: the times of the words it kept are stretched over the rest
    (words a second long on average) or squeezed into a corner of it (less than half the utterance)."""
    timed = [(w.start, w.end) for w in words if w.start is not None and w.end is not None]
    if not timed:
        return True
    mean_s = sum(b - a for a, b in timed) / len(timed)
    extent_ms = (timed[-1][1] - timed[0][0]) * 1000
    return mean_s > STRETCHED_WORD_S or extent_ms < SQUEEZED_SHARE * (audio_ms[1] - audio_ms[0])


def personal_audio(transcript: Transcript, audio_ms: tuple[int, int]) -> list[tuple[int, int]]:
    """Stream times (ms) of the audio that says personal data in ``transcript``, whose words' times are on the
    stream clock; ``audio_ms``: the utterance's whole audio, silenced when a span cannot be placed on timed words."""
    spans = personal_spans(transcript.text) + _long_numbers(transcript.text)
    if not spans:
        return []
    places = _word_places(transcript.text, transcript.words)
    if places is None or any(w.start is None or w.end is None for w in transcript.words):
        return [audio_ms]
    silenced = []
    for start, end, _ in spans:
        said = [i for i, (a, b) in enumerate(places) if a < end and b > start]
        if not said:
            return [audio_ms]
        first, last = transcript.words[said[0]], transcript.words[said[-1]]
        assert first.start is not None and last.end is not None
        begin = first.start * 1000 - MARGIN_BEFORE_MS
        if said[0] > 0:  # Whisper often stretches the word before a number over the number's first digit
            begin = min(begin, (transcript.words[said[0] - 1].start or 0.0) * 1000)
        finish = last.end * 1000 + MARGIN_AFTER_MS
        if said[-1] == len(places) - 1:  # the words stop at the number: what follows was often dropped, not silent
            if _times_untrustworthy(transcript.words, audio_ms):
                return [audio_ms]  # ... most of it, and the times of the words it kept are not to be trusted
            finish = max(finish, audio_ms[1])
        else:  # ... and a group it dropped inside a sentence lies before the next word it wrote
            finish = max(finish, (transcript.words[said[-1] + 1].start or 0.0) * 1000)
        silenced.append((round(begin), round(finish)))
    return sorted(set(silenced))


@dataclass(frozen=True)
class Recorded:
    """A finished recording: a stereo mu-law WAV (left: the caller, right: the assistant)."""

    wav: bytes
    seconds: float
    silenced: list[tuple[int, int]]  # the caller's passages silenced (stream ms)


class CallRecording:
    """Both sides of one call, gathered in memory as the call goes (16 kB a second), written when it ends."""

    def __init__(self) -> None:
        self._caller = bytearray()
        self._assistant = bytearray()
        self._played_to = 0  # the sample at which the assistant's next audio starts playing
        self._silenced: set[tuple[int, int]] = set()
        self.notice_heard = False  # the caller heard the greeting say the call is recorded

    def caller_audio(self, mulaw: bytes, at_ms: int) -> None:
        _place(self._caller, at_ms * SAMPLES_PER_MS, mulaw)

    def assistant_audio(self, mulaw: bytes, now_ms: int, private: bool = False) -> None:
        """Audio sent to Twilio at stream time ``now_ms``; ``private``: it says personal data, kept as silence."""
        start = max(now_ms * SAMPLES_PER_MS, self._played_to)
        _place(self._assistant, start, bytes([SILENT]) * len(mulaw) if private else mulaw)
        self._played_to = start + len(mulaw)

    def cleared(self, now_ms: int) -> None:
        """Twilio dropped what it had not played yet (``clear`` at stream time ``now_ms``)."""
        cut = now_ms * SAMPLES_PER_MS
        del self._assistant[cut:]
        self._played_to = min(self._played_to, cut)

    def silence(self, passages: Iterable[tuple[int, int]]) -> None:
        """Silence the caller's audio at these stream times (ms), now and whatever arrives there later."""
        self._silenced.update((max(0, a), max(0, b)) for a, b in passages if b > a)

    @property
    def silenced(self) -> list[tuple[int, int]]:
        return sorted(self._silenced)

    def finish(self) -> Recorded:
        """The recording as a stereo mu-law WAV, the caller's personal data silenced."""
        samples = max(len(self._caller), len(self._assistant))
        channels = np.full((samples, 2), SILENT, dtype=np.uint8)
        channels[: len(self._caller), 0] = np.frombuffer(bytes(self._caller), dtype=np.uint8)
        channels[: len(self._assistant), 1] = np.frombuffer(bytes(self._assistant), dtype=np.uint8)
        for start_ms, end_ms in self._silenced:
            channels[start_ms * SAMPLES_PER_MS : end_ms * SAMPLES_PER_MS, 0] = SILENT
        return Recorded(mulaw_wav(channels.tobytes(), 2), round(samples / (SAMPLES_PER_MS * 1000), 2), self.silenced)
