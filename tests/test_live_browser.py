"""The live view in a real browser (Debian's chromium, driven by Playwright): a call placed while the page is open
appears, raises the long-call alert and leaves again, all without a reload; without script the page is whole."""

import asyncio
import shutil
import uuid

import pytest

from telephony.softphone import Silence, Softphone
from tests.conftest import add_user, extra_gateway, spoken
from tests.test_dashboard_browser import CHROMIUM, signed_in_page
from tests.test_hostile_input import _logged_in

pytestmark = [pytest.mark.rasa, pytest.mark.models]


async def test_the_live_view_follows_a_call_without_a_reload(stack, caller_voice):  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed: ./setup.sh installs Debian's chromium for the browser tests")
    await asyncio.to_thread(add_user, stack, "lena.live", "supervisor", "a live view passphrase")
    shots = stack.data_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    # A gateway whose live view calls 3 seconds in the assistant long, so the alert shows within one call.
    with extra_gateway(stack, "live", analytics={"long_call_s": 3.0}) as gateway:
        base = gateway.gateway_url
        async with async_playwright() as p:
            browser, page = await signed_in_page(p, base, "lena.live", "a live view passphrase", "/dashboard/live", 900)
            await page.evaluate("window.loadedOnce = 'yes'")  # gone if the page were loaded again
            await page.wait_for_selector("text=Updating by itself", timeout=20_000)

            sid = "CA" + uuid.uuid4().hex
            said = spoken(caller_voice, "What are your opening hours?")
            # The caller asks, then says nothing while the assistant asks again: a call of several seconds.
            call = asyncio.create_task(Softphone(gateway).call([said, Silence(prompts=1)], call_sid=sid))
            row = page.locator(f"tr[data-call='{sid}']")
            await row.wait_for(timeout=30_000)
            await page.locator(f"tr.alert-long a[href='/dashboard/calls/{sid}']").wait_for(timeout=30_000)
            await row.filter(has_text="opening_hours").wait_for(timeout=30_000)  # the topic, once answered
            assert "with the assistant" in await row.inner_text()
            await page.screenshot(path=str(shots / "dashboard-live.png"), full_page=True)
            result = await call
            assert result.as_dict()["outcome"] == "answered:opening_hours", result
            await row.wait_for(state="detached", timeout=30_000)  # ended: no longer in progress
            assert await page.evaluate("window.loadedOnce") == "yes", "the page was reloaded"
            await browser.close()

        # Without script, the page is whole as loaded; the stream sends the same panel.
        client = _logged_in(gateway, "lena.live", "a live view passphrase")
        try:
            html = client.get("/dashboard/live").text
            assert "Calls in progress" in html and "Waiting for an expert" in html and 'href="/dashboard/live"' in html
            with client.stream("GET", "/dashboard/live/events") as events:
                lines = []
                for line in events.iter_lines():
                    lines.append(line)
                    if line.startswith("data:") and "</div>" in line and any("live-panel" in x for x in lines):
                        break
            assert "event: panel" in lines and any("Calls in progress" in x for x in lines)
        finally:
            client.close()
