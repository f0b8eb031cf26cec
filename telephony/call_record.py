"""The record of one call: its turns, what the caller heard, its events and outcome, and where it was handed off.

Everything in it is already redacted; the gateway keeps it in memory, writes it to the call store and builds the
expert's handoff packet from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from foundation.redaction import redact_text
from nlu.dialogue import DialogueTurn

# Kinds of the call's events that the monitoring counts (telephony/metrics.py).
FAULT_EVENT = "fault"  # a fault ended the assistant's part in an apology and a handoff; ``part`` names what failed
HOLDING_EVENT = "holding"  # the caller heard the holding phrase while their reply was slow to come
TAKEN_BACK_EVENT = "reply_taken_back"  # the caller went on with their turn: the reply to its first words taken back
# The caller hung up while their last words were being recognised or waited for the rest: a turn with no decision.
HUNG_UP_UNANSWERED_EVENT = "hung_up_unanswered"


@dataclass(frozen=True)
class HandoffRequested:
    """The bot part of the call ends here; an expert queue takes over (the gateway builds the packet and moves the
    call)."""

    queue: str
    reason: str
    turn: int | None  # the turn whose decision routed the call; None when no input or a fault did
    fault: bool  # a fault of ours routed the call, not the caller's request
    at: str


@dataclass
class TurnRecord:
    """One caller turn (spoken, or a key press) and what the assistant did with it."""

    index: int
    speech_started_ms: int
    speech_end_ms: int  # stream time of the caller's last voiced frame (of the key press for keypad turns)
    input: str = "speech"  # "speech" | "keypad"
    transcript: str = ""
    asr_confidence: float = 0.0
    intent: str = ""
    nlu_confidence: float = 0.0
    intent_ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    decision: str = ""
    reply: str = ""
    asr_ms: float = 0.0
    nlu_ms: float = 0.0
    tts_ms: float = 0.0
    # From the endpoint decision (end of speech + configured silence) to the first reply frame sent.
    response_ms: float = 0.0
    # From the end of the caller's speech to the endpoint decision (stream time): with response_ms, the gap the
    # caller feels.
    endpointing_ms: int = 0
    barged_in: bool = False  # this turn's speech stopped the assistant mid-prompt
    confirms_turn: int | None = None  # the caller confirmed that earlier turn's transcript; it was acted on here
    interrupted: dict[str, Any] | None = None  # this turn's reply was cut short: what the caller heard of it
    sentiment: dict[str, Any] | None = None  # how the words sound (nlu/sentiment.py): score and label
    # The caller went on after the line had decided this turn's first words (telephony/session.py, take back): the
    # decision and reply taken back, how soon after those words' end the caller spoke again, what they heard of it.
    taken_back: dict[str, Any] | None = None
    error: str = ""

    def understood(self, result: DialogueTurn) -> None:
        """What the dialogue made of this turn's words."""
        self.nlu_ms = result.latency_ms
        self.intent, self.nlu_confidence = result.intent, result.confidence
        self.intent_ranking = [{"name": n, "confidence": round(c, 4)} for n, c in result.intent_ranking[:5]]
        # Entity values are the caller's words: a personal identity number is one.
        self.entities = [{**e, "value": redact_text(str(e.get("value", "")))} for e in result.entities]


@dataclass
class CallRecord:
    call_sid: str
    stream_sid: str
    caller: str  # masked
    started_at: str
    turns: list[TurnRecord] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # everything the caller heard the assistant say, in order
    events: list[dict[str, Any]] = field(default_factory=list)  # turn-taking: barge-ins, no-input, keys ...
    outcome: str = ""
    answered_topics: list[str] = field(default_factory=list)
    handoff: HandoffRequested | None = None
    farewell: bool = False  # the bot part ended with the caller's goodbye (the call can be hung up)
    packet: dict[str, Any] | None = None  # the handoff packet, once the gateway has built it
    delivery: str = ""  # how the call reached its queue: queue | fallback | caller_gone | failed
    ended_at: str = ""
    malformed_messages: int = 0
    speculations_started: int = 0  # recognitions started at a pause in the caller's speech ...
    speculations_used: int = 0  # ... and those whose pause was the end of the utterance
    speculations_declined: int = 0  # pauses not speculated on: every recogniser was busy
    stream_endpoints: int = 0  # utterances ended by the streaming recogniser before the VAD's silence ran out
    turn_end_judged: int = 0  # pauses the end-of-turn model judged ...
    turn_end_ms: float = 0.0  # ... the time it took for them (wall, in its worker thread) ...
    semantic_endpoints: int = 0  # ... and the utterances it ended before the longest silence ran out
    mood: dict[str, Any] | None = None  # the caller's mood over the call (nlu/sentiment.py CallMood), at its end

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "caller": self.caller,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "answered_topics": self.answered_topics,
            "said": self.said,
            "events": self.events,
            "handoff": None if self.handoff is None else vars(self.handoff),
            "farewell": self.farewell,
            "packet": self.packet,
            "delivery": self.delivery,
            "malformed_messages": self.malformed_messages,
            "speculations": {
                "started": self.speculations_started,
                "used": self.speculations_used,
                "declined": self.speculations_declined,
            },
            "stream_endpoints": self.stream_endpoints,
            "end_of_turn": {
                "judged": self.turn_end_judged,
                "ms": round(self.turn_end_ms, 1),
                "ended": self.semantic_endpoints,
            },
            "mood": self.mood,
            "turns": [vars(t) for t in self.turns],
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
