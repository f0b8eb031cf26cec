"""The routing table (dialogues/routing.yml), read by one loader and checked once: which intents the assistant
answers (-> topic), routes (-> queue) or treats as small talk, and the keypad menu. How intents, topics and queues are
said is per language (foundation/language.py).

Read by the action server (Rasa's venv), the gateway, the evaluations and the trainer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from foundation.vocabulary import FALLBACK_QUEUE, QUEUES, Decision

ROUTING_FILE = Path(__file__).resolve().parents[1] / "dialogues" / "routing.yml"


class RoutingTableError(ValueError):
    """The routing table is missing a section or names something the domain does not know."""


@dataclass(frozen=True)
class RoutingTable:
    answers: dict[str, str]  # intent -> topic
    routes: dict[str, str]  # intent -> queue
    smalltalk: dict[str, str]  # intent -> small-talk kind
    urgent: frozenset[str]
    keypad: dict[str, str]  # phone key -> intent, in menu order
    keypad_repeat: str
    fallback_queue: str
    max_failed_understandings: int
    clarify_margin: float
    clarify_min_confidence: float
    dismiss_min_confidence: float
    source: Path

    @classmethod
    def load(cls, path: Path = ROUTING_FILE) -> RoutingTable:
        """``path`` read and checked; the default file is read once per process."""
        return _load(path.resolve())

    @property
    def person_intents(self) -> frozenset[str]:
        """Intents that ask for a person: routed to the fallback queue and not urgent (request_human)."""
        return frozenset(i for i, q in self.routes.items() if q == self.fallback_queue and i not in self.urgent)

    @property
    def intents(self) -> set[str]:
        return set(self.answers) | set(self.routes) | set(self.smalltalk)

    def decision_for(self, intent: str) -> Decision | None:
        """What the table makes the assistant do with ``intent`` (None: the table does not know it)."""
        if intent in self.answers:
            return Decision("answer", self.answers[intent])
        if intent in self.routes:
            return Decision("route", self.routes[intent])
        if intent in self.smalltalk:
            return Decision("smalltalk", self.smalltalk[intent])
        return None


@lru_cache(maxsize=4)
def _load(path: Path) -> RoutingTable:
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RoutingTableError(f"cannot read the routing table {path}: {e}") from e
    try:
        table = RoutingTable(
            answers={str(k): str(v) for k, v in raw["answers"].items()},
            routes={str(k): str(v) for k, v in raw["routes"].items()},
            smalltalk={str(k): str(v) for k, v in raw["smalltalk"].items()},
            urgent=frozenset(str(i) for i in raw.get("urgent") or ()),
            keypad={str(k): str(v) for k, v in (raw.get("keypad") or {}).items()},
            keypad_repeat=str(raw.get("keypad_repeat", "*")),
            fallback_queue=str(raw["fallback_queue"]),
            max_failed_understandings=int(raw["max_failed_understandings"]),
            clarify_margin=float(raw["clarify_margin"]),
            clarify_min_confidence=float(raw["clarify_min_confidence"]),
            dismiss_min_confidence=float(raw["dismiss_min_confidence"]),
            source=path,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RoutingTableError(f"{path}: {e!r} is missing or malformed") from e
    unknown = sorted(set(table.routes.values()) - set(QUEUES))
    if unknown:
        raise RoutingTableError(f"{path}: routes name queues the domain does not have: {', '.join(unknown)}")
    if table.fallback_queue != FALLBACK_QUEUE:
        raise RoutingTableError(
            f"{path}: fallback_queue must be {FALLBACK_QUEUE} (DOMAIN.md), not {table.fallback_queue}"
        )
    return table
