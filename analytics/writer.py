"""Write-behind for the call store, so that a database outage never reaches a caller and loses no record.

Every write a call makes (its start, each decided turn, the handoff packet, the redirect, its end) is appended to a
local journal file and applied to the database, in order, by one task. While the database is unreachable the
writes wait and are retried with backoff; the calls go on. Once everything in the journal is stored the journal is
emptied; a gateway that stops (or is killed) with writes pending replays its journal when it starts again.
Every operation is idempotent by key except ``add_task_event``, which is only ever applied once (a write is retried
only when it failed before reaching the database's commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from analytics.journal import JournalEntryInvalid, StoreWrite, parse
from analytics.store import CallStore

log = logging.getLogger(__name__)


def _transient(error: SQLAlchemyError) -> bool:
    """The database could not be reached (retry), as opposed to a write it refused (which retrying cannot mend)."""
    return isinstance(error, OperationalError) or (isinstance(error, DBAPIError) and error.connection_invalidated)


class StoreWriter:
    def __init__(self, store: CallStore, journal: Path, max_backoff_s: float = 10.0):
        self._store = store
        self._journal = journal
        self._max_backoff_s = max_backoff_s
        self._queue: asyncio.Queue[StoreWrite] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # an entry is taken from the queue and not yet stored
        self.outage_since: float | None = None  # loop time of the first failed attempt of the current outage
        self.replayed = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (1 if self._busy else 0)

    def start(self) -> None:
        """Replay what an earlier run of this gateway left unstored, then apply new writes as they come."""
        self._journal.parent.mkdir(parents=True, exist_ok=True)
        if self._journal.exists():
            for number, line in enumerate(self._journal.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    write = parse(json.loads(line))
                except json.JSONDecodeError:  # the last line of a gateway killed while writing it
                    log.warning("store journal %s: line %d is incomplete and was skipped", self._journal, number)
                    continue
                except JournalEntryInvalid as e:
                    log.error("store journal %s: line %d skipped: %s", self._journal, number, e)
                    continue
                self._queue.put_nowait(write)
                self.replayed += 1
            if self.replayed:
                log.warning("store journal: %d write(s) an earlier run left unstored are replayed", self.replayed)
        self._task = asyncio.create_task(self._run(), name="store-writer")

    def put(self, write: StoreWrite) -> None:
        """Journal ``write`` (on disk before it is queued), then store it in order."""
        line = json.dumps(write.line(), default=str, ensure_ascii=False)
        with self._journal.open("a", encoding="utf-8") as journal:
            journal.write(line + "\n")
        self._queue.put_nowait(parse(json.loads(line)))  # the journal's form: a replay applies exactly the same

    async def _apply(self, write: StoreWrite) -> None:
        await asyncio.to_thread(write.apply, self._store)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            entry = await self._queue.get()
            self._busy = True
            backoff = 0.25
            while True:
                try:
                    await self._apply(entry)
                    break
                except SQLAlchemyError as e:
                    if not _transient(e):
                        log.error("call store refused %s: %s (dropped)", entry.op, e)
                        break
                    if self.outage_since is None:
                        self.outage_since = loop.time()
                        log.error("call store unreachable; writes wait in the journal (%s)", str(e).splitlines()[0])
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
            if self.outage_since is not None:
                log.warning("call store reachable again after %.1f s", loop.time() - self.outage_since)
                self.outage_since = None
            self._busy = False
            self._queue.task_done()
            if self._queue.empty():
                self._journal.write_text("", encoding="utf-8")  # all stored; puts happen on this loop, not between

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every write is stored; False when the database is still out after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
            return True
        except TimeoutError:
            return False

    async def stop(self, timeout_s: float = 10) -> None:
        """Store what can be stored; what cannot stays in the journal for the next start."""
        if self._task is None:
            return
        if not await self.drain(timeout_s):
            log.error("gateway stops with %d call-store write(s) kept in %s", self.pending, self._journal)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
