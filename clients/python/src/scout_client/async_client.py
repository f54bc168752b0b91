"""`AsyncClient`: the same surface as `Client`, for asyncio code.

Every method that talks to Scout is a coroutine; `queue_reward` is not (it only appends to the
queue, whose worker is an asyncio task). There is no exit hook for an event loop: close the
client (`await client.close()`, or `async with`) before its loop ends, or queued rewards are
lost. The docstrings of `Client` hold for the methods of the same name here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

import httpx

from scout_client import _endpoints as endpoints
from scout_client._endpoints import Context, Time
from scout_client._http import AsyncTransport, RetryPolicy
from scout_client.client import DEFAULT_DECISION_TIMEOUT, DEFAULT_TIMEOUT, reward_entry
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
from scout_client.rewards_queue import AsyncRewardQueue, QueueOptions, QueueStats


class AsyncClient:
    """An asyncio client of one Scout server; see `Client` for the arguments."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = AsyncTransport(base_url, token, auth, timeout, transport)
        self.decision_timeout = decision_timeout
        self.retry = retry or RetryPolicy()
        self._queue = AsyncRewardQueue(self._send_queued, reward_queue or QueueOptions())

    @property
    def base_url(self) -> str:
        return self._http.base_url

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Send the queued rewards, then close the connections."""
        await self._queue.close()
        await self._http.close()

    aclose = close

    # --- Decisions ----------------------------------------------------------------------------

    async def fetch_recommended_variant(
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
        request_id = endpoints.new_request_id() if request_id is None else request_id
        call = endpoints.fetch_recommended_variant(
            test_id, context, request_id, unit_id, eligible_variants
        )
        try:
            return await self._http.call(call, self._decision_timeout(timeout))
        except ScoutError as error:
            return endpoints.fallback_for(error, test_id, fallback, request_id)

    async def fetch_ranked_variants(
        self,
        test_id: str,
        context: Context | None = None,
        *,
        request_id: str | None = None,
        unit_id: str | None = None,
        eligible_variants: Sequence[Label] | None = None,
        timeout: float | None = None,
    ) -> Ranking:
        request_id = endpoints.new_request_id() if request_id is None else request_id
        call = endpoints.fetch_ranked_variants(
            test_id, context, request_id, unit_id, eligible_variants
        )
        return await self._http.call(call, self._decision_timeout(timeout))

    def _decision_timeout(self, timeout: float | None) -> float:
        return self.decision_timeout if timeout is None else timeout

    # --- Rewards ------------------------------------------------------------------------------

    async def update_model(
        self,
        test_id: str,
        updates: Sequence[RewardEntry | Mapping[str, Any]],
        *,
        retry: RetryPolicy | None = None,
    ) -> RewardResult:
        call, repeatable = endpoints.update_model(test_id, updates)
        result, attempts = await self._http.call_with_retries(
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
        """Queue a reward (from inside the event loop); it returns at once."""
        self._queue.put(test_id, reward_entry(request_id, reward, variant_id, context))

    async def flush(self, timeout: float | None = None) -> bool:
        return await self._queue.flush(timeout)

    def queue_stats(self) -> QueueStats:
        return self._queue.stats()

    async def _send_queued(self, test_id: str, entries: list[JsonObject]) -> RewardResult:
        return await self.update_model(test_id, entries)

    # --- Tests --------------------------------------------------------------------------------

    async def create_model(
        self,
        name: str,
        variants: Mapping[int, Label] | Sequence[Label],
        **settings: Unpack[ModelSettings],
    ) -> CreatedTest:
        return await self._http.call(endpoints.create_model(name, variants, settings))

    async def delete_model(self, test_id: str) -> DeletedTest:
        return await self._http.call(endpoints.delete_model(test_id))

    async def models(self) -> list[TestSummary]:
        return await self._http.call(endpoints.models())

    async def model_details(self, test_id: str) -> TestDetails:
        return await self._http.call(endpoints.model_details(test_id))

    async def rollout_global_variant(self, test_id: str, variant: Label) -> RolloutSet:
        return await self._http.call(endpoints.rollout_global_variant(test_id, variant))

    async def clear_global_variant(self, test_id: str) -> RolloutCleared:
        return await self._http.call(endpoints.clear_global_variant(test_id))

    async def add_variants(self, test_id: str, variants: Mapping[int, Label]) -> VariantsAdded:
        return await self._http.call(endpoints.add_variants(test_id, variants))

    async def retire_variant(self, test_id: str, variant: Label) -> VariantRetired:
        return await self._http.call(endpoints.retire_variant(test_id, variant))

    async def set_holdout_share(self, test_id: str, holdout_share: float) -> HoldoutShareSet:
        return await self._http.call(endpoints.set_holdout_share(test_id, holdout_share))

    async def evaluation(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> Evaluation:
        return await self._http.call(endpoints.evaluation(test_id, start, end))

    async def metrics(self, test_id: str) -> dict[str, Any]:
        return await self._http.call(endpoints.metrics(test_id))

    async def metric_series(
        self, test_id: str, metric: str, *, start: Time | None = None, end: Time | None = None
    ) -> MetricSeries:
        return await self._http.call(endpoints.metric_series(test_id, metric, start, end))

    async def decision_log(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        call = endpoints.decision_log(test_id, start, end, "jsonl")
        async for line in self._http.stream(call, by_line=True):
            if line:
                yield json.loads(line)

    async def decision_log_csv(
        self, test_id: str, *, start: Time | None = None, end: Time | None = None
    ) -> AsyncIterator[str]:
        call = endpoints.decision_log(test_id, start, end, "csv")
        async for chunk in self._http.stream(call, by_line=False):
            yield chunk

    async def check_token(self) -> TokenCheck:
        return await self._http.call(endpoints.check_token())

    # --- System (/admin/: staff credentials, `auth`) ------------------------------------------

    async def get_protection(self) -> Protection:
        return await self._http.call(endpoints.get_protection())

    async def set_protection(self, protected_api: bool) -> ProtectionChanged:
        return await self._http.call(endpoints.set_protection(protected_api))

    async def generate_token(self) -> NewToken:
        return await self._http.call(endpoints.generate_token())

    async def redis_health(self) -> RedisHealth:
        return await self._http.call(endpoints.redis_health())

    async def model_config(self) -> ModelConfig:
        return await self._http.call(endpoints.model_config())

    async def set_model_config(
        self,
        *,
        trail_time_window_minutes: int | None = None,
        trail_bucket_granularity_seconds: int | None = None,
        minimum_update_requests: int | None = None,
    ) -> ModelConfigChanged:
        return await self._http.call(
            endpoints.set_model_config(
                trail_time_window_minutes, trail_bucket_granularity_seconds, minimum_update_requests
            )
        )

    async def system_config(self) -> SystemConfig:
        return await self._http.call(endpoints.system_config())

    async def set_system_config(
        self, *, host: str | None = None, port: int | None = None, debug: bool | None = None
    ) -> SystemConfigChanged:
        return await self._http.call(endpoints.set_system_config(host, port, debug))

    async def redis_config(
        self, *, host: str | None = None, port: int | None = None, ttl: int | None = None
    ) -> RedisConfigChanged:
        return await self._http.call(endpoints.redis_config(host, port, ttl))

    async def list_webhooks(self) -> list[Webhook]:
        return await self._http.call(endpoints.list_webhooks())

    async def create_webhook(
        self, url: str, events: Sequence[WebhookEvent | str], *, verify_tls: bool = True
    ) -> Webhook:
        return await self._http.call(endpoints.create_webhook(url, events, verify_tls))

    async def delete_webhook(self, webhook_id: int) -> JsonObject:
        return await self._http.call(endpoints.delete_webhook(webhook_id))

    async def ping_webhook(self, webhook_id: int) -> JsonObject:
        return await self._http.call(endpoints.ping_webhook(webhook_id))

    async def webhook_deliveries(self, webhook_id: int) -> list[WebhookDelivery]:
        """The webhook's recent deliveries, newest first: how each event fared."""
        return await self._http.call(endpoints.webhook_deliveries(webhook_id))

    async def stream_logs(
        self,
        *,
        level: str | None = None,
        test_id: str | None = None,
        last_event_id: str | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> AsyncIterator[LogEntry]:
        """Scout's live log entries; see `Client.stream_logs`."""
        reader = EventReader()
        call = endpoints.logs_stream(level, test_id, last_event_id)
        async for line in self._http.stream(call, by_line=True, timeout=read_timeout):
            entry = reader.feed(line)
            if entry is not None:
                yield entry
