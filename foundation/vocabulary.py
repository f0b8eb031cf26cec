"""The domain's words (../shared/DOMAIN.md), defined once: expert queues, the fallback queue, and a turn's decision.

A decision travels as text ("route:housing") in Rasa's custom payloads, the call store and the handoff packet; in the
product it is a ``Decision``, parsed once where it arrives (the dialogue client) and compared by kind and target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

QUEUES = ("family", "sickness", "housing", "appeals", "payments_debt", "fraud", "general")
FALLBACK_QUEUE = "general"  # explicit requests for a person, anything not understood after retries, any fault

DecisionKind = Literal["answer", "route", "smalltalk", "clarify", "confirm"]  # confirm: the line's own read-back
DECISION_KINDS: tuple[DecisionKind, ...] = get_args(DecisionKind)


@dataclass(frozen=True)
class Decision:
    """What the assistant did with one caller turn: answered a topic, routed to a queue, small talk, or asked back."""

    kind: DecisionKind
    target: str

    @classmethod
    def parse(cls, text: str) -> Decision:
        """``"kind:target"`` as Rasa's actions write it; ValueError for anything else."""
        kind, sep, target = text.partition(":")
        if not sep or not target or kind not in DECISION_KINDS:
            raise ValueError(f"not a decision: {text!r} (expected one of {', '.join(DECISION_KINDS)} ':' a target)")
        return cls(cast(DecisionKind, kind), target)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


OUT_OF_SCOPE = Decision("smalltalk", "out_of_scope")  # "I can't help with that; I can help with ..."
NOT_UNDERSTOOD = Decision("clarify", "rephrase")  # "Sorry, I didn't quite understand ... say it again"
# What analytics and the review queue count as "not understood": both replies tell the caller what the line can do.
NOT_UNDERSTOOD_DECISIONS = (str(OUT_OF_SCOPE), str(NOT_UNDERSTOOD))
GOODBYE = Decision("smalltalk", "goodbye")
READ_BACK = Decision("confirm", "asr")  # "Did you say ...?": the transcript was read back to the caller
READ_BACK_DENIED = Decision("confirm", "denied")  # ... and the caller said no
