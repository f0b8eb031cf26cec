"""What the softphone reports of a call: the gateway's record of it joined with what the caller's side measured,
as JSON or for the terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voice.codecs import FRAME_MS


@dataclass
class SoftphoneResult:
    call_sid: str
    record: dict[str, Any]
    turns: list[dict[str, Any]]
    hung_up_by: str
    speed: float
    clears_received: int = 0

    def as_dict(self) -> dict[str, Any]:
        deciding: dict[str, Any] = next(
            (t for t in reversed(self.turns) if t.get("decision") not in ("", "none", None)), {}
        )
        return {
            "call_sid": self.call_sid,
            "outcome": self.record.get("outcome", ""),
            "started_at": self.record.get("started_at", ""),
            "ended_at": self.record.get("ended_at", ""),
            "intent": deciding.get("intent", ""),
            "confidence": deciding.get("confidence", 0.0),
            "decision": deciding.get("decision", ""),
            "reply": deciding.get("reply", ""),
            "greeting": (self.record.get("said") or [""])[0],
            "handoff": self.record.get("handoff"),
            "packet": self.record.get("packet"),
            "delivery": self.record.get("delivery", ""),
            "hung_up_by": self.hung_up_by,
            "events": self.record.get("events", []),
            "said": self.record.get("said", []),
            "speculations": self.record.get("speculations", {}),
            "clears_received": self.clears_received,
            "speed": self.speed,
            "turns": self.turns,
        }


def merge_turns(
    record: dict[str, Any],
    sent_at: dict[int, float],
    received_frames: list[float],
    holding_frames: Sequence[float] = (),
) -> list[dict[str, Any]]:
    """The gateway's record of each turn, with what the caller's side measured: the gap from the end of the caller's
    speech (the last voiced frame sent) to the first reply frame received, and how much reply audio came. The
    holding phrase ("One moment, please.", ``holding_frames``) is not the reply: the gap to it is told apart."""
    turns = []
    for turn in record.get("turns", []):
        # The caller's last voiced frame; for a key press, the last thing sent before the gateway saw it.
        speech_end_wall = sent_at.get(turn["speech_end_ms"] - FRAME_MS)
        if speech_end_wall is None:
            earlier = [ts for ts in sent_at if ts <= turn["speech_end_ms"] + FRAME_MS]
            speech_end_wall = sent_at[max(earlier)] if earlier else None
        first_reply = holding = None
        if speech_end_wall is not None:
            first_reply = next((t for t in received_frames if t > speech_end_wall), None)
            holding = next((t for t in holding_frames if t > speech_end_wall), None)
            if holding is not None and first_reply is not None and holding > first_reply:
                holding = None  # the phrase held a later turn
        reply_frames = 0
        if first_reply is not None:
            later_speech = [w for ts, w in sent_at.items() if ts > turn["speech_end_ms"] and w > first_reply]
            until = min(later_speech) if later_speech else float("inf")
            reply_frames = sum(1 for t in received_frames if first_reply <= t < until)
        turns.append(
            {
                "index": turn["index"],
                "input": turn["input"],
                "transcript": turn["transcript"],
                "asr_confidence": turn["asr_confidence"],
                "intent": turn["intent"],
                "confidence": turn["nlu_confidence"],
                "entities": turn["entities"],
                "decision": turn["decision"],
                "reply": turn["reply"],
                "error": turn["error"],
                "barged_in": turn["barged_in"],
                "interrupted": turn["interrupted"],
                "taken_back": turn.get("taken_back"),  # the reply first decided for the turn, taken back
                "latency_ms": None
                if first_reply is None or speech_end_wall is None
                else round((first_reply - speech_end_wall) * 1000, 1),
                "reply_audio_s": round(reply_frames * FRAME_MS / 1000, 2),
                # the gap to the holding phrase, when the caller heard it before the reply
                "holding_ms": None
                if holding is None or speech_end_wall is None
                else round((holding - speech_end_wall) * 1000, 1),
                "server": {k: round(turn[k], 1) for k in ("response_ms", "asr_ms", "nlu_ms", "tts_ms")},
            }
        )
    return turns


def format_turns(result: dict[str, Any]) -> str:
    """Human-readable call report for the terminal."""
    lines = [f"call {result['call_sid']}", f"  assistant: {result['greeting']}"]
    for i, t in enumerate(result["turns"], 1):
        latency = "-" if t["latency_ms"] is None else f"{t['latency_ms']:.0f} ms"
        lines += [
            f"turn {i}",
            f"  caller:    {t['transcript']!r}  (ASR confidence {t['asr_confidence']:.2f})",
            f"  intent:    {t['intent']} ({t['confidence']:.2f})  ->  {t['decision']}",
            f"  assistant: {t['reply']}",
            f"  latency:   {latency} end of speech -> first reply audio"
            f" (server: ASR {t['server']['asr_ms']:.0f} ms, NLU {t['server']['nlu_ms']:.0f} ms,"
            f" TTS {t['server']['tts_ms']:.0f} ms)",
        ]
    lines.append(f"outcome: {result['outcome']} (hung up by {result['hung_up_by']})")
    return "\n".join(lines)


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)
