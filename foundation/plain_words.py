"""How pages and summaries say numbers and times to people: "1 call", "3 calls", "called twice before", and times in
the agency's time zone ("3 Dec 2026, 17:49 CET"). Times are stored in UTC; only what people read is local."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

IRREGULAR = {"person": "people", "child": "children"}


def plural(noun: str) -> str:
    """The plural of ``noun``'s last word: "call" -> "calls", "entry" -> "entries", "person" -> "people"."""
    head, _, word = noun.rpartition(" ")
    if word in IRREGULAR:
        word = IRREGULAR[word]
    elif word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        word = word[:-1] + "ies"
    elif word.endswith(("s", "sh", "ch", "x")):
        word += "es"
    else:
        word += "s"
    return f"{head} {word}" if head else word


def count(n: int, noun: str) -> str:
    """``count(1, "call")`` -> "1 call"; ``count(3, "call")`` -> "3 calls"; 0 takes the plural."""
    return f"{n:,} {noun if n == 1 else plural(noun)}"


def times(n: int) -> str:
    """How often: "once", "twice", "3 times"."""
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name`` (e.g. "Europe/Stockholm"); ValueError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Europe/Stockholm or UTC") from e


def as_utc(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives back naive UTC, the JSON records ISO text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_time(value: datetime | str | None, zone: tzinfo, seconds: bool = False) -> str:
    """``value`` as people in ``zone`` read it: "3 Dec 2026, 17:49 CET" (empty for no time; text that is not a time
    is shown as it is rather than lost)."""
    if value is None or value == "":
        return ""
    try:
        moment = as_utc(value).astimezone(zone)
    except ValueError:
        return str(value)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return f"{moment.day} {moment.strftime(f'%b %Y, {clock} %Z')}"
