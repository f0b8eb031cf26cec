"""Reading back what the recogniser is unsure of: "Did you say ...?" before the assistant acts on it.

The caller's yes acts on the words read back, a no asks again, anything else is a new request; a transcript is read
back no more than once in a row.
"""

from __future__ import annotations

import enum

from foundation.settings import TurnTakingSettings
from nlu.dialogue import Dialogue, NluUnavailable
from telephony.call_record import TurnRecord
from telephony.turn_policy import worth_reading_back
from voice.asr.base import Transcript


class Answer(enum.Enum):
    YES = "affirm"
    NO = "deny"
    OTHER = "other"  # not an answer to the question: a new request


class ReadBack:
    """The read-back of one call: whether a transcript is worth the question, and the one awaiting an answer."""

    def __init__(self, dialogue: Dialogue, policy: TurnTakingSettings, smalltalk: frozenset[str], question: str):
        self._dialogue = dialogue
        self._policy = policy
        self._smalltalk = smalltalk
        self._question = question  # with {text}: the caller's words
        self.pending: tuple[str, TurnRecord] | None = None  # transcript read back, awaiting yes or no

    async def wanted(self, transcript: Transcript) -> bool:
        """An uncertain transcript is read back unless the NLU is sure what it means (and the recogniser heard more
        than a guess), or it is small talk ("hello", "no"): a wrong guess there costs less than the question. Asks
        NLU only; the conversation is not touched."""
        if transcript.confidence >= self._policy.confirm_below_confidence:
            return False
        try:
            intent, confidence = await self._dialogue.parse(transcript.text)
        except NluUnavailable:
            return False  # the dialogue turn that follows meets the same fault and handles it
        policy = self._policy
        return worth_reading_back(
            intent,
            confidence,
            self._smalltalk,
            policy.confirm_below_nlu_confidence,
            transcript.confidence,
            policy.confirm_always_below_confidence,
        )

    def ask(self, text: str, turn: TurnRecord) -> str:
        """The question that reads ``text`` back; ``turn`` waits for the answer."""
        self.pending = (text, turn)
        return self._question.format(text=text.strip().rstrip(".?!"))

    def forget(self) -> None:
        self.pending = None

    async def answer(self, text: str) -> tuple[Answer, str, TurnRecord]:
        """What the caller's ``text`` says to the pending question, with the words and turn read back. The question
        is settled either way. Raises ``NluUnavailable``."""
        assert self.pending is not None
        held_text, held_turn = self.pending
        self.pending = None
        intent, _ = await self._dialogue.parse(text)
        answer = Answer.YES if intent == Answer.YES.value else Answer.NO if intent == Answer.NO.value else Answer.OTHER
        return answer, held_text, held_turn
