"""The one exception a Scout call raises, whatever went wrong.

Scout answers every refusal as JSON `{"detail": "...", ...}` with a meaningful status code;
`ScoutError` carries both, and the whole body, so that a caller can log Scout's own words and
branch on the status. A request that got no answer at all (Scout unreachable, too slow) raises
the subclass `ScoutConnectionError`, so that `except ScoutError` covers everything.
"""

from __future__ import annotations

from typing import Any


class ScoutError(Exception):
    """Scout refused a request (`status_code` 400 to 599), or gave no usable answer.

    `detail` is Scout's own explanation when it sent one; `body` is the decoded JSON body (or
    the raw text when it was not JSON, None when there was no answer).
    """

    def __init__(self, status_code: int | None, detail: str, body: Any = None) -> None:
        super().__init__(status_code, detail, body)
        self.status_code = status_code
        self.detail = detail
        self.body = body

    def __str__(self) -> str:
        if self.status_code is None:
            return self.detail
        return f"{self.status_code}: {self.detail}"

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed: no answer, or a 5xx (a backing service of
        Scout, or a proxy in front of it, is down). A 4xx is the request's own fault."""
        return self.status_code is None or self.status_code >= 500


class ScoutConnectionError(ScoutError):
    """No answer from Scout: it could not be reached, the connection broke, or it did not
    answer within the timeout.

    `request_sent` is False when the request surely never reached Scout (the connection could
    not be opened), so that even a request that is not safe to repeat may be sent again.
    """

    def __init__(self, detail: str, *, request_sent: bool = True, timed_out: bool = False) -> None:
        super().__init__(None, detail)
        self.args = (detail,)  # what unpickling passes back to __init__
        self.request_sent = request_sent
        self.timed_out = timed_out
