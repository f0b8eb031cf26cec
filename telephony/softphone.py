"""A softphone that plays Twilio: it calls the voice webhook (signed), opens the media stream the TwiML names,
plays recorded caller turns as 20 ms mu-law frames in real time (or ``speed`` times faster), plays back what the
assistant sends (echoing marks when their audio has "played", honouring clear), and reports each turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets
from twilio.request_validator import RequestValidator

from foundation.settings import Settings
from telephony.line import voice_webhook_url
from telephony.softphone_report import SoftphoneResult, merge_turns
from telephony.transport import ends_prompt, is_holding_mark
from telephony.twilio_media import (
    Outbound,
    connected_message,
    dtmf_message,
    inbound_media_message,
    mark_echo_message,
    parse_outbound,
    start_message,
    stop_message,
)
from voice.codecs import (
    FRAME_MS,
    TELEPHONE_FRAME_BYTES,
    TELEPHONE_RATE,
    float_to_pcm16,
    frames,
    pcm16_to_float,
    ulaw_decode,
    ulaw_encode,
)

SILENCE_FRAME = b"\xff" * TELEPHONE_FRAME_BYTES
FRAME_SAMPLES = TELEPHONE_RATE * FRAME_MS // 1000
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
        n = FRAME_SAMPLES
        energies = [float(np.sqrt(np.mean(audio[i * n : (i + 1) * n] ** 2) + 1e-12)) for i in range(len(chunks))]
        threshold = max(energies) * 10 ** (-30 / 20)
        voiced = [i for i, e in enumerate(energies) if e >= threshold]
        return cls(frames=chunks, last_voiced=voiced[-1] if voiced else len(chunks) - 1)


@dataclass(frozen=True)
class Say:
    """The caller says this (float32 mono, 8 kHz): after the assistant's reply, or over it after ``barge_in_after_s``
    seconds of the assistant's speech."""

    audio: np.ndarray
    barge_in_after_s: float | None = None


@dataclass(frozen=True)
class Press:
    """The caller presses these keys (DTMF), after the assistant's reply or over it."""

    keys: str
    barge_in_after_s: float | None = None


@dataclass(frozen=True)
class Silence:
    """The caller says nothing while the assistant says ``prompts`` more things (no-input handling), and then
    until the assistant has been quiet for ``quiet_s`` (it has worked through everything the caller gave it)."""

    prompts: int = 1
    quiet_s: float = 0.0


CallerAction = Say | Press | Silence


@dataclass
class _Playback:
    """The Twilio side's outbound buffer: audio frames and marks in the order received."""

    items: list[bytes | str] = field(default_factory=list)
    received_frames: list[float] = field(default_factory=list)  # wall time of each media frame received
    holding_frames: list[float] = field(default_factory=list)  # ... of the holding phrase's ("One moment, please.")
    since_mark: int = 0  # received frames before the latest mark
    last_activity: float = 0.0
    marks_echoed: list[tuple[str, float]] = field(default_factory=list)
    clears: int = 0  # clear messages received (the assistant stopped its own playback)
    cleared_marks: set[str] = field(default_factory=set)  # returned by a clear: their audio never played


class Softphone:
    def __init__(
        self,
        settings: Settings,
        speed: float = 1.0,
        caller_number: str = "+46701234567",
        quiet_before_speaking_s: float = 0.4,
        reply_timeout_s: float = 20.0,
        line_noise: np.ndarray | None = None,
    ):
        """``line_noise`` (float32, 8 kHz, looped) is under everything the caller sends, their speech and their
        silence, as on a line from a noisy place; None: a clean digital line. ``reply_timeout_s``: how long the caller
        waits for a reply before going on (or hanging up), in seconds of the caller's own time whatever ``speed``: the
        line plays faster, but the gateway still thinks in real time (at 2x a 20 s wait counted in line time gave up
        after 10 s, and callers on a busy machine hung up on a turn that was still being recognised)."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if line_noise is not None and len(line_noise) < FRAME_SAMPLES:
            raise ValueError("line noise must be at least one 20 ms frame long")
        self._line_noise = line_noise
        self._settings = settings
        self._speed = speed
        self._caller_number = caller_number
        self._quiet_ticks = int(quiet_before_speaking_s * 1000 / FRAME_MS)
        self._reply_timeout_ticks = int(reply_timeout_s * 1000 / FRAME_MS * speed)  # ticks last 20 ms / speed
        self._validator = RequestValidator(settings.twilio_auth_token)

    def _under_noise(self, payload: bytes, tick: int) -> bytes:
        """The frame the caller sends with the line's noise under it (the ``tick``-th frame of the looped noise)."""
        assert self._line_noise is not None
        start = tick * FRAME_SAMPLES % (len(self._line_noise) - FRAME_SAMPLES + 1)
        mixed = pcm16_to_float(ulaw_decode(payload)) + self._line_noise[start : start + FRAME_SAMPLES]
        return ulaw_encode(float_to_pcm16(mixed))

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
        self,
        caller_turns: Sequence[np.ndarray | CallerAction],
        stray_messages: tuple[str | bytes, ...] = (),
        call_sid: str | None = None,
    ) -> SoftphoneResult:
        """Place one call: greeting, then each caller action (audio alone means ``Say``) in turn.

        ``stray_messages`` are sent raw right after ``start``: a line-noise test of the gateway's robustness.
        ``call_sid`` fixes the call's id (default: a new one), so the call can be watched while it is in progress.
        """
        call_sid = call_sid or "CA" + uuid.uuid4().hex
        stream_sid = "MZ" + uuid.uuid4().hex
        stream_url, parameters = await self._dial(call_sid)
        signature = self._validator.compute_signature(stream_url, {})
        local_ws = self._local(stream_url.replace("wss://", "https://").replace("ws://", "http://"))
        local_ws = local_ws.replace("https://", "wss://").replace("http://", "ws://")
        actions = [Say(a) if isinstance(a, np.ndarray) else a for a in caller_turns]
        try:
            websocket = await websockets.connect(local_ws, additional_headers={"X-Twilio-Signature": signature})
        except websockets.InvalidStatus as e:
            raise SoftphoneError(f"media stream refused: HTTP {e.response.status_code}") from e
        except (OSError, websockets.InvalidHandshake) as e:
            raise SoftphoneError(f"cannot open the media stream {local_ws}: {e!r}") from e
        try:
            async with websocket:
                hung_up_by, sent_at = await self._converse(
                    websocket, stream_sid, call_sid, parameters, actions, stray_messages
                )
        except websockets.ConnectionClosedError as e:  # no closing handshake: the gateway went away mid-call
            raise SoftphoneError(f"the media stream broke off mid-call: {e}") from e
        record = await self._fetch_record(call_sid)
        return SoftphoneResult(
            call_sid=call_sid,
            record=record,
            turns=merge_turns(record, sent_at, self._playback.received_frames, self._playback.holding_frames),
            hung_up_by=hung_up_by,
            speed=self._speed,
            clears_received=self._playback.clears,
        )

    async def _converse(
        self,
        ws: websockets.ClientConnection,
        stream_sid: str,
        call_sid: str,
        parameters: dict[str, str],
        actions: list[CallerAction],
        stray_messages: tuple[str | bytes, ...],
    ) -> tuple[str, dict[int, float]]:
        """Plays Twilio's side in 20 ms ticks: one frame of the assistant's audio "played" and one caller frame sent
        per tick. Each caller action waits for its cue: the end of an assistant prompt (its final mark played, then a
        short quiet), or, to barge in, a given length of assistant speech since the caller's last action."""
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
        index = -1  # the action under way; -1: none yet
        active: CallerAction | None = None
        speech: CallerAudio | None = None
        position = 0  # frame within the caller's speech, or key within the key presses
        silence_until = 0  # prompts finished that end a Silence
        prompts_finished = 0  # prompts the assistant finished (final marks played)
        prompts_at_action = 0  # ... when the caller's last Say/Press ended
        played_since_action = 0  # assistant frames played since then
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
                    prompts_finished += ends_prompt(name) and name not in playback.cleared_marks
                if playback.items:
                    playback.items.pop(0)
                    played_since_action += 1
                    quiet = 0
                    waited = 0  # the assistant is talking: the caller waits however long the reply is
                else:
                    quiet += 1
                timestamp = tick * FRAME_MS
                payload = SILENCE_FRAME
                if active is None:
                    waited += 1
                    upcoming = actions[index + 1] if index + 1 < len(actions) else None
                    barge_in_after = getattr(upcoming, "barge_in_after_s", None)
                    if barge_in_after is not None:
                        cue = played_since_action * FRAME_MS >= barge_in_after * 1000
                    else:
                        cue = prompts_finished > prompts_at_action and quiet >= self._quiet_ticks
                    if cue or waited >= self._reply_timeout_ticks:
                        index += 1
                        if upcoming is None:
                            break
                        active, position, waited = upcoming, 0, 0
                        if isinstance(upcoming, Say):
                            speech = CallerAudio.from_audio(upcoming.audio)
                        elif isinstance(upcoming, Silence):
                            silence_until = prompts_finished + upcoming.prompts
                if isinstance(active, Say):
                    assert speech is not None
                    payload = speech.frames[position]
                    sent_at[timestamp] = time.perf_counter()
                    position += 1
                    if position == len(speech.frames):
                        active, prompts_at_action, played_since_action = None, prompts_finished, 0
                elif isinstance(active, Press):
                    seq += 1
                    await ws.send(dtmf_message(seq, stream_sid, active.keys[position]))
                    sent_at[timestamp] = time.perf_counter()
                    position += 1
                    if position == len(active.keys):
                        active, prompts_at_action, played_since_action = None, prompts_finished, 0
                elif isinstance(active, Silence):
                    waited += 1
                    heard = prompts_finished >= silence_until and quiet * FRAME_MS >= active.quiet_s * 1000
                    if heard or waited >= self._reply_timeout_ticks * active.prompts:
                        active, waited = None, 0
                if self._line_noise is not None:
                    payload = self._under_noise(payload, tick)
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
                if is_holding_mark(message.name):  # the frames since the last mark were the holding phrase
                    playback.holding_frames += playback.received_frames[playback.since_mark :]
                    del playback.received_frames[playback.since_mark :]
                playback.since_mark = len(playback.received_frames)
            elif message.event == "clear":
                playback.clears += 1
                # Twilio drops the buffered audio and sends back the marks it held.
                playback.items = [item for item in playback.items if isinstance(item, str)]
                playback.cleared_marks.update(item for item in playback.items if isinstance(item, str))

    async def _fetch_record(self, call_sid: str) -> dict[str, Any]:
        """The gateway's record of the call (transcripts, intents, decisions); waits until the call is settled."""
        url = f"{self._settings.gateway_url}/api/calls/{call_sid}"
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(100):
                try:
                    response = await http.get(url)
                except httpx.HTTPError as e:  # the gateway went away after the stream closed
                    raise SoftphoneError(f"the gateway did not answer for the record of call {call_sid}: {e!r}") from e
                record = response.json() if response.status_code == 200 else {}
                # Ended, and a routed call's packet built and the call moved on to its queue.
                if record.get("ended_at") and (record.get("handoff") is None or record.get("delivery")):
                    return record  # type: ignore[no-any-return]
                await asyncio.sleep(0.1)
        raise SoftphoneError(f"the gateway has no finished record of call {call_sid}")
