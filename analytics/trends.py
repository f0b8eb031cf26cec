"""How the line changes: its KPIs as time series per hour, day or week of the agency's clock, each against the
period just before, and the topics, queues and routing reasons that grew or shrank the most (movers).

Every figure is summed in SQL per UTC hour of the call's start (SQLite or PostgreSQL); an hour of UTC is an hour of
the agency's clock, so local hours, days and weeks are sums of those rows (as in analytics/kpis.py). Rates and means
are computed from the summed counts, never averaged from averages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from analytics import kpis
from analytics.models import Call, Turn

UNITS = ("hour", "day", "week")
LONGEST_HOURLY_DAYS = 7  # hourly series over more days than this would be unreadable: days instead
MOVERS = 8


@dataclass
class _Sums:
    """What one bucket (or a whole period) adds up to."""

    calls: int = 0
    answered: int = 0
    routed: int = 0
    abandoned: int = 0
    ended: int = 0  # calls with an end (or a handoff): the ones with a handling time
    handling_s: float = 0.0  # assistant + expert seconds of those calls
    timed_turns: int = 0
    felt_gap_ms: float = 0.0  # summed: end of the caller's speech -> first reply audio, endpointing included

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "routed": self.routed,
            "containment": kpis.rate(self.answered, self.calls),
            "abandonment": kpis.rate(self.abandoned, self.calls),
            "aht_s": round(self.handling_s / self.ended, 1) if self.ended else None,
            "felt_gap_ms": round(self.felt_gap_ms / self.timed_turns) if self.timed_turns else None,
        }


def unit_for(period: kpis.Period, asked: str | None) -> str:
    """The bucket size asked for, or the one that suits the period: hours up to two days, days up to two months,
    then weeks. Hours are not offered over more than a week."""
    days = (period.end - period.start).days
    if asked in UNITS and not (asked == "hour" and days > LONGEST_HOURLY_DAYS):
        return asked
    return "hour" if days <= 2 else "day" if days <= 62 else "week"


def previous(period: kpis.Period) -> kpis.Period:
    """The period of the same length just before ``period``."""
    return kpis.Period(period.start - (period.end - period.start), period.start, period.zone)


def _utc(hour: str) -> datetime:
    """A UTC hour as the SQL groups by ("2026-11-25 09:00") as an aware datetime."""
    return datetime.strptime(hour, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _hours(rows: Any) -> dict[datetime, list[Any]]:
    return {_utc(r[0]): list(r[1:]) for r in rows}


def _hourly(
    db: Session, start: datetime, end: datetime
) -> tuple[dict[datetime, _Sums], dict[datetime, dict[str, int]]]:
    """Per UTC hour from ``start`` to ``end``: the sums, and calls routed per queue."""
    hour = kpis.utc_hour(db).label("hour")
    in_range = and_(Call.started_at >= start, Call.started_at < end)
    assistant_end = func.coalesce(Call.handed_off_at, Call.ended_at)
    human = kpis.expert_seconds()
    assistant_s = cast(kpis.seconds_between(db, assistant_end, Call.started_at), Float)
    handled = assistant_s + func.coalesce(human.c.human_s, 0.0)
    calls = db.execute(
        select(
            hour,
            func.count(),
            func.sum(case((Call.outcome.like("answered:%"), 1), else_=0)),
            func.sum(case((Call.outcome.like("routed:%"), 1), else_=0)),
            func.sum(case((Call.outcome == "abandoned", 1), else_=0)),
            func.count(assistant_end),
            func.sum(case((assistant_end.is_not(None), handled), else_=0.0)),
        )
        .select_from(Call)
        .outerjoin(human, human.c.call_sid == Call.call_sid)
        .where(in_range)
        .group_by(hour)
    )
    endpointing = func.coalesce(Turn.details["endpointing_ms"].as_float(), 0.0)
    turns = db.execute(
        select(hour, func.count(), func.sum(Turn.response_ms + endpointing))
        .select_from(Turn)
        .join(Call, Call.call_sid == Turn.call_sid)
        .where(in_range, Turn.input == "speech", Turn.response_ms > 0)
        .group_by(hour)
    )
    sums: dict[datetime, _Sums] = {}
    for at, (n, answered, routed, abandoned, ended, handling) in _hours(calls).items():
        sums[at] = _Sums(n, int(answered or 0), int(routed or 0), int(abandoned or 0), ended, float(handling or 0.0))
    for at, (n, gap) in _hours(turns).items():
        bucket = sums.setdefault(at, _Sums())
        bucket.timed_turns, bucket.felt_gap_ms = n, float(gap or 0.0)
    queues: dict[datetime, dict[str, int]] = {}
    routed_rows = db.execute(
        select(hour, Call.queue, func.count()).where(in_range, Call.queue.is_not(None)).group_by(hour, Call.queue)
    )
    for utc_hour, queue, n in routed_rows:
        at = _utc(utc_hour)
        queues.setdefault(at, {})[str(queue)] = n
    return sums, queues


def _change(now: float | None, before: float | None, rate: bool) -> dict[str, Any]:
    """Now against before: a rate's difference in percentage points, anything else relative (None without a
    base to compare with)."""
    if now is None or before is None:
        return {"now": now, "before": before, "change": None}
    if rate:
        return {"now": now, "before": before, "change": round((now - before) * 100, 1), "unit": "points"}
    change = round((now - before) / before * 100, 1) if before else None
    return {"now": now, "before": before, "change": change, "unit": "%"}


RATES = frozenset({"containment", "abandonment"})


def _movers(db: Session, period: kpis.Period) -> list[dict[str, Any]]:
    """Topics asked about, queues routed to and routing reasons whose calls changed most against the period before,
    largest change first (ties: most calls now)."""

    def counted(p: kpis.Period) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for row in kpis.containment_by_topic(db, p):
            out[("topic", row["topic"])] = row["calls"]
        for row in kpis.routing_by_queue(db, p):
            out[("queue", row["queue"])] = out.get(("queue", row["queue"]), 0) + row["calls"]
            out[("reason", f"{row['queue']}: {row['reason']}")] = row["calls"]
        return out

    now, before = counted(period), counted(previous(period))
    changed = [
        (now.get(key, 0) - before.get(key, 0), now.get(key, 0), before.get(key, 0), key)
        for key in sorted(now.keys() | before.keys())
    ]
    changed = [c for c in changed if c[0]]
    changed.sort(key=lambda c: (-abs(c[0]), -c[1], c[3]))
    return [
        {"kind": kind, "name": name, "now": n, "before": b, "change": change}
        for change, n, b, (kind, name) in changed[:MOVERS]
    ]


def trends(db: Session, period: kpis.Period, unit: str | None = None) -> dict[str, Any]:
    """The period's series per bucket, its totals against the period before, and the movers."""
    unit = unit_for(period, unit)
    before = previous(period)
    hourly, routed = _hourly(db, before.start, period.end)
    series: dict[str, _Sums] = {label: _Sums() for label in kpis.buckets(period, unit)}
    by_queue: dict[str, dict[str, int]] = {label: {} for label in series}
    now_total, before_total = _Sums(), _Sums()
    for at, sums in hourly.items():
        if at < period.start:
            before_total.add(sums)
            continue
        now_total.add(sums)
        series[kpis.bucket_of(at, unit, period.zone)].add(sums)
    for at, per_queue in routed.items():
        if at >= period.start:
            bucket = by_queue[kpis.bucket_of(at, unit, period.zone)]
            for queue, n in per_queue.items():
                bucket[queue] = bucket.get(queue, 0) + n
    now_figures, before_figures = now_total.figures(), before_total.figures()
    queues = sorted({q for b in by_queue.values() for q in b})
    return {
        "unit": unit,
        "series": [{"bucket": label, **sums.figures()} for label, sums in series.items()],
        "routed_by_queue": {q: [{"bucket": b, "calls": by_queue[b].get(q, 0)} for b in series] for q in queues},
        "totals": {name: _change(now_figures[name], before_figures[name], name in RATES) for name in now_figures},
        "previous": {"start": before.start.isoformat(), "end": before.end.isoformat()},
        "buckets_with_calls": sum(1 for s in series.values() if s.calls),
        "movers": _movers(db, period),
    }
