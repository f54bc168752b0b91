"""`Client`: Scout's REST API for code that does not use asyncio (see `AsyncClient`).

One method per endpoint of the contract, named as the contract names it. Two of them are made
for a product's own request path: `fetch_recommended_variant` answers a fallback instead of
raising when Scout cannot decide in time, and `queue_reward` hands a reward to a background
queue instead of waiting for Scout.

A client keeps a pool of connections: make one per process and share it between threads.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

import httpx

from scout_client import _endpoints as endpoints
from scout_client._endpoints import Context, Time
from scout_client._http import RetryPolicy, SyncTransport
from scout_client.errors import ScoutError
from scout_client.logs import DEFAULT_READ_TIMEOUT, EventReader, LogEntry
from scout_client.models import (
    CreatedTest,
    DeletedTest,
    Evaluation,
    HoldoutShareSet,
    JsonObject,
    Label,
    MetricSeries,
    ModelConfig,
    ModelConfigChanged,
    ModelSettings,
    NewToken,
    Protection,
    ProtectionChanged,
    Ranking,
    Recommendation,
    RedisConfigChanged,
    RedisHealth,
    RewardEntry,
    RewardResult,
    RolloutCleared,
    RolloutSet,
    SystemConfig,
    SystemConfigChanged,
    TestDetails,
    TestSummary,
    TokenCheck,
    VariantRetired,
    VariantsAdded,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from scout_client.rewards_queue import QueueOptions, QueueStats, RewardQueue

DEFAULT_TIMEOUT = 10.0
DEFAULT_DECISION_TIMEOUT = 1.0


def reward_entry(
    request_id: str, reward: float, variant_id: int | None, context: Context | None
) -> JsonObject:
    """One queued reward, checked now: a mistake raises in the caller, not later in a worker."""
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("request_id must be a non-empty string.")
    if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
        raise ValueError(f"reward must be a finite number, not {reward!r}.")
    entry: JsonObject = {"request_id": request_id, "reward": reward}
    if variant_id is not None:
        entry["variant_id"] = variant_id
    if context is not None:
        entry["context"] = dict(context)
    return entry


class Client:
    """A client of one Scout server.

    `token` is the API token sent as a bearer token to `/api/` (needed when API protection is
    on); `auth` is a staff user's (username, password), sent with HTTP Basic to the `/admin/`
    endpoints. `timeout` bounds each phase of a request (connecting, sending, waiting for the
    answer); decisions use the shorter `decision_timeout`. `retry` is how rewards are retried;
    `reward_queue` configures `queue_reward`. `transport` is httpx's, for tests or proxies.

    Close it (`close()`, or use it as a context manager) to send the rewards still queued; at
    interpreter exit they are sent too.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        auth: tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        decision_timeout: float = DEFAULT_DECISION_TIMEOUT,
        retry: RetryPolicy | None = None,
        reward_queue: QueueOptions | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = SyncTransport(base_url, token, auth, timeout, transport)
        self.decision_timeout = decision_timeout
        self.retry = retry or RetryPolicy()
        self._queue_options = reward_queue or QueueOptions()
        self._queue: RewardQueue | None = None
        self._queue_lock = threading.Lock()
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Send the queued rewards (once each, with the retry policy: what still fails is
        rejected), then close the connections. Rewards can no longer be queued."""
        with self._queue_lock:
            self._closed, queue = True, self._queue
        if queue is not None:
            atexit.unregister(queue.close)
            queue.close()
        self._http.close()

    # --- Decisions ----------------------------------------------------------------------------

    def fetch_recommended_variant(
        self,
        test_id: str,
        context: Context | None = None,
        *,
        request_id: str | None = None,
        unit_id: str | None = None,
        eligible_variants: Sequence[Label] | None = None,
        fallback: Label | None = None,
        timeout: float | None = None,
    ) -> Recommendation:
        """Which variant this visitor should see.

        With a `fallback` (a variant id as an `int`, or a label as a `str`), a decision that
        cannot be had within `timeout` (the client's `decision_timeout` by default) because
        Scout is unreachable, too slow or answers 5xx answers that variant, flagged
        `fallback=True`, instead of raising: the page is served either way. A 4xx (an unknown
        Test, a bad context) still raises ScoutError: it is a mistake to fix.

        The decision is stored under `request_id` (one is made here when none is given);
        asking again with the same one answers the same decision.
        """
        request_id = endpoints.new_request_id() if request_id is None else request_id
        call = endpoints.fetch_recommended_variant(
            test_id, context, request_id, unit_id, eligible_variants
        )
        try:
            return self._http.call(call, self._decision_timeout(timeout))
        except ScoutError as error:
            return endpoints.fallback_for(error, test_id, fallback, request_id)

    def fetch_ranked_variants(
        self,
        test_id: str,
        context: Context | None = None,
        *,
        request_id: str | None = None,
        unit_id: str | None = None,
        eligible_variants: Sequence[Label] | None = None,
        timeout: float | None = None,
    ) -> Ranking:
        """In which order this visitor should see the variants (best first)."""
        request_id = endpoints.new_request_id() if request_id is None else request_id
        call = endpoints.fetch_ranked_variants(
            test_id, context, request_id, unit_id, eligible_variants
        )
        return self._http.call(call, self._decision_timeout(timeout))

    def _decision_timeout(self, timeout: float | None) -> float:
        return self.decision_timeout if timeout is None else timeout

    # --- Rewards ------------------------------------------------------------------------------

    def update_model(
        self,
        test_id: str,
        updates: Sequence[RewardEntry | Mapping[str, Any]],
        *,
        retry: RetryPolicy | None = None,
    ) -> RewardResult:
        """Report a batch of rewards (up to Scout's SCOUT_MAX_UPDATES_PER_BATCH, 1,000 by
        default). Each entry is counted or refused on its own (`RewardResult.errors`).

        Retried with `retry` (the client's policy by default) when Scout is unreachable,
        times out or answers 502/503/504: safe, since Scout counts a request_id once. A batch
        with an entry that has no request_id is retried only when its request never left.
        """
        call, repeatable = endpoints.update_model(test_id, updates)
        result, attempts = self._http.call_with_retries(
            call, retry or self.retry, repeatable=repeatable
        )
        return dataclasses.replace(result, attempts=attempts)

    def queue_reward(
        self,
        test_id: str,
        *,
        request_id: str,
        reward: float,
        variant_id: int | None = None,
        context: Context | None = None,
    ) -> None:
        """Queue a reward to be sent in the background (see scout_client.rewards_queue); it
        returns at once. Give `variant_id` (and `context`) for a ranked or `degraded`
        decision, as for `update_model`."""
        entry = reward_entry(request_id, reward, variant_id, context)
        self._reward_queue().put(test_id, entry)

    def flush(self, timeout: float | None = None) -> bool:
        """Send every queued reward now; answer whether the queue was emptied within
        `timeout` seconds (None: however long it takes, which while Scout is unreachable is
        until it is back)."""
        with self._queue_lock:
            queue = self._queue
        return True if queue is None else queue.flush(timeout)

    def queue_stats(self) -> QueueStats:
        with self._queue_lock:
            queue = self._queue
        return queue.stats() if queue is not None else QueueStats(0, 0, 0, 0, 0)

    def _reward_queue(self) -> RewardQueue:
        with self._queue_lock:
            if self._closed:
                raise RuntimeError("The client is closed: it no longer queues rewards.")
            if self._queue is None:
                self._queue = RewardQueue(self._send_queued, self._queue_options)
                atexit.register(self._queue.close)
            return self._queue

    def _send_queued(self, test_id: str, entries: list[JsonObject]) -> RewardResult:
        return self.update_model(test_id, entries)

    # --- Tests --------------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        variants: Mapping[int, Label] | Sequence[Label],
        **settings: Unpack[ModelSettings],
    ) -> CreatedTest:
        """Create a Test. `variants` maps ids to labels, or lists labels (ids 0, 1, ...);
        `settings` are the Test's own (see ModelSettings), the rest take Scout's defaults."""
        return self._http.call(endpoints.create_model(name, variants, settings))

    def delete_model(self, test_id: str) -> DeletedTest:
        return self._http.call(endpoints.delete_model(test_id))

    def models(self) -> list[TestSummary]:
        return self._http.call(endpoints.models())

    def model_details(self, test_id: str) -> TestDetails:
        return self._http.call(endpoints.model_details(test_id))

    def rollout_global_variant(self, test_id: str, variant: Label) -> RolloutSet:
        """Serve `variant` (an id or a label) to everyone until the rollout is cleared."""
        return self._http.call(endpoints.rollout_global_variant(test_id, variant))

    def clear_global_variant(self, test_id: str) -> RolloutCleared:
        return self._http.call(endpoints.clear_global_variant(test_id))

    def add_variants(self, test_id: str, variants: Mapping[int, Label]) -> VariantsAdded:
        return self._http.call(endpoints.add_variants(test_id, variants))

    def retire_variant(self, test_id: str, variant: Label) -> VariantRetired:
        return self._http.call(endpoints.retire_variant(test_id, variant))

    def set_holdout_share(self, test_id: str, holdout_share: float) -> HoldoutShareSet:
        return self._http.call(endpoints.set_holdout_share(test_id, holdout_share))

    def evaluation(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> Evaluation:
        """Off-policy estimates over the decisions made in [start, end) (`from`/`to`)."""
        return self._http.call(endpoints.evaluation(test_id, start, end))

    def metrics(self, test_id: str) -> dict[str, Any]:
        """The metrics of the Test's history (`metrics`: each one's name and description)."""
        return self._http.call(endpoints.metrics(test_id))

    def metric_series(
        self, test_id: str, metric: str, *, start: Time | None = None, end: Time | None = None
    ) -> MetricSeries:
        """`predictions`, `rewards`, `mean_reward` or `traffic_share` per variant over
        [start, end) (`from`/`to`: at most 14 days; `to` defaults to now, `from` to an hour
        before), from the Test's history."""
        return self._http.call(endpoints.metric_series(test_id, metric, start, end))

    def decision_log(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> Iterator[dict[str, Any]]:
        """The decisions made in [start, end), oldest first, each with its reward, read as
        Scout streams them: a log of any size takes constant memory. The request is made when
        iteration starts, so errors raise then."""
        call = endpoints.decision_log(test_id, start, end, "jsonl")
        for line in self._http.stream(call, by_line=True):
            if line:
                yield json.loads(line)

    def decision_log_csv(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> Iterator[str]:
        """The same log as CSV with a header, in chunks of text to write to a file."""
        call = endpoints.decision_log(test_id, start, end, "csv")
        yield from self._http.stream(call, by_line=False)

    def check_token(self) -> TokenCheck:
        """The client's token's name and expiry; ScoutError 401 when it is not valid."""
        return self._http.call(endpoints.check_token())

    # --- System (/admin/: staff credentials, `auth`) ------------------------------------------

    def get_protection(self) -> Protection:
        return self._http.call(endpoints.get_protection())

    def set_protection(self, protected_api: bool) -> ProtectionChanged:
        return self._http.call(endpoints.set_protection(protected_api))

    def generate_token(self) -> NewToken:
        """A new API token, replacing the previous one (this client keeps sending its own)."""
        return self._http.call(endpoints.generate_token())

    def redis_health(self) -> RedisHealth:
        return self._http.call(endpoints.redis_health())

    def model_config(self) -> ModelConfig:
        """The defaults of new Tests."""
        return self._http.call(endpoints.model_config())

    def set_model_config(
        self,
        *,
        trail_time_window_minutes: int | None = None,
        trail_bucket_granularity_seconds: int | None = None,
        minimum_update_requests: int | None = None,
    ) -> ModelConfigChanged:
        """Change the defaults of new Tests; what is not given keeps its value."""
        return self._http.call(
            endpoints.set_model_config(
                trail_time_window_minutes, trail_bucket_granularity_seconds, minimum_update_requests
            )
        )

    def system_config(self) -> SystemConfig:
        return self._http.call(endpoints.system_config())

    def set_system_config(
        self, *, host: str | None = None, port: int | None = None, debug: bool | None = None
    ) -> SystemConfigChanged:
        return self._http.call(endpoints.set_system_config(host, port, debug))

    def redis_config(
        self, *, host: str | None = None, port: int | None = None, ttl: int | None = None
    ) -> RedisConfigChanged:
        """Switch Scout to another Redis (host and port) and/or change the context TTL
        (seconds). There is no read: `redis_health` shows the Redis in use."""
        return self._http.call(endpoints.redis_config(host, port, ttl))

    def list_webhooks(self) -> list[Webhook]:
        return self._http.call(endpoints.list_webhooks())

    def create_webhook(
        self, url: str, events: Sequence[WebhookEvent | str], *, verify_tls: bool = True
    ) -> Webhook:
        """Register an endpoint for `events`. Keep the answer's `secret`: Scout shows it once,
        and `validate_webhook_payload` needs it."""
        return self._http.call(endpoints.create_webhook(url, events, verify_tls))

    def delete_webhook(self, webhook_id: int) -> JsonObject:
        return self._http.call(endpoints.delete_webhook(webhook_id))

    def ping_webhook(self, webhook_id: int) -> JsonObject:
        """Have Scout send the webhook a PING event."""
        return self._http.call(endpoints.ping_webhook(webhook_id))

    def webhook_deliveries(self, webhook_id: int) -> list[WebhookDelivery]:
        """The webhook's recent deliveries, newest first: how each event fared."""
        return self._http.call(endpoints.webhook_deliveries(webhook_id))

    def stream_logs(
        self,
        *,
        level: str | None = None,
        test_id: str | None = None,
        last_event_id: str | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> Iterator[LogEntry]:
        """Scout's live log entries, as every worker writes them, until the caller stops or
        Scout closes the stream (at shutdown). `level` is the lowest level to show, `test_id`
        keeps one Test's entries, `last_event_id` resumes after an entry seen before (its
        `event_id`). Staff only. Raises ScoutError 503 when Scout loses its Redis: resume with
        the last `event_id` once it is back. The request is made when iteration starts."""
        reader = EventReader()
        call = endpoints.logs_stream(level, test_id, last_event_id)
        for line in self._http.stream(call, by_line=True, timeout=read_timeout):
            entry = reader.feed(line)
            if entry is not None:
                yield entry
