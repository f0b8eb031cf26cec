"""Which call and which of its turns a log line belongs to, for structured logs (helpline/logs.py).

The gateway sets the call when a media stream starts and the session sets the turn as it opens one; tasks and threads
started from there inherit both (asyncio copies the context), so every line logged on a call's behalf carries them.
"""

from __future__ import annotations

from contextvars import ContextVar

CALL_ID: ContextVar[str | None] = ContextVar("helpline_call_id", default=None)
TURN: ContextVar[int | None] = ContextVar("helpline_turn", default=None)
