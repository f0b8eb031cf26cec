"""Hostile and broken input against the running line (real gateway, Rasa and models): replayed and forged webhooks and
streams, broken media messages, streams that stop talking, noise, a ten-minute monologue, a keypad flood, odd text to
`helpline ask`, attacks on every dashboard route, and a login brute force. Each gets a clear refusal or a safe,
logged handling, and the line goes on serving calls."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import websockets
from twilio.request_validator import RequestValidator

from helpline.cli import MAX_ASK_CHARS
from helpline.services import settings_environment
from telephony.line import media_stream_url
from telephony.softphone import ACCOUNT_SID, Press, Say, Silence, Softphone
from telephony.twilio_media import connected_message, dtmf_message, inbound_media_message, start_message
from tests.conftest import add_user, extra_gateway, signed_post, spoken

pytestmark = [pytest.mark.rasa, pytest.mark.models]

QUESTION = "What are your opening hours?"
SILENCE_FRAME = b"\xff" * 160  # 20 ms of mu-law silence


def _answer_webhook(stack, call_sid: str) -> dict[str, str]:
    """Twilio's incoming-call webhook for ``call_sid``; returns the stream's parameters from the TwiML."""
    answer = signed_post(stack, "/twilio/voice", {"CallSid": call_sid, "From": "+46701234567", "To": "+46771524524"})
    assert answer.status_code == 200, answer.text
    stream = ET.fromstring(answer.text).find("./Connect/Stream")
    return {p.get("name"): p.get("value") for p in stream.findall("Parameter")}


async def _stream(stack, messages: list[str | bytes], listen_s: float = 3.0) -> tuple[int | None, list[dict]]:
    """A media stream, signed as Twilio signs it, that sends ``messages`` then listens; returns the close code the
    gateway gave (None: still open when we stopped listening) and what it sent."""
    url = media_stream_url(stack)
    signature = RequestValidator(stack.twilio_auth_token).compute_signature(url, {})
    local = url.replace(stack.public_base_url.replace("https://", "wss://").replace("http://", "ws://"), "", 1)
    local = f"ws://{stack.gateway.host}:{stack.gateway.port}{local}"
    received: list[dict] = []
    async with websockets.connect(local, additional_headers={"X-Twilio-Signature": signature}) as ws:
        for message in messages:
            await ws.send(message)
        deadline = time.monotonic() + listen_s
        try:
            while time.monotonic() < deadline:
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=max(0.05, deadline - time.monotonic()))
                except TimeoutError:
                    break
                received.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code
    return code, received


def _start(call_sid: str, stream_sid: str, parameters: dict[str, str], encoding: str = "audio/x-mulaw") -> str:
    message = json.loads(start_message(1, stream_sid, call_sid, ACCOUNT_SID, parameters))
    message["start"]["mediaFormat"]["encoding"] = encoding
    return json.dumps(message)


def _silence(stream_sid: str, frames: int, first_seq: int = 2) -> list[str]:
    return [inbound_media_message(first_seq + i, stream_sid, i + 1, i * 20, SILENCE_FRAME) for i in range(frames)]


async def _record(stack, call_sid: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{stack.gateway_url}/api/calls/{call_sid}")
    return response.json() if response.status_code == 200 else {}


async def _still_serving(stack, caller_voice) -> None:
    result = (await Softphone(stack, speed=2.0).call([spoken(caller_voice, QUESTION)])).as_dict()
    assert result["turns"][0]["decision"] == "answer:opening_hours", result["turns"]


# --- Twilio webhooks and streams ---------------------------------------------------------------------------------


async def test_replayed_webhook_and_stream_are_refused(stack):
    call_sid, stream_sid = "CA" + uuid.uuid4().hex, "MZ" + uuid.uuid4().hex
    parameters = _answer_webhook(stack, call_sid)
    assert parameters["stream_token"]
    greeting = [_start(call_sid, stream_sid, parameters), *_silence(stream_sid, 50)]
    code, sent = await _stream(stack, [connected_message(), *greeting], listen_s=2)
    assert any(m["event"] == "media" for m in sent), "the genuine stream is answered"

    # The same webhook again (a captured request, signature and all): refused.
    again = signed_post(stack, "/twilio/voice", {"CallSid": call_sid, "From": "+46701234567", "To": "+46771524524"})
    assert again.status_code == 403
    # The same stream again: its start is refused and nothing is said.
    code, sent = await _stream(stack, [connected_message(), *greeting], listen_s=2)
    assert code is not None and not any(m["event"] == "media" for m in sent)
    # A start for another call with this call's token (or none): refused too.
    for forged in ({**parameters}, {k: v for k, v in parameters.items() if k != "stream_token"}):
        other = "CA" + uuid.uuid4().hex
        code, sent = await _stream(stack, [connected_message(), _start(other, stream_sid, forged)], listen_s=2)
        assert code is not None and sent == []
        assert await _record(stack, other) == {}


async def test_wrong_codec_closes_the_stream_and_the_caller_reaches_a_person(stack):
    call_sid, stream_sid = "CA" + uuid.uuid4().hex, "MZ" + uuid.uuid4().hex
    parameters = _answer_webhook(stack, call_sid)
    start = _start(call_sid, stream_sid, parameters, encoding="audio/x-l16")
    code, sent = await _stream(stack, [connected_message(), start], listen_s=2)
    assert code is not None and sent == []
    # Twilio then follows the webhook's <Redirect>: a call the assistant never held goes to a person.
    handoff = signed_post(stack, f"/twilio/handoff/{call_sid}", {"CallSid": call_sid})
    assert handoff.status_code == 200 and ET.fromstring(handoff.text).find("Dial") is not None


async def test_broken_messages_are_skipped_and_the_call_goes_on(stack, caller_voice):
    valid_stream = "MZ" + "0" * 32  # the softphone's stream id is its own; these are for a stream nobody has
    big_audio = base64.b64encode(b"\xff" * 16_000).decode()  # 2 s in one message: not how Twilio sends audio
    stray = (
        '{"event": "media", "media": {"payl',  # truncated
        "[]",
        '{"event": "nonsense"}',
        json.dumps({"event": "media", "streamSid": valid_stream, "media": {"payload": "%%%not base64%%%"}}),
        json.dumps({"event": "media", "streamSid": valid_stream, "media": {"payload": big_audio}}),
        json.dumps({"event": "start", "start": {"streamSid": "MZx"}}),  # a second, broken start
        json.dumps({"event": "mark"}),
        "\u0000\ufffd" * 1000,
    )
    result = (await Softphone(stack, speed=2.0).call([spoken(caller_voice, QUESTION)], stray_messages=stray)).as_dict()
    assert result["turns"][0]["decision"] == "answer:opening_hours"
    assert (await _record(stack, result["call_sid"]))["malformed_messages"] == len(stray)


async def test_media_before_start_is_ignored_and_an_oversized_frame_closes_only_its_stream(stack, caller_voice):
    call_sid, stream_sid = "CA" + uuid.uuid4().hex, "MZ" + uuid.uuid4().hex
    parameters = _answer_webhook(stack, call_sid)
    early = [*_silence(stream_sid, 5), dtmf_message(7, stream_sid, "1")]  # before `start`: wrong order
    messages = [connected_message(), *early, _start(call_sid, stream_sid, parameters), *_silence(stream_sid, 50, 8)]
    code, sent = await _stream(stack, [*messages, "x" * 100_000], listen_s=3)
    assert code == 1009  # message too big: this stream is closed ...
    record = await _record(stack, call_sid)
    assert record["malformed_messages"] == len(early)
    assert record["ended_at"], "... and the call's record settled"
    await _still_serving(stack, caller_voice)  # ... and the line goes on


async def test_a_stream_that_goes_silent_without_stop_is_ended(stack):
    call_sid, stream_sid = "CA" + uuid.uuid4().hex, "MZ" + uuid.uuid4().hex
    parameters = _answer_webhook(stack, call_sid)
    idle = stack.gateway.stream_idle_timeout_s
    messages = [connected_message(), _start(call_sid, stream_sid, parameters), *_silence(stream_sid, 25)]
    code, _ = await _stream(stack, messages, listen_s=idle + 10)
    assert code is not None, "the gateway closed the stream"
    record = await _record(stack, call_sid)
    assert any(e["kind"] == "stream_went_silent" for e in record["events"]), record["events"]
    assert record["ended_at"]


# --- what callers do ------------------------------------------------------------------------------------------


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, 0.15, int(8000 * seconds))).astype(np.float32)


async def test_noise_only_call_is_not_understood_and_goes_to_a_person(stack):
    caller = [Say(_noise(4, 1)), Say(_noise(4, 2)), Say(_noise(4, 3)), Silence(prompts=3)]
    result = (await Softphone(stack, speed=2.0).call(caller)).as_dict()
    # Hiss is not a request: whatever the recogniser made of it, nothing is answered as a topic, and the caller
    # ends with a person (not understood, or no input), never in a loop or silence.
    heard = [(t["transcript"], t["asr_confidence"], t["intent"], t["decision"]) for t in result["turns"]]
    assert not any(t["decision"].startswith("answer:") for t in result["turns"] if t.get("decision")), heard
    assert result["outcome"] == "routed:general", (result["outcome"], heard)
    assert not result["handoff"]["fault"]


async def test_ten_minute_monologue_is_cut_into_turns_and_the_call_goes_on(stack, caller_voice):
    # A story told without a pause, round and round. Not one sentence over and over: text that repetitive compresses
    # so well that Whisper takes it for a loop and samples each piece again (7x the CPU; a cost measured and left as
    # it is, README "Faults, hostile input, load"): on a 2-core machine without AVX-512 beside the rest of the suite,
    # the first turn was not decided when such a caller hung up (CI, 2026-12-06).
    story = [
        "I have been waiting for my money for weeks and nobody tells me anything and",
        "my landlord wants the rent on Friday and the bank says nothing came in and",
        "I sent the certificate from my doctor in October and then I called again and",
        "the lady on the phone said it was being processed and that was a month ago and",
        "now my daughter needs new shoes for school and I cannot buy them and",
    ]
    told = np.concatenate([spoken(caller_voice, sentence) for sentence in story])
    monologue = np.tile(told, int(np.ceil(600 * 8000 / len(told))))[: 600 * 8000]
    # 10x real time: at 20x, on a 2-core machine without AVX-512, the ten minutes were over and the call ended with no
    # turn decided yet (seen 2026-12-04, once in CI and once alone). The caller waits up to 90 s for a reply.
    result = (await Softphone(stack, speed=10.0, reply_timeout_s=90).call([Say(monologue)])).as_dict()
    record = await _record(stack, result["call_sid"])
    turns = [t for t in record["turns"] if t["input"] == "speech"]
    assert turns, "the monologue was heard"
    longest_s = max(t["speech_end_ms"] - t["speech_started_ms"] for t in turns) / 1000
    # A turn longer than the longest utterance is decided whole, up to the longest turn.
    assert longest_s <= stack.vad.max_turn_s + 0.5, "each turn is cut at the longest turn"
    assert result["outcome"] and result["outcome"] != "failed", result["outcome"]
    assert not (result["handoff"] or {}).get("fault")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{stack.gateway_url}/healthz")).json()["status"] == "ok"


async def test_keypad_flood_is_bounded_and_the_call_goes_on(stack, caller_voice):
    flood = Press("123456789*#" * 200)  # 2,200 keys, one per 20 ms tick (no 0: that would ask for a person)
    # After the flood the caller waits until the keys still waiting are answered (the assistant goes quiet), then
    # asks, and stays on the line for two more things said: on a loaded machine the assistant's quiet between two
    # key answers was long enough for the question to come before the last of them, and a caller who hung up after
    # that answer never heard the one to the question (seen in CI, and here with two busy processes beside it).
    answered = Silence(prompts=1, quiet_s=4.0)
    script = [flood, answered, spoken(caller_voice, QUESTION), Silence(prompts=2)]
    result = (await Softphone(stack, speed=8.0).call(script)).as_dict()
    record = await _record(stack, result["call_sid"])
    keys = [t for t in record["turns"] if t["input"] == "keypad"]
    assert 0 < len(keys) < 50, "keys beyond a few waiting are dropped, not all made turns"
    dropped = [e for e in record["events"] if e["kind"] == "key_dropped"]
    assert dropped and sum(e["count"] for e in dropped) + len(keys) <= 2200
    assert len(record["events"]) < 300, "a burst of dropped keys is one event, not one per key"
    spoken_turns = [t for t in record["turns"] if t["input"] == "speech"]
    assert spoken_turns and spoken_turns[-1]["decision"] == "answer:opening_hours", "and the caller is still served"


def test_helpline_ask_takes_unicode_and_refuses_a_document(stack):
    env = settings_environment(stack) | {"PATH": "/usr/bin:/bin"}
    for text in ("Wann ist die Öffnungszeit? 🙂 ‮", "opening\u200bhours?", "'; DROP TABLE calls; --"):
        done = subprocess.run([sys.executable, "-m", "helpline.cli", "ask", text, "--json"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["decision"]
    long_text = "ä" * (MAX_ASK_CHARS + 1)
    done = subprocess.run([sys.executable, "-m", "helpline.cli", "ask", long_text], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "at most" in done.stderr


# --- the web pages ----------------------------------------------------------------------------------------------

HOSTILE = [
    "../../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "' OR '1'='1",
    "1; DROP TABLE calls; --",
    '"><script>alert(1)</script>',
    "%00",
    "\u202e\u0000",
    "9" * 400,
    "-1",
    "2026-02-30",
]


def _logged_in(stack, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.gateway_url, timeout=30)
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    return client


def test_every_dashboard_route_and_parameter_withstands_traversal_and_injection(stack):
    add_user(stack, "admin.hostile", "admin", "hostile input passphrase")
    routes = {
        "/dashboard": ["start", "end"],
        "/dashboard/trends": ["start", "end", "unit"],
        "/dashboard/answers": ["start", "end"],
        "/dashboard/live": [],
        "/dashboard/drivers": ["start", "end"],
        "/dashboard/calls": ["start", "end", "page", "q", "outcome", "queue"],
        "/dashboard/calls.csv": ["start", "end", "q", "outcome", "queue"],
        "/dashboard/review": ["start", "end"],
        "/agent/calls": [],
        "/login": ["next"],
    }
    client = _logged_in(stack, "admin.hostile", "hostile input passphrase")
    try:
        for value in HOSTILE:
            for path, params in routes.items():
                for name in params:
                    response = client.get(path, params={name: value})
                    assert response.status_code in (200, 303, 400, 422), (path, name, value, response.status_code)
                    assert "<script>alert(1)</script>" not in response.text, (path, name)
                    assert "root:x:0" not in response.text
            for path in ("/dashboard/queues/{}", "/dashboard/calls/{}", "/agent/calls/{}"):
                response = client.get(path.format(quote(value, safe="")))
                assert response.status_code in (400, 404, 422), (path, value, response.status_code)
                assert "<script>alert(1)</script>" not in response.text and "root:x:0" not in response.text
        # The one form that writes: with a bad CSRF token, nothing is written whatever the fields say.
        fields = {"call_sid": HOSTILE[0], "turn": "1", "intent": HOSTILE[4], "csrf_token": "x"}
        response = client.post("/dashboard/review/label", data=fields)
        assert response.status_code in (400, 403, 422)
        # Logged in or not, the gateway still answers its health check.
        assert client.get("/healthz").json()["status"] == "ok"
    finally:
        client.close()


def test_login_brute_force_is_locked_out_per_account_and_rate_limited_per_address(stack):
    add_user(stack, "agent.brute", "agent", "the right passphrase")
    # A gateway of its own: the address it ends up refusing (loopback) is every other test's too.
    with extra_gateway(stack, "brute") as gateway, httpx.Client(base_url=gateway.gateway_url, timeout=30) as client:
        form = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)

        def attempt(username: str, password: str) -> httpx.Response:
            return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})

        statuses = [attempt("agent.brute", f"guess number {i}").status_code for i in range(6)]
        assert statuses == [401] * 6
        locked = attempt("agent.brute", "the right passphrase")  # the account is locked: even the right one fails
        assert locked.status_code == 401 and "locked" in locked.text.lower()
        # Guessing across many accounts from one address: refused (429) before any password is checked.
        statuses = [attempt(f"user{i}", "password guess").status_code for i in range(25)]
        assert 429 in statuses
        refused = attempt("anyone", "anything")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
