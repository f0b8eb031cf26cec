"""`helpline seed-demo --days`: calls placed now are spread over past days, within opening hours, with the new reasons
for calling in the recent half (so the drivers page shows them growing). The placing itself is the real stack's."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from foundation.plain_words import as_utc
from helpline.seed_demo import NEW_REASONS, OPEN_HOURS, SCENARIOS, day_plan, spread

ZONE = ZoneInfo("Europe/Stockholm")


def test_new_reasons_fall_in_the_recent_half_and_the_rest_anywhere():
    plan = [turns for turns, _ in SCENARIOS] * 20
    ago = day_plan(plan, 14, random.Random(1))
    assert all(0 <= a < 7 for a, turns in zip(ago, plan, strict=True) if turns in NEW_REASONS)
    assert {a for a, turns in zip(ago, plan, strict=True) if turns not in NEW_REASONS} == set(range(14))


def test_each_call_lands_on_its_day_within_opening_hours(store):  # type: ignore[no-untyped-def]
    now = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)
    for n in range(6):
        store.call_started(f"CAseed{n}", "+46******00", "k", now, worker="w")
        store.call_ended({"call_sid": f"CAseed{n}", "caller": "+46******00", "started_at": now.isoformat(),
                          "ended_at": now.isoformat(), "outcome": "abandoned", "turns": []})  # fmt: skip
    spread(store, [(f"CAseed{n}", n * 2) for n in range(6)], ZONE, random.Random(2))
    for n in range(6):
        started = store.call(f"CAseed{n}").started_at
        local = as_utc(started).astimezone(ZONE)
        assert local.date() == (now.astimezone(ZONE) - timedelta(days=n * 2)).date() or n == 0
        assert OPEN_HOURS[0] <= local.hour < OPEN_HOURS[1] or local == now.astimezone(ZONE)
