"""The call's turn-taking rules as pure functions: no state, no I/O, each one tested on its own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from foundation.redaction import ends_reading_a_number

MAX_PENDING_KEYS = 2  # keys waiting behind the turn in progress; more are a flood (dropped, counted)
# With a streaming recogniser, an utterance ends before the VAD's end silence once the line has been silent for half
# of it and the recogniser is done: its own endpointer closed the segment, or its words stopped changing for this many
# chunks (of 100 ms).
STREAM_STABLE_CHUNKS = 3


def stream_says_done(
    words: str, segment_closed: bool, stable_chunks: int, silence_ms: int, end_silence_ms: int
) -> bool:
    """Endpointing from partial results: the caller has stopped and the recogniser has nothing more to add."""
    if silence_ms < end_silence_ms // 2 or not words:
        return False
    return segment_closed or stable_chunks >= STREAM_STABLE_CHUNKS


def words_of(text: str) -> list[str]:
    words = [w.strip(".,!?;:'\"").lower() for w in text.replace("-", " - ").split()]
    return [w for w in words if w and w != "-"]


# How the recogniser writes speech that trails off ("Can you tell me how long it...") or a word broken off ("When do
# you pay the sh-"): the caller has not finished, in any language.
TRAILING_OFF = ("...", "\u2026", "-", "\u2013", "\u2014")

# A last word the recogniser is less sure of than this, after a word a sentence cannot end on, is taken for its own
# completion of a fragment ("... on my [panel]" for "... on my" and a pause): Whisper finishes sentences.
GUESSED_LAST_WORD_BELOW = 0.35


def sounds_unfinished(text: str, endings: Iterable[str], last_word_confidence: float = 1.0) -> bool:
    """The words stop where a sentence cannot end ("how do I apply for", "I would like to", "um", "my personal number
    is 850,"): the caller paused mid-sentence or between a number's groups, whatever punctuation the recogniser
    added, or before a last word the recogniser only guessed; or the recogniser heard the speech trail off."""
    words, endings = words_of(text), set(endings)
    if not words:
        return False
    if words[-1] in endings or ends_reading_a_number(text) or text.rstrip().endswith(TRAILING_OFF):
        return True
    return last_word_confidence < GUESSED_LAST_WORD_BELOW and len(words) > 1 and words[-2] in endings


def is_backchannel(text: str, backchannels: Iterable[str]) -> bool:
    """Only listening noises ("mm", "uh-huh", "yeah"): the caller is following, not taking the turn."""
    words = words_of(text)
    allowed = set(backchannels)
    return bool(words) and all(w in allowed for w in words)


def is_listening_noise(
    text: str, over_kind: str | None, over_sentence: int, over_sentences: int, backchannels: Iterable[str]
) -> bool:
    """Backchannel words said over the assistant, before the prompt's last sentence, are listening. Over the last
    sentence (usually a question such as "anything else?") or over a read-back they are an answer, and so a turn."""
    if over_kind is None or over_kind == "confirm" or over_sentence >= over_sentences - 1:
        return False
    return is_backchannel(text, backchannels)


def worth_reading_back(
    intent: str, nlu_confidence: float, smalltalk: frozenset[str], below: float, asr_confidence: float, floor: float
) -> bool:
    """An uncertain transcript is read back unless the NLU is sure what it means, or it is small talk ("hello",
    "no"): a wrong guess there costs less than the question. Under ``floor`` the recogniser barely heard anything:
    a sure reading of it is the prompt's or the NLU's guess, so it is read back all the same."""
    return intent not in smalltalk and (nlu_confidence < below or asr_confidence < floor)


NoInputStep = Literal["reprompt", "menu", "handoff"]


def after_nothing_heard(times_in_a_row: int, most: int, keypad: bool) -> NoInputStep:
    """Nothing usable came from the caller ``times_in_a_row`` times: ask again, then offer the keypad menu (when
    the line has one), then put the caller through to a person."""
    if times_in_a_row >= most:
        return "handoff"
    if times_in_a_row == 1 or not keypad:
        return "reprompt"
    return "menu"


def goes_on_with_the_turn(spoke_at_ms: int | None, words_end_ms: int, wait_ms: int) -> bool:
    """The caller's voice came back at ``spoke_at_ms`` (stream time; None: it has not) soon enough after their
    words' end (``wait_ms``, the unfinished-words wait; 0: never) to go on with the same turn."""
    return bool(wait_ms) and spoke_at_ms is not None and words_end_ms < spoke_at_ms <= words_end_ms + wait_ms


def went_on_before_reply_heard(
    spoke_at_ms: int, words_end_ms: int, reply_started_ms: int | None, wait_ms: int, heard_ms: int
) -> bool:
    """The caller went on with the same turn (``goes_on_with_the_turn``) before they had heard more than
    ``heard_ms`` of the reply to their words (``reply_started_ms``: its first frame; None: not sent yet). The two
    started talking at once, and the assistant yields: its reply is taken back."""
    if not goes_on_with_the_turn(spoke_at_ms, words_end_ms, wait_ms):
        return False
    return reply_started_ms is None or spoke_at_ms - reply_started_ms <= heard_ms
