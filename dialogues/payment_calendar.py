"""Benefit payment days: the 25th (child allowance the 20th), moved to the previous weekday when that day is a
weekend or a Swedish public holiday. Pure functions; also imported by the action server (Python 3.10)."""

from __future__ import annotations

from datetime import date, timedelta

STANDARD_PAY_DAY = 25
CHILD_ALLOWANCE_PAY_DAY = 20


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> set[date]:
    """Swedish public holidays plus the eves on which payments are not made (midsummer, Christmas, New Year)."""
    easter = easter_sunday(year)
    midsummer_eve = next(date(year, 6, d) for d in range(19, 26) if date(year, 6, d).weekday() == 4)
    return {
        date(year, 1, 1),
        date(year, 1, 6),
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        date(year, 5, 1),
        easter + timedelta(days=39),  # Ascension Day
        date(year, 6, 6),
        midsummer_eve,
        date(year, 12, 24),
        date(year, 12, 25),
        date(year, 12, 26),
        date(year, 12, 31),
    }


def is_banking_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def payment_day(year: int, month: int, nominal_day: int = STANDARD_PAY_DAY) -> date:
    """The day the money arrives in the given month: the nominal day or the closest banking day before it."""
    day = date(year, month, nominal_day)
    while not is_banking_day(day):
        day -= timedelta(days=1)
    return day


def next_payment_day(today: date, nominal_day: int = STANDARD_PAY_DAY) -> date:
    """The first payment day on or after ``today``."""
    this_month = payment_day(today.year, today.month, nominal_day)
    if this_month >= today:
        return this_month
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return payment_day(year, month, nominal_day)
