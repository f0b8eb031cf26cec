"""The access audit: every time a logged-in user opens callers' data (a call's detail or packet, a list of calls with
their words, a CSV export, the review queue), who, what, when and from which address is written to the store first;
admins read the trail (/admin/access). A view that cannot be recorded is not shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from analytics.models import AccessEvent
from analytics.store import CallStore, utcnow
from foundation.redaction import redact_text

# What can be opened, as the trail names it.
ACTIONS = {
    "call_detail": "a call's detail (transcript, turns, packet)",
    "packet": "a routed call's handoff packet (agent screen)",
    "routed_calls": "the list of routed calls with their summaries",
    "call_list": "a list of calls with their first words",
    "queue_calls": "a queue's calls with their first words",
    "csv_export": "a CSV export of calls",
    "review_queue": "the review queue's turns",
    "call_drivers": "call drivers with example turns",
    "recording": "a call's recording (listened to or downloaded)",
}


class AuditUnavailable(Exception):
    """The access could not be recorded (the store is out of reach): the data is not shown."""


@dataclass(frozen=True)
class Access:
    username: str
    role: str
    action: str
    address: str
    call_sid: str | None = None
    subject: str = ""


def record_access(store: CallStore, access: Access, at: datetime | None = None) -> None:
    """Write ``access`` to the trail; AuditUnavailable when it cannot be written."""
    if access.action not in ACTIONS:
        raise ValueError(f"unknown audited action {access.action!r}")
    event = AccessEvent(
        at=at or utcnow(),
        username=access.username,
        role=access.role,
        action=access.action,
        call_sid=access.call_sid,
        subject=redact_text(access.subject)[:1000],  # a search may hold a personal number
        address=access.address[:64],
    )
    try:
        with store.sessions.begin() as db:
            db.add(event)
    except SQLAlchemyError as e:
        raise AuditUnavailable(str(e)) from e


def access_trail(
    store: CallStore, username: str = "", call_sid: str = "", limit: int = 100, offset: int = 0
) -> tuple[int, list[AccessEvent]]:
    """The newest accesses first, optionally of one user or one call: (how many in all, this page)."""
    where = [AccessEvent.username == username] if username else []
    where += [AccessEvent.call_sid == call_sid] if call_sid else []
    with store.sessions() as db:
        total = db.scalar(select(func.count()).select_from(AccessEvent).where(*where)) or 0
        rows = db.scalars(
            select(AccessEvent).where(*where).order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
            .offset(offset).limit(limit)
        ).all()  # fmt: skip
        db.expunge_all()
    return total, list(rows)
