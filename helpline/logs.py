"""How the product logs: JSON lines for production (one object a line, for the log shipper), or readable lines for a
terminal; ``HELPLINE_LOG_FORMAT`` picks one. Both go through the redacting filter, so nothing personal is written."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from foundation.log_context import CALL_ID, TURN
from foundation.redaction import RedactingFilter, redact_text

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(call_tag)s%(message)s"
QUIET = ("httpx", "faster_whisper", "alembic")  # one line per request or per utterance drowns the call report


def _call_and_turn(record: logging.LogRecord) -> tuple[str | None, int | None]:
    """An explicit ``extra={"call_id": ...}`` wins over the context the line was logged in."""
    return getattr(record, "call_id", None) or CALL_ID.get(), getattr(record, "turn", None) or TURN.get()


class _RedactedTracebacks(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return redact_text(super().formatException(ei))  # an exception's text may quote what the caller said


class JsonLines(_RedactedTracebacks):
    """``{"ts", "level", "logger", "event", "call_id", "turn", "message"}`` (+ ``"error"`` with a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        call_id, turn = _call_and_turn(record)
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "call_id": call_id,
            "turn": turn,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReadableLines(_RedactedTracebacks):
    """The classic line, with ``[CA… turn 2]`` before the message when it belongs to a call."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        call_id, turn = _call_and_turn(record)
        tag = "" if call_id is None else f"[{call_id}{'' if turn is None else f' turn {turn}'}] "
        record.call_tag = tag
        return super().format(record)


def configure_logging(level: str, fmt: str) -> None:
    """The root logger writes to standard error in ``fmt`` ("json" or "text"), every line redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else ReadableLines())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
