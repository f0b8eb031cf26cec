"""The handoff packet: what the expert who picks up a routed call sees (versioned JSON, schema beside this file).

Built from the call's record, which is already redacted (transcripts, entity values, the caller's number), and
validated against the schema before it is written anywhere. The summary is extractive and local: the caller's own
most telling sentences, framed by the routing reason and the details the NLU found.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from foundation.language import load_language
from foundation.plain_words import times
from foundation.routing_table import RoutingTable

SCHEMA_FILE = Path(__file__).with_name("handoff_packet.schema.json")
SCHEMA_VERSION = 2  # 2: caller_mood
SUMMARY_QUOTES = 2  # caller sentences quoted in the summary ...
MIN_QUOTE_SALIENCE = 1.0  # ... among the turns that said something the assistant understood or tried to
QUOTE_CHARS = 160
# The summary for the expert is written in English whatever the call's language (its own sentences are English
# today); the caller's words are quoted as they were said.
SUMMARY_LANGUAGE = "en"
# TaskRouter keeps task attributes small; the agent screen always has the whole packet.
MAX_ATTRIBUTES_CHARS = 15_000
ENTITY_NAMES = {"benefit_type": "benefit type", "date": "date", "amount": "amount", "personal_id": "identity number"}


class PacketInvalid(ValueError):
    """A packet that does not match the schema: a bug of ours, never sent half-formed."""


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def validate_packet(packet: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(packet), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top)"
        raise PacketInvalid(f"handoff packet invalid at {where}: {errors[0].message}")


DISTRESS_INTENT = "distress"


def build_packet(
    record: dict[str, Any],
    vocabulary: RoutingTable,
    *,
    handed_off_at: str,
    previous_calls_7d: int,
    language: str,
    agent_url: str | None = None,
) -> dict[str, Any]:
    """The packet for ``record`` (a ``CallRecord.as_dict()`` with a handoff and the caller's mood), validated."""
    handoff = record["handoff"]
    turns = record["turns"]
    routed = next((t for t in turns if t["index"] == handoff.get("turn")), None)
    intent = (
        {"name": routed["intent"], "confidence": round(routed["nlu_confidence"], 4)}
        if routed and routed["intent"]
        else None
    )
    entities = [
        {"entity": str(e["entity"]), "value": str(e.get("value", ""))[:200], "turn": t["index"]}
        for t in turns
        for e in t["entities"]
    ]
    packet: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "call_id": record["call_sid"],
        "caller": record["caller"],
        "started_at": record["started_at"],
        "handed_off_at": handed_off_at,
        "queue": handoff["queue"],
        "reason": handoff["reason"],
        "language": language,
        "intent": intent,
        "intent_ranking": routed["intent_ranking"] if routed else [],
        "entities": entities,
        "transcript": [
            {
                "turn": t["index"],
                "input": t["input"],
                "text": t["transcript"],
                "asr_confidence": round(min(max(t["asr_confidence"], 0.0), 1.0), 3),
                "intent": t["intent"],
                "intent_confidence": round(t["nlu_confidence"], 4),
                "decision": t["decision"],
                "reply": t["reply"],
            }
            for t in turns
        ],
        "assistant_said": list(record["said"]),
        "answered_topics": list(dict.fromkeys(record["answered_topics"])),
        "flags": {
            "urgent": bool(routed and routed["intent"] in vocabulary.urgent),
            "distress": any(t["intent"] == DISTRESS_INTENT for t in turns),
            "repeat_caller": previous_calls_7d > 0,
            "fault": bool(handoff.get("fault")),
        },
        "previous_calls_7d": previous_calls_7d,
        "caller_mood": record["mood"],  # judged once, when the call ended (telephony/media_stream.py)
    }
    if agent_url:
        packet["agent_url"] = agent_url
    packet["summary"] = summarize(packet, vocabulary)
    validate_packet(packet)
    return packet


def _salience(turn: dict[str, Any], routed_turn: int | None, vocabulary: RoutingTable) -> float:
    """How much a caller turn tells the expert: the turn that decided the routing most, then turns naming details
    (benefit, dates, amounts), then other requests; small talk and key presses not at all."""
    if turn["input"] != "speech" or not turn["text"].strip() or turn["intent"] in vocabulary.smalltalk:
        return 0.0
    if turn["decision"].startswith("confirm:"):
        return 0.5  # a transcript read back as uncertain: the caller's confirmation or next turn says it better
    score = 1.0 + turn["intent_confidence"]
    if turn["turn"] == routed_turn:
        score += 3.0
    return score + 0.5 * len(turn.get("_entities", []))


def summarize(packet: dict[str, Any], vocabulary: RoutingTable) -> str:
    """Two or three plain sentences: why the call is here, the caller's own words, the details found."""
    intent = packet["intent"]
    routed_turn = next((t["turn"] for t in packet["transcript"] if intent and t["intent"] == intent["name"]), None)
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for e in packet["entities"]:
        by_turn.setdefault(e["turn"], []).append(e)
    scored = [
        (_salience({**t, "_entities": by_turn.get(t["turn"], [])}, routed_turn, vocabulary), t)
        for t in packet["transcript"]
    ]
    best = sorted(scored, key=lambda x: -x[0])[:SUMMARY_QUOTES]
    quotes = sorted((t for s, t in best if s >= MIN_QUOTE_SALIENCE), key=lambda t: t["turn"])

    parts = []
    if packet["flags"]["urgent"]:
        parts.append("URGENT: put through ahead of the queue.")
    if packet["flags"]["distress"]:
        parts.append("The caller sounded distressed.")
    elif packet["caller_mood"]["frustrated"]:
        parts.append(f"The caller sounded frustrated ({', '.join(packet['caller_mood']['signals'])}).")
    if intent:
        matter = load_language(SUMMARY_LANGUAGE).dialogue.name(intent["name"])
        parts.append(f"About {matter} ({round(intent['confidence'] * 100)}% sure).")
    else:
        parts.append(f"Routed because: {packet['reason']}.")
    if quotes:
        said = " / ".join(f'"{_clip(t["text"]).rstrip(".!?")}"' for t in quotes)
        parts.append(f"Caller said: {said}.")
    details = list(
        dict.fromkeys(f"{ENTITY_NAMES.get(e['entity'], e['entity'])}: {e['value']}" for e in packet["entities"])
    )
    if details:
        parts.append("Details: " + "; ".join(details) + ".")
    if packet["answered_topics"]:
        parts.append("Already answered: " + ", ".join(t.replace("_", " ") for t in packet["answered_topics"]) + ".")
    if packet["previous_calls_7d"]:
        parts.append(f"Called {times(packet['previous_calls_7d'])} before in the last 7 days.")
    return " ".join(parts)[:800]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rsplit(" ", 1)[0] + "…"


def task_attributes(packet: dict[str, Any]) -> str:
    """The packet as TaskRouter task attributes: whole when it fits, else without its earliest turns."""
    attributes = dict(packet)
    text = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    dropped = 0
    while len(text) > MAX_ATTRIBUTES_CHARS and len(attributes["transcript"]) > 1:
        dropped += 1
        attributes["transcript"] = packet["transcript"][dropped:]
        attributes["assistant_said"] = []
        attributes["transcript_truncated"] = dropped
        text = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    return text
