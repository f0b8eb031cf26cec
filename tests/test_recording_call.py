"""A recorded call through the real gateway (RECORDING__ENABLED on a gateway of its own): the greeting says so, the
store keeps both sides, the caller's number cannot be heard in it, and a supervisor plays it on the call's page in
a real browser (Debian's chromium, Playwright), each listen audited; other roles cannot."""

import asyncio
import io
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from analytics.audit import access_trail
from analytics.store import CallStore
from telephony.softphone import Softphone
from tests.conftest import add_user, extra_gateway, spoken
from tests.test_dashboard_browser import CHROMIUM, signed_in_page
from tests.test_handoff_call import log_in
from voice.codecs import TELEPHONE_RATE

pytestmark = [pytest.mark.rasa, pytest.mark.models]

SAID = "My personal number is 19811218-9876. When is my parental benefit paid?"


def heard_in(asr, audio: np.ndarray) -> str:  # type: ignore[no-untyped-def]
    """What the recogniser makes of one channel of the recording (int16, 8 kHz)."""
    return asr.transcribe(audio.astype(np.float32) / 32768.0, TELEPHONE_RATE).text


async def stored_recording(store: CallStore, call_sid: str) -> bytes:
    """The recording once the gateway's writer has stored it (it does so after the call ends)."""
    for _ in range(200):
        wav = await asyncio.to_thread(store.recording, call_sid)
        if wav is not None:
            return wav
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_sid}: no recording was stored")


async def test_a_recorded_call_keeps_both_sides_but_not_the_callers_number(stack, caller_voice, asr_model, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed: ./setup.sh installs Debian's chromium for the browser tests")
    from playwright.async_api import async_playwright

    with extra_gateway(stack, "recording", recording={"enabled": True}) as gateway:
        result = (
            await Softphone(gateway, speed=2.0).call(
                [spoken(caller_voice, SAID), spoken(caller_voice, "No thanks, that was all.")]
            )
        ).as_dict()
        sid = result["call_sid"]
        assert "automated assistant" in result["greeting"] and "call is recorded" in result["greeting"]
        first = next(t for t in result["turns"] if t["transcript"])
        # The line heard a number (masked, or at least four digits the recording must not keep).
        assert "[personnummer]" in first["transcript"] or len(re.findall(r"\d", first["transcript"])) >= 4, first

        store = CallStore.open(gateway.database)
        try:
            wav = await stored_recording(store, sid)
            facts = await asyncio.to_thread(store.recording_facts, sid)
        finally:
            store.close()
        audio, rate = sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)
        assert rate == TELEPHONE_RATE and audio.shape[1] == 2
        assert facts is not None and facts[1] >= 1  # a passage of the caller's was silenced
        caller, assistant = heard_in(asr_model, audio[:, 0]), heard_in(asr_model, audio[:, 1])
        assert "parental" in caller.lower(), caller  # the caller's question is there ...
        assert not re.search(r"\d", caller), caller  # ... their number is not
        assert "automated assistant" in assistant.lower() and "recorded" in assistant.lower(), assistant

        await asyncio.to_thread(add_user, gateway, "rita.supervisor", "supervisor", "supervisor passphrase")
        await asyncio.to_thread(add_user, gateway, "tom.trainer", "trainer", "a trainer passphrase")
        with log_in(gateway, "tom.trainer", "a trainer passphrase") as trainer:
            assert trainer.get(f"/dashboard/calls/{sid}/recording.wav").status_code == 403
            page = trainer.get(f"/dashboard/calls/{sid}").text
            assert "only supervisors may listen" in page and "<audio" not in page
        with log_in(gateway, "rita.supervisor", "supervisor passphrase") as supervisor:
            served = supervisor.get(f"/dashboard/calls/{sid}/recording.wav")
            assert served.status_code == 200 and served.headers["content-type"] == "audio/wav"
            assert served.headers["cache-control"] == "no-store"
            pcm, _ = sf.read(io.BytesIO(served.content), dtype="int16", always_2d=True)
            assert np.array_equal(pcm, audio)  # the same samples, as 16-bit PCM
            part = supervisor.get(f"/dashboard/calls/{sid}/recording.wav", headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and len(part.content) == 100
            assert part.headers["content-range"] == f"bytes 0-99/{len(served.content)}"
            missing = supervisor.get("/dashboard/calls/CA0000/recording.wav")
            assert missing.status_code == 404

        shots = stack.data_dir / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as p:
            browser, page = await signed_in_page(
                p, gateway.gateway_url, "rita.supervisor", "supervisor passphrase", f"/dashboard/calls/{sid}"
            )
            player = page.locator("#recording audio")
            assert await player.count() == 1
            duration = await player.evaluate(
                """audio => new Promise((done, failed) => {
                    audio.onloadedmetadata = () => done(audio.duration);
                    audio.onerror = () => failed(String(audio.error && audio.error.message));
                    audio.load();
                })"""
            )
            assert abs(duration - facts[0]) < 0.1, (duration, facts)
            assert "passage" in await page.inner_text("#recording")
            await page.screenshot(path=str(shots / "dashboard-call-recording.png"), full_page=True)
            await browser.close()

    store = CallStore.open(gateway.database)
    try:
        _, trail = await asyncio.to_thread(access_trail, store, "rita.supervisor", sid)
    finally:
        store.close()
    assert sum(1 for e in trail if e.action == "recording") >= 3  # the download, the range, the browser's player
