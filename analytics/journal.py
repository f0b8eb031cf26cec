"""The call-store writes a gateway journals (analytics/writer.py), as typed operations.

Each is a frozen dataclass whose fields are the store method's arguments, in order; its journal line is
``{"op": <name>, "fields": {...}}``. Lines an earlier version wrote (``{"op", "args", "kwargs"}``) still replay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar

from analytics.store import CallStore


class JournalEntryInvalid(ValueError):
    """A journal line that is not a known operation with its arguments."""


@dataclass(frozen=True)
class StoreWrite:
    op: ClassVar[str]

    def apply(self, store: CallStore) -> Any:
        return getattr(store, self.op)(**vars(self))

    def line(self) -> dict[str, Any]:
        return {"op": self.op, "fields": asdict(self)}


@dataclass(frozen=True)
class CallStarted(StoreWrite):
    op: ClassVar[str] = "call_started"
    call_sid: str
    caller: str
    caller_key: str
    started_at: str | datetime
    worker: str = ""


@dataclass(frozen=True)
class TurnSaved(StoreWrite):
    op: ClassVar[str] = "save_turn"
    call_sid: str
    turn: dict[str, Any]


@dataclass(frozen=True)
class HandoffSaved(StoreWrite):
    op: ClassVar[str] = "save_handoff"
    call_sid: str
    packet: dict[str, Any]


@dataclass(frozen=True)
class TaskEventAdded(StoreWrite):
    op: ClassVar[str] = "add_task_event"
    call_sid: str
    queue: str
    kind: str
    source: str
    at: str | datetime | None = None
    task_sid: str | None = None
    worker: str | None = None
    handled_s: float | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallEnded(StoreWrite):
    op: ClassVar[str] = "call_ended"
    record: dict[str, Any]


@dataclass(frozen=True)
class RecordingSaved(StoreWrite):
    """The recording is a file in the gateway's data directory until stored (a journal line stays small)."""

    op: ClassVar[str] = "save_recording"
    call_sid: str
    path: str
    seconds: float
    silenced: int


@dataclass(frozen=True)
class InterruptedMarked(StoreWrite):
    op: ClassVar[str] = "mark_interrupted"
    worker: str


OPERATIONS: dict[str, type[StoreWrite]] = {
    cls.op: cls
    for cls in (CallStarted, TurnSaved, HandoffSaved, TaskEventAdded, CallEnded, RecordingSaved, InterruptedMarked)
}


def parse(entry: Any) -> StoreWrite:
    """A journal line's operation (this version's form, or an earlier one's)."""
    if not isinstance(entry, dict) or entry.get("op") not in OPERATIONS:
        raise JournalEntryInvalid(f"not a store write: {str(entry)[:80]!r}")
    cls = OPERATIONS[entry["op"]]
    try:
        if "fields" in entry:
            return cls(**entry["fields"])
        return cls(*entry.get("args", ()), **entry.get("kwargs", {}))
    except TypeError as e:
        raise JournalEntryInvalid(f"{entry['op']}: {e}") from e
