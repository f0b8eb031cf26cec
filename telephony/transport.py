"""The call as the session sees its line: who is calling, and a port to play audio to them.

The session never sees a wire format: the Twilio adapter (telephony/twilio_media.py) implements ``CallTransport``
over a Media Streams WebSocket; a test implements it with a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

FINAL_MARK_SUFFIX = ".end"  # ends the mark after a prompt's last sentence: its echo means the caller heard it all
HOLDING_KIND = "hold"  # starts the mark after the holding phrase ("One moment, please."): not a reply, not a prompt


def is_holding_mark(name: str) -> bool:
    """The mark after the holding phrase: the audio before it is not the reply (the felt gap goes on)."""
    return name.startswith(HOLDING_KIND + ".")


def ends_prompt(name: str) -> bool:
    """The mark after a prompt's last sentence: once echoed, the caller heard it all and may answer. The holding
    phrase's mark ends no prompt: the caller waits on for the reply."""
    return name.endswith(FINAL_MARK_SUFFIX) and not is_holding_mark(name)


@dataclass(frozen=True)
class CallStart:
    """What the line tells the session of a new call."""

    call_sid: str
    stream_sid: str
    caller_number: str = ""  # as the network gave it; the session keeps it masked


class CallTransport(Protocol):
    """Audio out to the caller (8 kHz mu-law), marks echoed back once what was sent before them has played, and
    a way to drop what is still waiting to play (barge-in)."""

    async def send_audio(self, mulaw: bytes) -> None: ...

    async def send_mark(self, name: str) -> None: ...

    async def clear(self) -> None: ...
