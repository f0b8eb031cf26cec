"""Running the retention purge (analytics/retention.py): once (`helpline purge`), or at start and then every
``retention.every_hours`` inside `serve` (and `helpline purge --repeat` in a container of its own)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from analytics.retention import PurgeReport, purge, tracker_databases
from analytics.store import CallStore
from foundation.settings import Settings

log = logging.getLogger(__name__)


def purge_once(settings: Settings) -> PurgeReport:
    """One purge of the call store, the tracker store(s) and the audit trail; an unreachable store is a report with
    an error (the next run tries again), never an exception."""
    try:
        store = CallStore.open(settings.database)
    except SQLAlchemyError as e:
        report = PurgeReport(error=f"cannot open the call store: {str(e).splitlines()[0]}")
        log.error("purge: %s", report.error)
        return report
    try:
        return purge(store, tracker_databases(settings), settings.retention)
    finally:
        store.close()


class DailyPurge:
    """A thread that purges now and then every ``retention.every_hours`` until stopped."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-purge", daemon=True)
        self.runs = 0

    def start(self) -> DailyPurge:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                purge_once(self._settings)
            except Exception:  # a bug must not end the daily purge for good: the next run tries again
                log.exception("purge failed; it runs again in %.0f h", self._settings.retention.every_hours)
            self.runs += 1
            self._stop.wait(self._settings.retention.every_hours * 3600)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
