"""Value types shared by frames, payloads and REST objects (DESIGN §9 'Values')."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Counter = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL (and argv cannot either): refuse it as bad input.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul]
ShortText = Annotated[str, StringConstraints(max_length=255)]

MAX_CLOCK_SKEW = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    """Timestamps without a zone are UTC; everything is kept timezone-aware in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC: a bad value, not a crash.
        raise ValueError("timestamp is out of range once converted to UTC") from None


def _not_in_future(value: datetime) -> datetime:
    value = _as_utc(value)
    if value > utc_now() + MAX_CLOCK_SKEW:
        raise ValueError("timestamp is more than 5 minutes in the future")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
SampleTimestamp = Annotated[datetime, AfterValidator(_not_in_future)]
