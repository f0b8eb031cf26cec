"""Noise the recogniser turned into words is not a caller's request.

Whisper, given background talk or street noise and no speech, often writes words anyway: phrases it saw often
("thank you, see you next time"), loops ("no, no, no, no, no") or, when a prompt biases it, the prompt itself ("I'm
calling about my parental benefit, child allowance.": 38 % of noise-only clips on the dev set came out as words, most
of them that). Acting on those would answer a question nobody asked. Three signs give them away, all the engine's
own: it believes there was no speech while it is unsure of the words; the words echo its prompt while it is not sure
of them; the words are one phrase looped. Thresholds chosen on the dev set with bench/recognition.py (README
"Understanding callers the line has never heard").
"""

from __future__ import annotations

from collections import Counter

from voice.wer import normalize

NO_SPEECH_AT_LEAST = 0.5
CONFIDENCE_BELOW = 0.4
ECHO_NGRAM = 2  # words in a run: pairs catch the prompt's phrases in another order, which trigrams missed
ECHO_SHARE = 0.5  # of the transcript's runs of words that are also the prompt's
ECHO_CONFIDENCE_BELOW = 0.6
LOOP_WORDS_AT_LEAST = 5
LOOP_DISTINCT_AT_MOST = 4  # "no, no, no, no, no, no", "you know, you know, you know": a caller's sentence has more
LOOP_DISTINCT_SHARE = 0.35  # distinct words over words: "no, no, no, no, no, no" is 1/6
LOOP_CONFIDENCE_BELOW = 0.7
# ... or a phrase of 2-4 words said at least 3 times that makes up at least half the words, after other words ("three
# five six, child allowance, child allowance, child allowance": a CI call's hiss at the 15 s window)
LOOP_PHRASE_WORDS = (2, 3, 4)
LOOP_PHRASE_TIMES = 3
LOOP_PHRASE_SHARE = 0.5


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def echoes_prompt(text: str, prompt: str | None, n: int = ECHO_NGRAM) -> bool:
    """Most of ``text``'s runs of ``n`` words are word for word the prompt's (a transcript too short to tell is not an
    echo)."""
    if not prompt:
        return False
    said = _ngrams(normalize(text), n)
    return len(said) >= 2 and len(said & _ngrams(normalize(prompt), n)) / len(said) >= ECHO_SHARE


def loops(text: str) -> bool:
    """``text`` is a few words said over and over, the way Whisper decodes noise."""
    words = normalize(text)
    distinct = len(set(words))
    if (
        len(words) >= LOOP_WORDS_AT_LEAST
        and distinct <= LOOP_DISTINCT_AT_MOST
        and distinct / len(words) <= LOOP_DISTINCT_SHARE
    ):
        return True
    for n in LOOP_PHRASE_WORDS:
        runs = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        times = max(runs.values(), default=0)
        if times >= LOOP_PHRASE_TIMES and times * n >= LOOP_PHRASE_SHARE * len(words):
            return True
    return False


def heard_noise(
    text: str,
    confidence: float,
    no_speech: float,
    prompt: str | None,
    *,
    no_speech_at_least: float = NO_SPEECH_AT_LEAST,
    confidence_below: float = CONFIDENCE_BELOW,
    echo_ngram: int = ECHO_NGRAM,
) -> bool:
    """The transcript is the recogniser's reading of noise rather than of a caller's words (the keywords: other
    thresholds, for bench/recognition.py)."""
    if no_speech >= no_speech_at_least and confidence < confidence_below:
        return True
    if confidence < ECHO_CONFIDENCE_BELOW and echoes_prompt(text, prompt, echo_ngram):
        return True
    return confidence < LOOP_CONFIDENCE_BELOW and loops(text)
