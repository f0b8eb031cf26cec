"""The trends and answers pages in a real browser (Debian's chromium, driven by Playwright): two weeks of history
against the two weeks before, with its tiles, columns and movers, and how the assistant's answers landed; a period of
no calls and one of a single call say there is not enough data. Screenshots are kept under var/screenshots for a
person to look at."""

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics.store import CallStore
from tests.conftest import add_user
from tests.test_dashboard_browser import CHROMIUM, bar_pixels, signed_in_page
from tests.test_kpis import _call, _turn

pytestmark = [pytest.mark.rasa, pytest.mark.models]

FIRST_DAY = datetime(2026, 10, 5, 9, tzinfo=UTC)  # a past fortnight no other test places calls in
DAYS = 14
RENT_RISES = [
    "my landlord raised the rent this month", "the rent went up and my landlord sent a new contract",
    "my rent was increased by the landlord", "the landlord put the rent up again", "our rent is higher since march",
    "the landlord says the rent goes up next month", "my rent has gone up by ten percent",
]  # fmt: skip


def _said(index: int, decision: str, intent: str) -> dict:  # type: ignore[type-arg]
    return {**_turn(index, decision, intent, 0.9, 200), "endpointing_ms": 700}


def _housing(index: int) -> dict:  # type: ignore[type-arg]
    return _said(index, "answer:apply_housing_allowance", "ask_apply_housing_allowance")


def _history(settings) -> None:  # type: ignore[no-untyped-def]
    """Two weeks of calls and the two weeks before, through the store's own API: payment problems grow, housing
    questions shrink, every call has a felt gap and a handling time."""
    store = CallStore.open(settings.database)
    try:
        for day in range(-DAYS, DAYS):
            start = FIRST_DAY + timedelta(days=day)
            debts = 1 + max(0, day) // 3  # more each few days of the period shown
            housing = 3 if day < 0 else 1
            for n in range(debts):
                turns = [{**_turn(1, "route:payments_debt", "payment_problem", 0.9, 300), "endpointing_ms": 700}]
                if n == 0 and day >= 0 and (day % 2 == 0 or day == 1):  # a reason the assistant does not know yet
                    text = RENT_RISES[day // 2] if day % 2 == 0 else "my dog ate the letter you sent"
                    turns.insert(0, {**_said(1, "clarify:rephrase", "nlu_fallback"), "transcript": text,
                                     "response_ms": 300})  # fmt: skip
                    turns[1]["index"] = 2
                at = start + timedelta(minutes=10 * n)
                _call(store, f"CA{uuid.uuid4().hex}", f"d{day}{n}", at, turns, "routed:payments_debt",
                      handoff_after_s=40, queue="payments_debt", length_s=50)  # fmt: skip
            for n in range(housing):
                # In the fortnight shown, every other day's housing answer is asked again and then hung up on.
                again = day >= 0 and day % 2 == 1
                turns = [_housing(1), _housing(2) if again else _said(2, "smalltalk:goodbye", "goodbye")]
                at = start + timedelta(hours=2, minutes=10 * n)
                _call(store, f"CA{uuid.uuid4().hex}", f"h{day}{n}", at, turns, "answered:apply_housing_allowance")
        lone = FIRST_DAY + timedelta(days=40)
        turn = _turn(1, "answer:opening_hours", "ask_opening_hours", 0.9, 150)
        _call(store, f"CA{uuid.uuid4().hex}", "lone", lone, [turn], "answered:opening_hours")
    finally:
        store.close()


async def test_trends_in_a_real_browser(stack):  # type: ignore[no-untyped-def]
    import asyncio

    from playwright.async_api import async_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed: ./setup.sh installs Debian's chromium for the browser tests")
    await asyncio.to_thread(_history, stack)
    await asyncio.to_thread(add_user, stack, "tess.trends", "supervisor", "a trends passphrase")
    shots = stack.data_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    base = stack.gateway_url
    last_day = (FIRST_DAY + timedelta(days=DAYS - 1)).date().isoformat()
    async with async_playwright() as p:
        browser, page = await signed_in_page(p, base, "tess.trends", "a trends passphrase", "/dashboard/trends")

        await page.goto(f"{base}/dashboard/trends?start={FIRST_DAY.date().isoformat()}&end={last_day}&unit=day")
        main = await page.inner_text("main")
        assert "Against the period before: 2026-09-21 to 2026-10-04" in main, main
        # This fortnight: 1+1+1+2+2+2+3+3+3+4+4+4+5+5 = 40 debt calls and 14 housing calls; before: 14 + 42.
        calls = await page.locator(".tile[data-kpi=calls]").inner_text()
        assert calls.startswith("54") and "-3.6%" in calls and "before: 56" in calls, calls
        containment = await page.locator(".tile[data-kpi=containment]").inner_text()
        assert containment.startswith("26%") and "points" in containment, containment
        gap = await page.locator(".tile[data-kpi=felt_gap_ms]").inner_text()
        assert gap.startswith("9") and " ms" in gap, gap  # 700 ms of endpointing and 200-300 ms of reply
        chart = page.locator("section", has_text="Routed to payments_debt")
        assert await chart.locator("rect.bar").count() == DAYS
        chart_png = shots / "trends-queue-chart.png"
        await chart.screenshot(path=str(chart_png))
        assert bar_pixels(chart_png) > 200, "the queue's chart drew no columns"
        movers = await page.locator("#movers").inner_text()
        rows = [line for line in movers.splitlines() if line.strip()]
        assert "apply_housing_allowance" in rows[1] and "-28" in rows[1], rows  # 14 now against 42: the largest
        assert any("payments_debt" in r and "+26" in r for r in rows), rows  # 40 now against 14 before
        await page.screenshot(path=str(shots / "dashboard-trends.png"), full_page=True)

        # How the answers landed: 7 accepted (goodbye), 7 asked again, and those second answers hung up on.
        await page.click("text=Answers")
        await page.goto(f"{base}/dashboard/answers?start={FIRST_DAY.date().isoformat()}&end={last_day}")
        row = page.locator("tr[data-topic=apply_housing_allowance]")
        cells = (await row.inner_text()).split("\t")
        assert cells[:7] == ["apply_housing_allowance", "21", "33%", "7", "0", "7", "0"], cells
        assert "asked the same again: call 1, call 2, call 3" in cells[7], cells
        await page.screenshot(path=str(shots / "dashboard-answers.png"), full_page=True)
        await row.locator("a", has_text="call 1").first.click()
        assert "answer:apply_housing_allowance" in await page.inner_text("main")
        await page.goto(f"{base}/dashboard/answers?start=2026-08-01&end=2026-08-07")
        assert "No answers in this period" in await page.inner_text("main")

        # Call drivers: the rent rises the assistant does not understand yet, grouped and named; the lone turn apart.
        await page.click("text=Drivers")
        await page.goto(f"{base}/dashboard/drivers?start={FIRST_DAY.date().isoformat()}&end={last_day}")
        first = page.locator("section.driver").first
        heading = await first.locator("h2").first.inner_text()
        assert "rent" in heading, heading
        assert "7 turns in 7 calls" in await first.inner_text()
        assert await first.locator("rect.bar").count() >= 2  # turns in both weeks
        assert "unlike any other" in await page.inner_text("main")
        assert await page.locator("#to-review").count() == 0, "the review queue is for trainers"
        await page.screenshot(path=str(shots / "dashboard-drivers.png"), full_page=True)
        await page.goto(f"{base}/dashboard/drivers?start=2026-08-01&end=2026-08-07")
        assert "Not enough data for call drivers" in await page.inner_text("#no-drivers")

        # A period without calls, and one with a single call: said plainly, never an error.
        await page.goto(f"{base}/dashboard/trends?start=2026-08-01&end=2026-08-07")
        assert "Not enough data for a trend: no calls" in await page.inner_text("#not-enough")
        assert "nothing to compare with" in await page.locator(".tile[data-kpi=aht_s]").inner_text()
        lone = (FIRST_DAY + timedelta(days=40)).date().isoformat()
        await page.goto(f"{base}/dashboard/trends?start={lone}&end={lone}")
        assert "only one" in await page.inner_text("#not-enough")
        await page.screenshot(path=str(shots / "dashboard-trends-one-call.png"), full_page=True)
        # Nonsense asked of it: the last seven days and what was wrong.
        await page.goto(f"{base}/dashboard/trends?start=x&unit=%3Cscript%3E")
        assert "Give dates as YYYY-MM-DD" in await page.inner_text("main")
        assert await page.locator("script").count() == 0
        await browser.close()
