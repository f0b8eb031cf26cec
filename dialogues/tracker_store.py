"""Rasa tracker store that redacts personal data from user messages before they are written (Rasa 3.6 venv).

Configured in the generated endpoints.yml. Being an SQL store (SQLite file by default), conversations also
survive a model hot-reload: the newly loaded agent reads the same trackers.
"""

from __future__ import annotations

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from foundation.redaction import redact_text


class RedactingSQLTrackerStore(SQLTrackerStore):
    async def save(self, tracker: DialogueStateTracker) -> None:
        for event in tracker.events:
            if isinstance(event, UserUttered) and event.text:
                event.text = redact_text(event.text)
                if isinstance(event.parse_data, dict) and event.parse_data.get("text"):
                    event.parse_data["text"] = redact_text(event.parse_data["text"])
        await super().save(tracker)
