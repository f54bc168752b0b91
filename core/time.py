"""Moments as Scout writes them everywhere: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

import datetime as dt


def iso(moment: dt.datetime | float | None, *, precise: bool = False) -> str | None:
    """ISO 8601 in UTC with a Z, to the millisecond (to the microsecond if `precise`).
    `moment` is an aware datetime or epoch seconds; None stays None."""
    if moment is None:
        return None
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, tz=dt.UTC)
    spec = "microseconds" if precise else "milliseconds"
    return moment.astimezone(dt.UTC).isoformat(timespec=spec).replace("+00:00", "Z")
