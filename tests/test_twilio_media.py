import base64
import json

import pytest

from telephony.twilio_media import (
    MAX_MESSAGE_BYTES,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaProtocolError,
    Start,
    Stop,
    clear_message,
    connected_message,
    dtmf_message,
    inbound_media_message,
    mark_echo_message,
    mark_message,
    media_message,
    parse_inbound,
    parse_outbound,
    start_message,
    stop_message,
)

# Messages exactly as in Twilio's Media Streams documentation.
TWILIO_START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"FirstName": "Jane"},
    },
    "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
}
TWILIO_MEDIA = {
    "event": "media",
    "sequenceNumber": "3",
    "media": {
        "track": "inbound",
        "chunk": "1",
        "timestamp": "5",
        "payload": base64.b64encode(bytes(range(160))).decode(),
    },
    "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
}


def test_parses_documented_connected_start_media():
    assert parse_inbound(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})) == Connected(
        "Call", "1.0.0"
    )
    start = parse_inbound(json.dumps(TWILIO_START))
    assert isinstance(start, Start)
    assert start.call_sid.startswith("CA") and start.sample_rate == 8000 and start.encoding == "audio/x-mulaw"
    assert start.custom_parameters == {"FirstName": "Jane"}
    media = parse_inbound(json.dumps(TWILIO_MEDIA))
    assert isinstance(media, Media)
    assert media.timestamp_ms == 5 and media.chunk == 1
    assert media.payload == base64.b64decode(TWILIO_MEDIA["media"]["payload"])


def test_parses_dtmf_mark_stop():
    sid = "MZ1"
    assert parse_inbound(dtmf_message(4, sid, "7")) == Dtmf(sid, "7")
    assert parse_inbound(mark_echo_message(5, sid, "turn-1")) == Mark(sid, "turn-1")
    assert parse_inbound(stop_message(6, sid, "CA1", "AC1")) == Stop(sid, "CA1")


def test_twilio_side_builders_round_trip():
    start = parse_inbound(start_message(1, "MZ1", "CA1", "AC1", {"from": "+4670"}))
    assert isinstance(start, Start) and start.custom_parameters == {"from": "+4670"}
    media = parse_inbound(inbound_media_message(2, "MZ1", 1, 20, b"\x7f" * 160))
    assert isinstance(media, Media) and media.payload == b"\x7f" * 160 and media.timestamp_ms == 20
    assert parse_inbound(connected_message()) == Connected("Call", "1.0.0")


def test_outbound_messages_have_twilio_shape():
    media = json.loads(media_message("MZ1", b"\x00\x01"))
    assert media == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": base64.b64encode(b"\x00\x01").decode()},
    }
    assert json.loads(mark_message("MZ1", "m")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "m"},
    }
    assert json.loads(clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    assert parse_outbound(media_message("MZ1", b"ab")).payload == b"ab"
    assert parse_outbound(mark_message("MZ1", "x")).name == "x"
    assert parse_outbound(clear_message("MZ1")).event == "clear"


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("not json at all", "not JSON"),
        ("{}", "missing field 'event'"),
        (json.dumps({"event": "media", "streamSid": "MZ1"}), "missing field 'media'"),
        (
            json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "***not base64***"}}),
            "base64",
        ),
        (
            json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "AAAA", "timestamp": "x"}}),
            "integer",
        ),
        (json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "55"}}), "DTMF"),
        (json.dumps({"event": "teleport", "streamSid": "MZ1"}), "unknown event"),
        (json.dumps({"event": "start", "streamSid": "MZ1", "start": {"callSid": "CA1"}}), "mediaFormat"),
        (json.dumps({"event": "mark", "streamSid": 5, "mark": {"name": "x"}}), "streamSid"),
        ("x" * (MAX_MESSAGE_BYTES + 1), "exceeds"),
    ],
)
def test_malformed_messages_raise_protocol_error(raw, problem):
    with pytest.raises(MediaProtocolError, match=problem):
        parse_inbound(raw)
