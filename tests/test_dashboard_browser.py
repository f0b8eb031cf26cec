"""The supervisors' dashboard in a real browser (Debian's chromium, driven by Playwright): a real call, then the
overview, the call list with search, the call detail and the CSV export; screenshots are checked for their content."""

import asyncio
import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analytics.store import CallStore
from foundation.plain_words import local_time
from telephony.softphone import Softphone
from tests.conftest import add_user, spoken

pytestmark = [pytest.mark.rasa, pytest.mark.models]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the machine's closed network needs (background requests are refused here) and a root user needs.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
BAR_BLUE = (0x2B, 0x6C, 0xB0)  # the charts' bar colour (base.html)


def _started_at(settings, sid: str):  # type: ignore[no-untyped-def]
    store = CallStore.open(settings.database)
    try:
        return store.call(sid).started_at
    finally:
        store.close()


async def signed_in_page(p, base: str, username: str, password: str, path: str, height: int = 1000):  # type: ignore[no-untyped-def]
    """A chromium page logged in at ``base`` and on ``path`` (the login form sends it there)."""
    browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = await browser.new_page(viewport={"width": 1280, "height": height})
    await page.goto(f"{base}/login?next={path}")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    return browser, page


def bar_pixels(png: Path) -> int:
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(BAR_BLUE, dtype=np.int16)) <= 8).all(axis=-1).sum())


async def test_dashboard_shows_a_real_call_in_a_real_browser(stack, caller_voice, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed: ./setup.sh installs Debian's chromium for the browser tests")
    from playwright.async_api import async_playwright

    said = "How do I apply for housing allowance?"
    result = (
        await Softphone(stack, speed=2.0).call(
            [spoken(caller_voice, said), spoken(caller_voice, "No thanks, goodbye.")]
        )
    ).as_dict()
    assert result["outcome"] == "answered:apply_housing_allowance"
    sid = result["call_sid"]
    await asyncio.to_thread(add_user, stack, "sara.supervisor", "supervisor", "supervisor passphrase")
    await asyncio.to_thread(add_user, stack, "adam.agent", "agent", "an agent passphrase")
    await asyncio.to_thread(add_user, stack, "ada.admin", "admin", "an admin passphrase")

    shots = stack.data_dir / "screenshots"  # kept for a person to look at (var/ is not in git)
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        base = stack.gateway_url

        # Not logged in: the login form, then back to the page asked for.
        await page.goto(f"{base}/dashboard")
        assert page.url.startswith(f"{base}/login")
        await page.fill("#username", "sara.supervisor")
        await page.fill("#password", "supervisor passphrase")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/dashboard")

        tiles = await page.locator(".tile").all_inner_texts()
        calls_tile = next(t for t in tiles if t.endswith("calls"))
        assert int(calls_tile.split()[0]) >= 1
        assert any("answered without a person" in t for t in tiles)
        assert any("callers frustrated" in t for t in tiles)
        assert await page.locator("svg.bars").count() >= 3
        containment_chart = page.locator("section", has_text="Containment per topic")
        assert "apply_housing_allowance" in await containment_chart.inner_text()
        overview_png = shots / "dashboard-overview.png"
        await page.screenshot(path=str(overview_png), full_page=True)
        chart_png = tmp_path / "containment.png"
        await containment_chart.screenshot(path=str(chart_png))
        assert bar_pixels(chart_png) > 200, "the containment chart drew no bars"

        # The call list: search for the caller's words, open the call.
        await page.click("text=Calls")
        await page.fill("input[name=q]", "housing allowance")
        await page.select_option("select[name=outcome]", "answered")
        await page.click("button:has-text('Filter')")
        rows = page.locator("table tr", has_text="housing allowance")
        assert await rows.count() >= 1
        assert "(s)" not in await page.inner_text("main")  # "1 call", "3 calls"
        await page.screenshot(path=str(shots / "dashboard-calls.png"), full_page=True)
        async with page.expect_download() as download_info:
            await page.click("text=Export CSV")
        download = await download_info.value
        exported = list(csv.DictReader(io.StringIO(await asyncio.to_thread(Path(await download.path()).read_text))))
        assert any(r["call_id"] == sid and r["outcome"] == "answered:apply_housing_allowance" for r in exported)
        assert all("housing allowance" in r["first_words"].lower() for r in exported)

        await page.goto(f"{base}/dashboard/calls/{sid}")
        detail = await page.inner_text("main")
        assert "answer:apply_housing_allowance" in detail and "housing allowance" in detail.lower()
        # How the caller sounded: each turn's tone, and the call's mood (a calm question and a goodbye).
        assert "not frustrated" in await page.inner_text("#mood") and "neutral (" in detail
        # Times are the agency's (HELPLINE_TIME_ZONE, Europe/Stockholm by default), said as people say them.
        stored = await asyncio.to_thread(_started_at, stack, sid)
        assert local_time(stored, stack.zone, seconds=True) in detail, detail
        assert "+00:00" not in detail and "UTC" not in detail
        await page.screenshot(path=str(shots / "dashboard-call.png"), full_page=True)

        # Hostile or wrong input gets a page that says so, not an error.
        traversal = await page.goto(f"{base}/dashboard/calls/..%2F..%2Fetc%2Fpasswd")
        assert traversal.status == 404 and "root:" not in await page.content()
        await page.goto(f"{base}/dashboard/calls/..%252F..%252Fetc%252Fpasswd")  # reaches the route, as an id
        assert "No such call" in await page.inner_text("main")
        await page.goto(f"{base}/dashboard?start=2026-13-40&end=x")
        assert "Give dates as YYYY-MM-DD" in await page.inner_text("main")  # and the last 7 days are shown
        await page.goto(f"{base}/dashboard/calls?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert await page.locator("script").count() == 0

        # Nor the access audit: that is for admins.
        assert (await page.goto(f"{base}/admin/access")).status == 403

        # An agent cannot open the dashboard.
        await page.click("button:has-text('Log out')")
        await page.goto(f"{base}/login")
        await page.fill("#username", "adam.agent")
        await page.fill("#password", "an agent passphrase")
        await page.click("button[type=submit]")
        response = await page.goto(f"{base}/dashboard")
        assert response.status == 403

        # An admin sees who opened this caller's data, when and from where.
        await page.click("button:has-text('Log out')")
        await page.goto(f"{base}/login?next=/admin/access")
        await page.fill("#username", "ada.admin")
        await page.fill("#password", "an admin passphrase")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/admin/access")
        await page.fill("input[name=call]", sid)
        await page.click("button:has-text('Filter')")
        trail = await page.inner_text("main")
        assert "sara.supervisor" in trail and "a call's detail" in trail and "127.0.0.1" in trail, trail
        await page.screenshot(path=str(shots / "admin-access.png"), full_page=True)
        await page.goto(f"{base}/admin/access?user=sara.supervisor")
        trail = await page.inner_text("main")
        assert "a CSV export of calls" in trail and "q=housing allowance" in trail, trail
        assert "(s)" not in trail
        await browser.close()
