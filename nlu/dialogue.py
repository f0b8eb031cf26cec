"""The boundary to dialogue as the call sees it: text + sender id + call metadata in, bot messages and the decision out.

A Protocol, like the speech engines' (voice/asr/base.py): the Rasa client (nlu/client.py) meets it over HTTP; the call
session (telephony/session.py) knows only this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from foundation.vocabulary import Decision

log = logging.getLogger(__name__)


class NluUnavailable(RuntimeError):
    """The Rasa server did not answer (down, slow or broken). The caller must still be helped: route to a person."""


@dataclass(frozen=True)
class DialogueTurn:
    """What the dialogue made of one caller turn."""

    text: str
    intent: str
    confidence: float
    intent_ranking: tuple[tuple[str, float], ...]
    entities: tuple[dict[str, Any], ...]
    replies: tuple[str, ...]
    decision: Decision
    details: dict[str, Any] = field(default_factory=dict)  # custom payload of the deciding message
    latency_ms: float = 0.0

    @property
    def reply(self) -> str:
        return " ".join(self.replies)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "intent_ranking": [{"name": n, "confidence": round(c, 4)} for n, c in self.intent_ranking],
            "entities": list(self.entities),
            "decision": str(self.decision),
            "reply": self.reply,
            "nlu_latency_ms": round(self.latency_ms, 1),
        }


def decision_from(messages: list[dict[str, Any]], intent: str) -> tuple[Decision, dict[str, Any]]:
    """The turn's decision: the last decision a bot message carried; else small talk named by the intent."""
    decision: Decision | None = None
    details: dict[str, Any] = {}
    for message in messages:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("decision"), str):
            try:
                decision, details = Decision.parse(custom["decision"]), custom
            except ValueError:
                log.warning("ignored a bot message's decision %r", custom["decision"])
    if decision is None:
        decision = Decision("smalltalk", intent if intent and intent != "nlu_fallback" else "out_of_scope")
    return decision, details


class Dialogue(Protocol):
    """What a call needs of the dialogue: open a conversation, classify a text alone, decide a caller's turn, and
    take that decision back."""

    async def start_call(self, sender_id: str, language: str = "en") -> list[str]: ...

    async def parse(self, text: str) -> tuple[str, float]: ...

    async def respond(self, text: str, sender_id: str, metadata: dict[str, Any]) -> DialogueTurn: ...

    async def take_back(self, sender_id: str) -> None:
        """Forget the caller's last turn and everything the dialogue did with it (the caller went on: their words
        return joined with what they said next). Raises ``NluUnavailable``."""
        ...
