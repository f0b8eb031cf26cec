"""Twilio Media Streams wire format: JSON text frames <-> typed events. Pure: no network, no clock.

Inbound (Twilio -> us): connected, start, media, dtmf, mark, stop. Outbound (us -> Twilio): media, mark, clear.
Audio is base64 G.711 mu-law, 8 kHz mono; Twilio sends 20 ms (160 byte) frames.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

# Far above a 20 ms frame (about 300 bytes of JSON): anything this large is not a Twilio message.
MAX_MESSAGE_BYTES = 64 * 1024
SUPPORTED_ENCODING = "audio/x-mulaw"
SUPPORTED_RATE = 8000


class MediaProtocolError(ValueError):
    """A message that does not follow the Media Streams protocol. The call goes on; the message is skipped."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes  # mu-law bytes


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str


InboundEvent = Connected | Start | Media | Dtmf | Mark | Stop


def _require(obj: Any, key: str, kind: type) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MediaProtocolError(f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise MediaProtocolError(f"field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _int_field(obj: Any, key: str) -> int:
    if not isinstance(obj, dict) or key not in obj:
        raise MediaProtocolError(f"missing field {key!r}")
    value = obj[key]
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise MediaProtocolError(f"field {key!r} must be an integer, got {value!r}") from e


def parse_inbound(text: str | bytes) -> InboundEvent:
    """One WebSocket text frame from Twilio -> an event; MediaProtocolError for anything malformed."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise MediaProtocolError(f"message of {len(text)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MediaProtocolError(f"not JSON: {e}") from e
    event = _require(message, "event", str)
    if event == "connected":
        return Connected(protocol=str(message.get("protocol", "")), version=str(message.get("version", "")))
    stream_sid = _require(message, "streamSid", str)
    if event == "start":
        start = _require(message, "start", dict)
        media_format = _require(start, "mediaFormat", dict)
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise MediaProtocolError("customParameters must be an object")
        return Start(
            stream_sid=stream_sid,
            call_sid=_require(start, "callSid", str),
            account_sid=str(start.get("accountSid", "")),
            tracks=tuple(start.get("tracks") or ("inbound",)),
            encoding=_require(media_format, "encoding", str),
            sample_rate=_int_field(media_format, "sampleRate"),
            channels=_int_field(media_format, "channels"),
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )
    if event == "media":
        media = _require(message, "media", dict)
        try:
            payload = base64.b64decode(_require(media, "payload", str), validate=True)
        except binascii.Error as e:
            raise MediaProtocolError(f"media payload is not base64: {e}") from e
        return Media(
            stream_sid=stream_sid,
            track=str(media.get("track", "inbound")),
            chunk=_int_field(media, "chunk") if "chunk" in media else 0,
            timestamp_ms=_int_field(media, "timestamp") if "timestamp" in media else 0,
            payload=payload,
        )
    if event == "dtmf":
        digit = _require(_require(message, "dtmf", dict), "digit", str)
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise MediaProtocolError(f"not a DTMF digit: {digit!r}")
        return Dtmf(stream_sid=stream_sid, digit=digit)
    if event == "mark":
        return Mark(stream_sid=stream_sid, name=_require(_require(message, "mark", dict), "name", str))
    if event == "stop":
        stop = message.get("stop") or {}
        return Stop(stream_sid=stream_sid, call_sid=str(stop.get("callSid", "")) if isinstance(stop, dict) else "")
    raise MediaProtocolError(f"unknown event {event!r}")


def media_message(stream_sid: str, mulaw: bytes) -> str:
    """Outbound audio for Twilio to play."""
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo ``name`` back once all audio sent before it has played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drop all audio buffered for playback (barge-in)."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})


# The Twilio side of the protocol, used by our softphone and by tests that play Twilio.


def connected_message() -> str:
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(
    sequence: int, stream_sid: str, call_sid: str, account_sid: str, custom_parameters: dict[str, str]
) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": str(sequence),
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": custom_parameters,
                "mediaFormat": {"encoding": SUPPORTED_ENCODING, "sampleRate": SUPPORTED_RATE, "channels": 1},
            },
            "streamSid": stream_sid,
        }
    )


def inbound_media_message(sequence: int, stream_sid: str, chunk: int, timestamp_ms: int, mulaw: bytes) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(sequence),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(mulaw).decode("ascii"),
            },
            "streamSid": stream_sid,
        }
    )


def dtmf_message(sequence: int, stream_sid: str, digit: str) -> str:
    return json.dumps(
        {
            "event": "dtmf",
            "streamSid": stream_sid,
            "sequenceNumber": str(sequence),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def mark_echo_message(sequence: int, stream_sid: str, name: str) -> str:
    return json.dumps(
        {"event": "mark", "sequenceNumber": str(sequence), "streamSid": stream_sid, "mark": {"name": name}}
    )


def stop_message(sequence: int, stream_sid: str, call_sid: str, account_sid: str) -> str:
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": str(sequence),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )


@dataclass(frozen=True)
class Outbound:
    """A message we sent, as the Twilio side parses it."""

    event: str
    payload: bytes = b""
    name: str = ""


def parse_outbound(text: str) -> Outbound:
    """Parse what the gateway sends (media / mark / clear); for the Twilio side (softphone, tests)."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise MediaProtocolError(f"not JSON: {e}") from e
    event = _require(message, "event", str)
    _require(message, "streamSid", str)
    if event == "media":
        return Outbound("media", payload=base64.b64decode(_require(_require(message, "media", dict), "payload", str)))
    if event == "mark":
        return Outbound("mark", name=_require(_require(message, "mark", dict), "name", str))
    if event == "clear":
        return Outbound("clear")
    raise MediaProtocolError(f"unknown outbound event {event!r}")
