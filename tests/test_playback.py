"""Playback on its own: a reply taken back while its first frame is on its way to Twilio."""

import asyncio
from dataclasses import dataclass, field

from fakes import FRAME_BYTES, FakeTransport

from telephony.playback import Playback, Prompt
from telephony.tasks import CallTasks


@dataclass
class SlowTransport(FakeTransport):
    """Twilio's side, with the first frame of audio held on its way until ``deliver`` is set."""

    on_the_way: asyncio.Event = field(default_factory=asyncio.Event)
    deliver: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_audio(self, mulaw: bytes) -> None:
        self.on_the_way.set()
        await self.deliver.wait()
        await super().send_audio(mulaw)


class Voice:
    def telephone(self, sentence: str) -> bytes:
        return b"\x10" * FRAME_BYTES * 5  # 100 ms of audio


async def test_a_reply_withdrawn_while_its_first_frame_is_on_the_way_is_cleared_not_played():
    transport, tasks, events = SlowTransport(), CallTasks("CA-playback"), []
    playback = Playback("CA-playback", transport, tasks, lambda: 1000, lambda kind, **facts: events.append(kind))
    prompt = Prompt("answer", ["Your payment comes on the 25th."], interruptible=True)
    speaking = asyncio.create_task(playback.speak(prompt, Voice()))
    await transport.on_the_way.wait()
    playback.withdraw(prompt)  # the caller went on with their turn
    transport.deliver.set()
    await asyncio.wait_for(speaking, 5)
    await tasks.close()
    assert prompt.interrupted is not None and prompt.interrupted["by"] == "went_on"
    assert transport.clears == 1  # what reached Twilio is dropped from its buffer
    assert not transport.playing
    assert playback.frames_sent == 1  # nothing after the frame already on its way
