"""Sending one call to Scout and reading its answer; retrying it when that is safe.

This is the only module that touches httpx. A call (`Call`) says what to send and how to read
the answer; the transports send it with the right credentials (the bearer token for `/api/`,
HTTP Basic for `/admin/`) and turn every failure into a `ScoutError`, so the clients above
never see an httpx exception. The sync and async transports differ only where one blocks and
the other awaits.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from scout_client._version import __version__
from scout_client.errors import ScoutConnectionError, ScoutError

T = TypeVar("T")

USER_AGENT = f"scout-client-python/{__version__}"

# Failures that happen before a request leaves this process: sending it again cannot repeat
# anything Scout did.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to Scout: method, path (from the server's root), JSON body or query, and
    how to read the JSON answer. `staff` calls (`/admin/`) send the HTTP Basic credentials."""

    method: str
    path: str
    read: Callable[[Any], T]
    body: object = None
    params: Mapping[str, str] | None = None
    staff: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """How a call that is safe to repeat is retried: up to `attempts` requests in all, waiting
    between two a random time (full jitter) up to `first_delay * 2**n`, capped at `max_delay`,
    and giving up once the next wait would end more than `total_seconds` after the first try.

    Retried: no answer (Scout unreachable, a broken connection, a timeout) and the `statuses`
    (503 is Scout's "a backing service is down, retry shortly"; 502 and 504 come from a proxy
    in front of it). A call that is not safe to repeat is retried only when its request surely
    never left (the connection could not be opened).
    """

    attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 5.0
    total_seconds: float = 30.0
    statuses: frozenset[int] = frozenset({502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1.")
        if min(self.first_delay, self.max_delay, self.total_seconds) < 0:
            raise ValueError("delays must not be negative.")

    def retries(self, error: ScoutError, *, repeatable: bool) -> bool:
        if isinstance(error, ScoutConnectionError):
            return repeatable or not error.request_sent
        return repeatable and error.status_code in self.statuses

    def wait_before_retry(
        self, error: ScoutError, attempt: int, started: float, *, repeatable: bool
    ) -> float | None:
        """How long to wait before attempt `attempt + 1`, or None to give up and raise."""
        if attempt >= self.attempts or not self.retries(error, repeatable=repeatable):
            return None
        delay = random.uniform(0.0, min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))
        if time.monotonic() - started + delay > self.total_seconds:
            return None
        return delay


class _Transport:
    """What both transports share: credentials, and reading answers and failures."""

    def __init__(
        self, base_url: str, token: str | None, auth: tuple[str, str] | None, timeout: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._bearer = {"Authorization": f"Bearer {token}"} if token else {}
        self._basic = httpx.BasicAuth(*auth) if auth else None

    def _request(self, call: Call[Any], timeout: float | None) -> dict[str, Any]:
        """The arguments of httpx's `request` (and `stream`) for `call`."""
        arguments: dict[str, Any] = {
            "method": call.method,
            "url": call.path,
            "params": call.params,
            "timeout": httpx.Timeout(timeout if timeout is not None else self.timeout),
        }
        if call.body is not None:
            arguments["json"] = call.body
        if call.staff:
            if self._basic is not None:
                arguments["auth"] = self._basic
        else:
            arguments["headers"] = self._bearer
        return arguments

    def _read(self, call: Call[T], response: httpx.Response) -> T:
        if not response.is_success:
            raise error_of(response)
        try:
            body = response.json()
        except ValueError:
            raise ScoutError(
                response.status_code,
                f"Scout answered {call.method} {call.path} with a body that is not JSON.",
                response.text[:1000],
            ) from None
        try:
            return call.read(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScoutError(
                response.status_code,
                f"Scout's answer to {call.method} {call.path} lacks what was expected ({exc!r}).",
                body,
            ) from None

    def _no_answer(
        self, call: Call[Any], exc: httpx.TransportError, timeout: float | None
    ) -> ScoutConnectionError:
        where = f"{call.method} {self.base_url}{call.path}"
        sent = not isinstance(exc, _NOT_SENT)
        if isinstance(exc, httpx.TimeoutException):
            seconds = timeout if timeout is not None else self.timeout
            return ScoutConnectionError(
                f"Scout did not answer {where} within {seconds:g} s ({type(exc).__name__}).",
                request_sent=sent,
                timed_out=True,
            )
        reason = str(exc) or type(exc).__name__
        if sent:  # the connection broke after the request left
            return ScoutConnectionError(f"No answer from Scout to {where}: {reason}")
        return ScoutConnectionError(
            f"Could not reach Scout for {where}: {reason}", request_sent=False
        )


def error_of(response: httpx.Response) -> ScoutError:
    """The ScoutError for an answer that is not a success, with Scout's `detail` when it sent
    one (a proxy in front of Scout may answer in HTML: then the start of the text)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail:
        detail = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        if response.is_redirect:  # not an API endpoint: the admin site's login, say
            detail += f" to {response.headers.get('Location', '?')}: no such API endpoint"
        elif isinstance(body, str) and body.strip():
            detail += f": {body.strip()[:200]}"
    return ScoutError(response.status_code, detail, body)


class SyncTransport(_Transport):
    def __init__(
        self,
        base_url: str,
        token: str | None,
        auth: tuple[str, str] | None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, auth, timeout)
        self._client = httpx.Client(
            base_url=self.base_url, headers={"User-Agent": USER_AGENT}, transport=transport
        )

    def call(self, call: Call[T], timeout: float | None = None) -> T:
        try:
            response = self._client.request(**self._request(call, timeout))
        except httpx.TransportError as exc:
            raise self._no_answer(call, exc, timeout) from exc
        return self._read(call, response)

    def call_with_retries(
        self, call: Call[T], policy: RetryPolicy, *, repeatable: bool
    ) -> tuple[T, int]:
        """The answer and how many attempts it took."""
        started, attempt = time.monotonic(), 1
        while True:
            try:
                return self.call(call), attempt
            except ScoutError as error:
                delay = policy.wait_before_retry(error, attempt, started, repeatable=repeatable)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    def stream(
        self, call: Call[Any], *, by_line: bool, timeout: float | None = None
    ) -> Iterator[str]:
        """The answer's text as it comes, line by line or in chunks (answers of any size);
        `timeout` bounds each wait for more of it."""
        try:
            with self._client.stream(**self._request(call, timeout)) as response:
                if not response.is_success:
                    response.read()
                    raise error_of(response)
                yield from response.iter_lines() if by_line else response.iter_text()
        except httpx.TransportError as exc:
            raise self._no_answer(call, exc, timeout) from exc

    def close(self) -> None:
        self._client.close()


class AsyncTransport(_Transport):
    def __init__(
        self,
        base_url: str,
        token: str | None,
        auth: tuple[str, str] | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, auth, timeout)
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers={"User-Agent": USER_AGENT}, transport=transport
        )

    async def call(self, call: Call[T], timeout: float | None = None) -> T:
        try:
            response = await self._client.request(**self._request(call, timeout))
        except httpx.TransportError as exc:
            raise self._no_answer(call, exc, timeout) from exc
        return self._read(call, response)

    async def call_with_retries(
        self, call: Call[T], policy: RetryPolicy, *, repeatable: bool
    ) -> tuple[T, int]:
        started, attempt = time.monotonic(), 1
        while True:
            try:
                return await self.call(call), attempt
            except ScoutError as error:
                delay = policy.wait_before_retry(error, attempt, started, repeatable=repeatable)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1

    async def stream(
        self, call: Call[Any], *, by_line: bool, timeout: float | None = None
    ) -> AsyncIterator[str]:
        try:
            async with self._client.stream(**self._request(call, timeout)) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_of(response)
                parts = response.aiter_lines() if by_line else response.aiter_text()
                async for part in parts:
                    yield part
        except httpx.TransportError as exc:
            raise self._no_answer(call, exc, timeout) from exc

    async def close(self) -> None:
        await self._client.aclose()
