"""Log lines: JSON objects naming the call, turn and event for production, readable lines for a terminal; both
redacted."""

import asyncio
import json
import logging

import pytest

from foundation.log_context import CALL_ID, TURN
from helpline.logs import configure_logging

PERSONNUMMER = "19811218-9876"  # a valid one (the check digit is right): redacted


@pytest.fixture
def root_restored():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


async def _a_call_logs(log: logging.Logger) -> None:
    """What a call's tasks do: the gateway names the call, the session's task opens a turn, a thread logs too."""
    CALL_ID.set("CA0123")
    log.info("call %s started", "CA0123", extra={"event": "call_started"})

    async def dialogue() -> None:
        TURN.set(2)
        log.warning("caller said %s", f"my number is {PERSONNUMMER}", extra={"event": "turn_decided"})
        await asyncio.to_thread(log.info, "recognised in a worker thread")

    await asyncio.create_task(dialogue())


def test_json_lines_name_the_call_turn_and_event_and_are_redacted(root_restored, capsys):
    configure_logging("INFO", "json")
    log = logging.getLogger("helpline.test")
    asyncio.run(_a_call_logs(log))
    log.info("not a call's")
    started, said, threaded, outside = (json.loads(line) for line in _lines(capsys))

    assert started["event"] == "call_started" and started["call_id"] == "CA0123" and started["turn"] is None
    assert said["event"] == "turn_decided" and said["call_id"] == "CA0123" and said["turn"] == 2
    assert said["level"] == "WARNING" and said["logger"] == "helpline.test"
    assert PERSONNUMMER not in said["message"] and "my number is" in said["message"]
    assert threaded["call_id"] == "CA0123" and threaded["turn"] == 2
    assert outside["call_id"] is None and outside["event"] == "log"
    assert started["ts"].endswith("+00:00")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_traceback_is_kept_and_redacted(root_restored, capsys, fmt):
    configure_logging("INFO", fmt)
    try:
        raise ValueError(f"bad turn for {PERSONNUMMER}")
    except ValueError:
        logging.getLogger("helpline.test").exception("turn failed")
    text = capsys.readouterr().err
    traceback = json.loads(text)["error"] if fmt == "json" else text
    assert "ValueError: bad turn for [personnummer]" in traceback and PERSONNUMMER not in text


def test_readable_lines_tag_the_call_and_turn(root_restored, capsys):
    configure_logging("INFO", "text")
    log = logging.getLogger("helpline.test")
    asyncio.run(_a_call_logs(log))
    started, said, _ = _lines(capsys)
    assert "[CA0123] call CA0123 started" in started
    assert "[CA0123 turn 2] caller said my number is" in said and PERSONNUMMER not in said
