"""One owner for a call's tasks: everything the call starts is started here, and cancelled and awaited when it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class CallTasks:
    """Creates the call's tasks and keeps them until they finish; ``close`` cancels what is left and waits for it."""

    def __init__(self, call_sid: str):
        self._call_sid = call_sid
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=f"{self._call_sid}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # retrieved here; whoever awaits it meets it too
            log.debug("call %s: task %s failed: %r", self._call_sid, task.get_name(), task.exception())

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Cancel every task still running and wait for them (at most ``timeout_s`` each)."""
        for task in list(self._tasks):
            task.cancel()
            try:
                await asyncio.wait_for(task, timeout=timeout_s)
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:  # e.g. a send to a socket the caller already closed: the call still ends cleanly
                log.exception("call %s: a task failed while the call ended", self._call_sid)
