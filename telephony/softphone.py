"""A softphone that plays Twilio: it calls the voice webhook (signed), opens the media stream the TwiML names,
plays recorded caller turns as 20 ms mu-law frames in real time (or ``speed`` times faster), plays back what the
assistant sends (echoing marks when their audio has "played", honouring clear), and reports each turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets
from twilio.request_validator import RequestValidator

from helpline.settings import Settings
from telephony.gateway import voice_webhook_url
from telephony.twilio_media import (
    Outbound,
    connected_message,
    inbound_media_message,
    mark_echo_message,
    parse_outbound,
    start_message,
    stop_message,
)
from voice.codecs import FRAME_MS, TELEPHONE_FRAME_BYTES, TELEPHONE_RATE, float_to_pcm16, frames, ulaw_encode

SILENCE_FRAME = b"\xff" * TELEPHONE_FRAME_BYTES
ACCOUNT_SID = "AC" + "0" * 32


class SoftphoneError(RuntimeError):
    """The gateway refused or broke the call."""


@dataclass(frozen=True)
class CallerAudio:
    """One caller turn as telephone frames, with the index of its last voiced frame."""

    frames: list[bytes]
    last_voiced: int

    @classmethod
    def from_audio(cls, audio: np.ndarray) -> CallerAudio:
        """float32 mono at 8 kHz -> frames. The last voiced frame is the last one within 30 dB of the peak."""
        pcm = float_to_pcm16(audio)
        chunks = frames(ulaw_encode(pcm))
        n = TELEPHONE_RATE * FRAME_MS // 1000
        energies = [float(np.sqrt(np.mean(audio[i * n : (i + 1) * n] ** 2) + 1e-12)) for i in range(len(chunks))]
        threshold = max(energies) * 10 ** (-30 / 20)
        voiced = [i for i, e in enumerate(energies) if e >= threshold]
        return cls(frames=chunks, last_voiced=voiced[-1] if voiced else len(chunks) - 1)


@dataclass
class _Playback:
    """The Twilio side's outbound buffer: audio frames and marks in the order received."""

    items: list[bytes | str] = field(default_factory=list)
    received_frames: list[float] = field(default_factory=list)  # wall time of each media frame received
    last_activity: float = 0.0
    marks_echoed: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class SoftphoneResult:
    call_sid: str
    record: dict[str, Any]
    turns: list[dict[str, Any]]
    hung_up_by: str
    speed: float

    def as_dict(self) -> dict[str, Any]:
        deciding: dict[str, Any] = next(
            (t for t in reversed(self.turns) if t.get("decision") not in ("", "none", None)), {}
        )
        return {
            "call_sid": self.call_sid,
            "outcome": self.record.get("outcome", ""),
            "intent": deciding.get("intent", ""),
            "confidence": deciding.get("confidence", 0.0),
            "decision": deciding.get("decision", ""),
            "reply": deciding.get("reply", ""),
            "greeting": (self.record.get("said") or [""])[0],
            "handoff": self.record.get("handoff"),
            "hung_up_by": self.hung_up_by,
            "speed": self.speed,
            "turns": self.turns,
        }


class Softphone:
    def __init__(
        self,
        settings: Settings,
        speed: float = 1.0,
        caller_number: str = "+46701234567",
        quiet_before_speaking_s: float = 0.4,
        reply_timeout_s: float = 20.0,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._settings = settings
        self._speed = speed
        self._caller_number = caller_number
        self._quiet_ticks = int(quiet_before_speaking_s * 1000 / FRAME_MS)
        self._reply_timeout_ticks = int(reply_timeout_s * 1000 / FRAME_MS)
        self._validator = RequestValidator(settings.twilio_auth_token)

    async def _dial(self, call_sid: str) -> tuple[str, dict[str, str]]:
        """Twilio's incoming-call webhook: returns the media stream URL and parameters from the TwiML."""
        url = voice_webhook_url(self._settings)
        params = {
            "CallSid": call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self._caller_number,
            "To": "+46771524524",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        headers = {"X-Twilio-Signature": self._validator.compute_signature(url, params)}
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.post(self._local(url), data=params, headers=headers)
        except httpx.HTTPError as e:
            raise SoftphoneError(f"cannot reach the gateway at {self._local(url)}: {e!r}") from e
        if response.status_code != 200:
            raise SoftphoneError(f"voice webhook answered {response.status_code}: {response.text[:200]}")
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        if stream is None or not stream.get("url"):
            raise SoftphoneError(f"TwiML has no <Connect><Stream>: {response.text[:200]}")
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        return str(stream.get("url")), parameters

    def _local(self, public_url: str) -> str:
        """Twilio reaches the public URL; on this machine we reach the same path on the local gateway."""
        base = self._settings.public_base_url
        local = self._settings.gateway_url
        return public_url.replace(base, local, 1) if public_url.startswith(base) else public_url

    async def call(
        self, caller_turns: list[np.ndarray], stray_messages: tuple[str | bytes, ...] = ()
    ) -> SoftphoneResult:
        """Place one call: greeting, then each caller turn after the assistant's previous reply has played.

        ``stray_messages`` are sent raw right after ``start``: a line-noise test of the gateway's robustness.
        """
        call_sid = "CA" + uuid.uuid4().hex
        stream_sid = "MZ" + uuid.uuid4().hex
        stream_url, parameters = await self._dial(call_sid)
        signature = self._validator.compute_signature(stream_url, {})
        local_ws = self._local(stream_url.replace("wss://", "https://").replace("ws://", "http://"))
        local_ws = local_ws.replace("https://", "wss://").replace("http://", "ws://")
        turns_audio = [CallerAudio.from_audio(a) for a in caller_turns]
        try:
            websocket = await websockets.connect(local_ws, additional_headers={"X-Twilio-Signature": signature})
        except websockets.InvalidStatus as e:
            raise SoftphoneError(f"media stream refused: HTTP {e.response.status_code}") from e
        except (OSError, websockets.InvalidHandshake) as e:
            raise SoftphoneError(f"cannot open the media stream {local_ws}: {e!r}") from e
        async with websocket:
            hung_up_by, sent_at = await self._converse(
                websocket, stream_sid, call_sid, parameters, turns_audio, stray_messages
            )
        record = await self._fetch_record(call_sid)
        return SoftphoneResult(
            call_sid=call_sid,
            record=record,
            turns=self._merge_turns(record, sent_at, self._playback),
            hung_up_by=hung_up_by,
            speed=self._speed,
        )

    async def _converse(
        self,
        ws: websockets.ClientConnection,
        stream_sid: str,
        call_sid: str,
        parameters: dict[str, str],
        turns_audio: list[CallerAudio],
        stray_messages: tuple[str | bytes, ...],
    ) -> tuple[str, dict[int, float]]:
        seq = 1
        await ws.send(connected_message())
        await ws.send(start_message(seq, stream_sid, call_sid, ACCOUNT_SID, parameters))
        for message in stray_messages:
            await ws.send(message)
        playback = self._playback = _Playback()
        receiver = asyncio.create_task(self._receive(ws, playback))
        sent_at: dict[int, float] = {}  # stream timestamp (ms) -> wall time sent, for caller speech frames
        tick_s = FRAME_MS / 1000 / self._speed
        loop = asyncio.get_running_loop()
        t_start = loop.time()
        tick = 0
        turn_index = -1  # -1: waiting for the greeting
        position = 0  # frame within the current caller turn; None-like -1 when not speaking
        speaking = False
        marks_at_turn_end = 0
        quiet = 0
        waited = 0
        hung_up_by = "caller"
        try:
            while True:
                if receiver.done():
                    hung_up_by = "assistant"
                    break
                # Play one frame of the assistant's audio; echo marks that are now reached.
                while playback.items and isinstance(playback.items[0], str):
                    name = playback.items.pop(0)
                    assert isinstance(name, str)
                    seq += 1
                    await ws.send(mark_echo_message(seq, stream_sid, name))
                    playback.marks_echoed.append((name, time.perf_counter()))
                if playback.items:
                    playback.items.pop(0)
                    quiet = 0
                    waited = 0  # the assistant is talking: the caller waits however long the reply is
                else:
                    quiet += 1
                # The caller's side of the line.
                timestamp = tick * FRAME_MS
                if speaking:
                    current = turns_audio[turn_index]
                    payload = current.frames[position]
                    sent_at[timestamp] = time.perf_counter()
                    position += 1
                    if position == len(current.frames):
                        speaking = False
                        marks_at_turn_end = len(playback.marks_echoed)
                        waited = 0
                else:
                    payload = SILENCE_FRAME
                    waited += 1
                    replied = len(playback.marks_echoed) > marks_at_turn_end
                    if (replied and quiet >= self._quiet_ticks) or waited >= self._reply_timeout_ticks:
                        turn_index += 1
                        if turn_index >= len(turns_audio):
                            break
                        speaking, position = True, 0
                seq += 1
                await ws.send(inbound_media_message(seq, stream_sid, tick + 1, timestamp, payload))
                tick += 1
                delay = t_start + tick * tick_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if hung_up_by == "caller":
                seq += 1
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(stop_message(seq, stream_sid, call_sid, ACCOUNT_SID))
        except websockets.ConnectionClosed:
            hung_up_by = "assistant"
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        return hung_up_by, sent_at

    async def _receive(self, ws: websockets.ClientConnection, playback: _Playback) -> None:
        async for text in ws:
            message: Outbound = parse_outbound(text if isinstance(text, str) else text.decode())
            playback.last_activity = time.perf_counter()
            if message.event == "media":
                playback.received_frames.append(playback.last_activity)
                playback.items.extend([message.payload[i : i + 160] for i in range(0, len(message.payload), 160)])
            elif message.event == "mark":
                playback.items.append(message.name)
            elif message.event == "clear":
                # Twilio drops the buffered audio and sends back the marks it held.
                playback.items = [item for item in playback.items if isinstance(item, str)]

    async def _fetch_record(self, call_sid: str) -> dict[str, Any]:
        """The gateway's record of the call (transcripts, intents, decisions); waits until the call is closed."""
        url = f"{self._settings.gateway_url}/api/calls/{call_sid}"
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(100):
                response = await http.get(url)
                if response.status_code == 200 and response.json().get("ended_at"):
                    return response.json()  # type: ignore[no-any-return]
                await asyncio.sleep(0.1)
        raise SoftphoneError(f"the gateway has no finished record of call {call_sid}")

    @staticmethod
    def _merge_turns(record: dict[str, Any], sent_at: dict[int, float], playback: _Playback) -> list[dict[str, Any]]:
        turns = []
        for turn in record.get("turns", []):
            last_voiced_ts = turn["speech_end_ms"] - FRAME_MS
            speech_end_wall = sent_at.get(last_voiced_ts)
            first_reply = None
            if speech_end_wall is not None:
                first_reply = next((t for t in playback.received_frames if t > speech_end_wall), None)
            reply_frames = 0
            if first_reply is not None:
                later_speech = [w for ts, w in sent_at.items() if ts > turn["speech_end_ms"] and w > first_reply]
                until = min(later_speech) if later_speech else float("inf")
                reply_frames = sum(1 for t in playback.received_frames if first_reply <= t < until)
            turns.append(
                {
                    "transcript": turn["transcript"],
                    "asr_confidence": turn["asr_confidence"],
                    "intent": turn["intent"],
                    "confidence": turn["nlu_confidence"],
                    "entities": turn["entities"],
                    "decision": turn["decision"],
                    "reply": turn["reply"],
                    "error": turn["error"],
                    "latency_ms": None
                    if first_reply is None or speech_end_wall is None
                    else round((first_reply - speech_end_wall) * 1000, 1),
                    "reply_audio_s": round(reply_frames * FRAME_MS / 1000, 2),
                    "server": {k: round(turn[k], 1) for k in ("response_ms", "asr_ms", "nlu_ms", "tts_ms")},
                }
            )
        return turns


def format_turns(result: dict[str, Any]) -> str:
    """Human-readable call report for the terminal."""
    lines = [f"call {result['call_sid']}", f"  assistant: {result['greeting']}"]
    for i, t in enumerate(result["turns"], 1):
        latency = "-" if t["latency_ms"] is None else f"{t['latency_ms']:.0f} ms"
        lines += [
            f"turn {i}",
            f"  caller:    {t['transcript']!r}  (ASR confidence {t['asr_confidence']:.2f})",
            f"  intent:    {t['intent']} ({t['confidence']:.2f})  ->  {t['decision']}",
            f"  assistant: {t['reply']}",
            f"  latency:   {latency} end of speech -> first reply audio"
            f" (server: ASR {t['server']['asr_ms']:.0f} ms, NLU {t['server']['nlu_ms']:.0f} ms,"
            f" TTS {t['server']['tts_ms']:.0f} ms)",
        ]
    lines.append(f"outcome: {result['outcome']} (hung up by {result['hung_up_by']})")
    return "\n".join(lines)


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)
