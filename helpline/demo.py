"""The main job: start everything, place one call from a synthesised caller, print every turn, stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from foundation.settings import Settings
from helpline.services import ServiceError, Stack

if TYPE_CHECKING:
    from telephony.twilio_standin import TwilioStandIn

# A caller with one question the assistant answers and one matter for an expert.
DEMO_CALLER_TURNS = (
    "Hi. When will my child allowance be paid this month?",
    "Okay. I also want to appeal the decision on my sickness benefit.",
)


def synthesise_caller(texts: tuple[str, ...], out_dir: Path) -> list[Path]:
    """Caller turns spoken by Piper, a little slower than the assistant, saved as WAV files to replay."""
    from voice.caller_voices import piper_caller

    voice = piper_caller()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts, 1):
        speech = voice.synthesize(text)
        path = out_dir / f"caller-turn-{i}.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(speech.sample_rate)
            wav.writeframes(np.asarray(speech.pcm, dtype=np.int16).tobytes())
        paths.append(path)
    return paths


DEMO_ACCOUNT_SID = "AC" + "de30" * 8


@contextlib.contextmanager
def with_twilio_standin(settings: Settings) -> Iterator[tuple[Settings, TwilioStandIn]]:
    """A Twilio REST stand-in on loopback, and settings whose gateway moves calls through it (there is no Twilio
    account here): routed calls end up in their queue as they would on a real number."""
    from telephony.twilio_standin import TwilioStandIn

    with TwilioStandIn(DEMO_ACCOUNT_SID, settings.twilio_auth_token) as twilio:
        twilio_settings = settings.twilio.model_copy(
            update={"account_sid": DEMO_ACCOUNT_SID, "api_base_url": twilio.url}
        )
        yield settings.model_copy(update={"twilio": twilio_settings}), twilio


def run_demo(settings: Settings, speed: float = 1.0, as_json: bool = False) -> int:
    """The call goes through the real stack; Twilio's REST API is the loopback stand-in, so the routed turn ends
    with the call redirected into the appeals queue with its packet, as it would on a real number."""
    from telephony.softphone import Softphone
    from telephony.softphone_report import format_turns
    from voice.codecs import TELEPHONE_RATE, read_audio

    paths = synthesise_caller(DEMO_CALLER_TURNS, settings.data_dir / "demo")
    print(f"demo caller turns: {', '.join(str(p) for p in paths)}", flush=True)
    try:
        with with_twilio_standin(settings) as (settings, twilio), Stack(settings):
            audio = [read_audio(p, TELEPHONE_RATE) for p in paths]
            result = asyncio.run(Softphone(settings, speed=speed).call(audio)).as_dict()
            redirect = twilio.wait_for_twiml(result["call_sid"]) if result.get("packet") else None
    except (ServiceError, TimeoutError) as e:
        print(f"helpline: demo failed: {e}")
        return 1
    if as_json:
        print(json.dumps(result | {"twiml": redirect.fetched_twiml if redirect else None}, ensure_ascii=False))
    else:
        print(format_turns(result), flush=True)
        if result.get("packet"):
            packet = result["packet"]
            print(f"\nhanded to queue {packet['queue']}: {packet['summary']}")
            print(f"flags: {', '.join(k for k, v in packet['flags'].items() if v) or 'none'}")
        if redirect is not None:
            print(f"Twilio (stand-in) was asked to redirect the call and fetched this TwiML:\n{redirect.fetched_twiml}")
    print(f"replay it yourself: `helpline serve`, then `helpline call {' '.join(str(p) for p in paths)}`")
    return 0
