"""Scout's live log (`GET /logs/stream`), read from its Server-Sent Events.

The stream sends one event per log entry (`id:` and `data:`, the entry as JSON), comment lines
to keep an idle connection open, and, when Scout loses its Redis, an `unavailable` event before
it ends. The sync and async clients feed the same reader line by line, so both read the stream
alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scout_client.errors import ScoutError

DEFAULT_READ_TIMEOUT = 60.0
"""How long a log stream may stay silent before the client gives up on it: longer than Scout's
keep-alive comment (every 15 s by default), so an idle but healthy stream is not cut."""


@dataclass(frozen=True)
class LogEntry:
    """One log entry. `event_id` resumes the stream after it (`stream_logs(last_event_id=...)`);
    `test_id` is the Test it is about, if any; `raw` is the whole entry, with the fields each
    kind of entry adds."""

    event_id: str
    timestamp: datetime | None
    level: str
    message: str
    service: str
    test_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_event(cls, event_id: str, data: str) -> LogEntry:
        body = json.loads(data)
        stamp = body.get("timestamp")
        return cls(
            event_id=event_id,
            timestamp=datetime.fromisoformat(stamp) if isinstance(stamp, str) else None,
            level=str(body.get("level", "")),
            message=str(body.get("message", "")),
            service=str(body.get("service", "")),
            test_id=body.get("test_id") or None,
            raw=body,
        )


class EventReader:
    """Turns the stream's lines into log entries, one line at a time (the SSE rules Scout's
    stream uses: `field: value` lines, a blank line ends an event, `:` starts a comment)."""

    def __init__(self) -> None:
        self._event = "message"
        self._id = ""
        self._data: list[str] = []

    def feed(self, line: str) -> LogEntry | None:
        """The entry this line completes, if any; raises ScoutError (503) for `unavailable`."""
        if line.startswith(":"):
            return None
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "id":
                self._id = value
            elif name == "data":
                self._data.append(value)
            return None
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = "message", []
        if event == "unavailable":
            raise ScoutError(503, f"The log stream ended: Redis is unavailable ({data}).", data)
        if event != "message" or not data:
            return None
        return LogEntry.from_event(self._id, data)


def log_query(level: str | None, test_id: str | None, last_event_id: str | None) -> dict[str, str]:
    given = {"level": level, "test_id": test_id, "last_event_id": last_event_id}
    return {name: value for name, value in given.items() if value is not None}
