"""A Python client of Scout, self-hosted self-optimizing A/B tests.

    from scout_client import Client

    with Client("http://127.0.0.1:8000") as scout:
        decision = scout.fetch_recommended_variant(test_id, {"device": "mobile"}, fallback="Blue")
        ...
        scout.queue_reward(test_id, request_id=decision.request_id, reward=1.0)

`Client` is for threads, `AsyncClient` for asyncio; both raise `ScoutError` for any failure
and check webhook signatures with `validate_webhook_payload`.
"""

from scout_client._http import RetryPolicy
from scout_client._version import __version__
from scout_client.async_client import AsyncClient
from scout_client.client import Client
from scout_client.errors import ScoutConnectionError, ScoutError
from scout_client.logs import LogEntry
from scout_client.models import (
    WEBHOOK_EVENTS,
    CreatedTest,
    Duplicate,
    EntryError,
    Label,
    MetricSeries,
    ModelSettings,
    RankedVariant,
    Ranking,
    Recommendation,
    RewardEntry,
    RewardResult,
    TestDetails,
    TestSummary,
    VariantPerformance,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    Winner,
)
from scout_client.rewards_queue import QueueOptions, QueueStats, RejectedReward
from scout_client.webhooks import (
    SIGNATURE_HEADER,
    WebhookSignatureError,
    sign_webhook_payload,
    validate_webhook_payload,
)

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "AsyncClient",
    "Client",
    "CreatedTest",
    "Duplicate",
    "EntryError",
    "Label",
    "LogEntry",
    "MetricSeries",
    "ModelSettings",
    "QueueOptions",
    "QueueStats",
    "RankedVariant",
    "Ranking",
    "Recommendation",
    "RejectedReward",
    "RetryPolicy",
    "RewardEntry",
    "RewardResult",
    "ScoutConnectionError",
    "ScoutError",
    "TestDetails",
    "TestSummary",
    "VariantPerformance",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSignatureError",
    "Winner",
    "__version__",
    "sign_webhook_payload",
    "validate_webhook_payload",
]
