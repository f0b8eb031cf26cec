"""The agency's words the recogniser nearly heard, put right: "housing alone" -> "housing allowance", "E ID" -> "e-ID".

A phone line and a small recogniser turn the agency's own words into ordinary ones that sound alike. The NLU copes
with some of that (its ASR-variant examples), but the expert a call is routed to reads the transcript, the caller
hears it read back, and the benefit-name extractor needs the word itself. A span of the transcript (as many words as
the phrase, or one fewer or more) is rewritten as one of the agency's words when

- it is the phrase but for spaces, hyphens and case ("bank ID" -> "BankID"), or
- the phrase's sound key has at least ``shortest`` letters (a short word such as "appeal" or "log in" is too easily
  an ordinary one: "is this a real person"), the span sounds alike (a rough spelling-to-sound key compared by edit
  distance, similarity >= ``min_similarity``), begins with the same sound, holds none of the agency's words (nor their
  plurals: "sickness benefits" was heard right), and the recogniser was unsure of at least one of its words (word
  confidence < ``unsure_below``): what it heard with confidence stays as heard.

Thresholds chosen on the dev set (`bench/recognition.py --repair`, README "Understanding callers"): with them no
repair on the dev transcripts wrote an agency word the caller had not said. Pure Python, no model: the cheap tests
come first (`find`): 0.7 ms for a 23-word turn, 5 ms for 161 words (median of 50, AMD EPYC, idle).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from foundation.phrases import phrases_in

_TOKEN = re.compile(r"[\w']+(?:-[\w']+)*")
_SOUNDS = (("ph", "f"), ("ck", "k"), ("qu", "kw"), ("x", "ks"), ("z", "s"), ("dg", "j"), ("wh", "w"))


def sound_key(text: str) -> str:
    """A rough key of how English ``text`` sounds: letters and digits, common spellings of one sound made one,
    doubled letters single: "allowance" and "alowanse" share it."""
    key = re.sub(r"[^a-z0-9]", "", text.lower())
    for spelled, sound in _SOUNDS:
        key = key.replace(spelled, sound)
    key = re.sub(r"c(?=[eiy])", "s", key).replace("c", "k")
    return re.sub(r"(.)\1+", r"\1", key)


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """1 - edit distance / the longer length: 1.0 for the same key."""
    if not a or not b:
        return 0.0
    return 1.0 - _distance(a, b) / max(len(a), len(b))


def _flat(text: str) -> str:
    return re.sub(r"[^\w]+", "", text.lower())


@dataclass(frozen=True)
class Repair:
    """One span rewritten: the words as heard, the phrase written instead, and where (word indexes, end exclusive)."""

    heard: str
    phrase: str
    first: int
    end: int
    similarity: float


@dataclass(frozen=True)
class Token:
    """A word of the transcript: its characters' place in the text, the recogniser's confidence in it and, when the
    engine's words line up with the text, which of them it was heard as (first, end exclusive)."""

    start: int
    end: int
    text: str
    confidence: float
    heard_as: tuple[int, int] | None = None


def tokens_of(text: str, words: Sequence[tuple[str, float]], confidence: float) -> list[Token]:
    """The words of ``text``, each with the least confidence of the engine's ``words`` (text, confidence) it was
    heard as: Whisper writes "e-ID" as "e" and "-ID". Without ``words``, every word has the transcript's
    ``confidence``; when they do not spell the text, every word has the least of theirs."""
    found = list(_TOKEN.finditer(text))
    if not words:
        return [Token(m.start(), m.end(), m.group(), confidence) for m in found]
    tokens, at = [], 0
    for m in found:
        want, got, first, least = _flat(m.group()), "", at, 1.0
        while at < len(words) and len(got) < len(want):
            got += _flat(words[at][0])
            least = min(least, words[at][1])
            at += 1
        if got != want:
            least = min(c for _, c in words)
            return [Token(m.start(), m.end(), m.group(), least) for m in found]
        tokens.append(Token(m.start(), m.end(), m.group(), least, (first, at)))
    return tokens


class Span:
    """Consecutive words of a transcript, with what the repairer asks of them worked out once."""

    def __init__(self, tokens: Sequence[Token], flat: str, first: int):
        self.first, self.end, self.flat = first, first + len(tokens), flat
        self.heard = " ".join(t.text for t in tokens)
        self.least_confidence = min(t.confidence for t in tokens)

    @functools.cached_property
    def key(self) -> str:
        return sound_key(self.heard)


class KeyWordRepairer:
    """Finds the spans of a transcript that are the agency's words misheard (see the module's docstring)."""

    def __init__(
        self, phrases: Sequence[str], min_similarity: float = 0.75, unsure_below: float = 0.9, shortest: int = 7
    ):
        self.phrases = tuple(dict.fromkeys(p.strip() for p in phrases if p.strip()))
        self._spelled = {p.lower() for p in self.phrases}
        self._sizes = {p: len(p.split()) for p in self.phrases}
        self._by_flat: dict[str, str] = {}  # "loginfailed" is no phrase; "login" is "log in" (first listed)
        for p in self.phrases:
            self._by_flat.setdefault(_flat(p), p)
        # Phrases long enough to be guessed (shorter ones are only ever joined), by their first sound.
        self._by_sound: dict[str, list[tuple[str, str]]] = {}
        for p in self.phrases:
            key = sound_key(p)
            if len(key) >= shortest:
                self._by_sound.setdefault(key[0], []).append((p, key))
        # A span holding one of them, or its plural ("sickness benefits", "e-IDs"), was heard right: left as heard.
        self._heard_right = tuple(f"{p}{plural}" for p in self.phrases for plural in ("", "s", "es"))
        self.min_similarity = min_similarity
        self.unsure_below = unsure_below

    def find(self, tokens: Sequence[Token]) -> list[Repair]:
        """The repairs of ``tokens``, best first, never two over the same word. Each span is looked at once: a phrase
        spelled apart is a lookup, and only phrases with the span's first sound are compared by sound."""
        flats = [_flat(t.text) for t in tokens]
        first_sounds = [sound_key(t.text)[:1] for t in tokens]
        candidates: list[Repair] = []
        for size in sorted({s for n in self._sizes.values() for s in (n - 1, n, n + 1) if s >= 1}):
            for first in range(len(tokens) - size + 1):
                span = Span(tokens[first : first + size], "".join(flats[first : first + size]), first)
                phrase = self._by_flat.get(span.flat)
                if phrase is not None:
                    if span.heard.lower() not in self._spelled and abs(size - self._sizes[phrase]) <= 1:
                        candidates.append(Repair(span.heard, phrase, span.first, span.end, 1.0))  # spelled apart
                    continue  # "log in" and "login" are both the agency's words
                alike = self._by_sound.get(first_sounds[first], ())
                if not alike or span.least_confidence >= self.unsure_below:
                    continue  # no phrase begins with its sound, or what the recogniser heard with confidence
                for phrase, key in alike:
                    if abs(size - self._sizes[phrase]) <= 1:
                        repair = self._sounds_like(span, phrase, key)
                        if repair is not None:
                            candidates.append(repair)
        candidates.sort(key=lambda r: (-r.similarity, -len(r.phrase)))
        taken: set[int] = set()
        chosen = []
        for repair in candidates:
            where = set(range(repair.first, repair.end))
            if not where & taken:
                taken |= where
                chosen.append(repair)
        return chosen

    def _sounds_like(self, span: Span, phrase: str, key: str) -> Repair | None:
        """``span`` rewritten as ``phrase`` when it sounds like it and holds none of the agency's words, else None."""
        heard_key = span.key
        longest = max(len(heard_key), len(key))
        if heard_key[:1] != key[:1] or abs(len(heard_key) - len(key)) > (1 - self.min_similarity) * longest:
            return None  # another first sound, or too long or short to be alike
        score = similarity(heard_key, key)
        if score < self.min_similarity or phrases_in(span.heard, self._heard_right):
            return None
        return Repair(span.heard, phrase, span.first, span.end, score)

    def repair(
        self, text: str, words: Sequence[tuple[str, float]] = (), confidence: float = 0.0
    ) -> tuple[str, list[Repair], list[Token]]:
        """``text`` with the agency's misheard words put right, what was rewritten (in the order of the text), and
        the words of ``text`` that the repairs' indexes point into (see ``tokens_of`` for the arguments)."""
        tokens = tokens_of(text, words, confidence)
        repairs = sorted(self.find(tokens), key=lambda r: r.first)
        out, at = [], 0
        for r in repairs:
            out += [text[at : tokens[r.first].start], r.phrase]
            at = tokens[r.end - 1].end
        return "".join([*out, text[at:]]), repairs, tokens
