"""What each endpoint of Scout's contract sends and how its answer is read.

One function per endpoint, building a `Call`; the sync and async clients run the same calls,
so the two cannot drift apart in what they send. Paths are the contract's (`/api/...` for
Tests, `/admin/...` for the system), without a trailing slash, which Scout accepts either way.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from scout_client._http import Call
from scout_client.errors import ScoutError
from scout_client.logs import log_query
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

logger = logging.getLogger("scout_client")

Context = Mapping[str, str | int | float | bool | None]
Time = datetime | str
"""A time for a query: a datetime (one without a timezone is read by Scout as UTC) or an ISO
8601 string."""


def fallback_for(
    error: ScoutError, test_id: str, fallback: Label | None, request_id: str
) -> Recommendation:
    """The caller's fallback for a decision Scout could not make in time (no answer, or a
    5xx); `error` itself when there is no fallback or the request was at fault (a 4xx, such
    as an unknown Test, is a mistake to fix, not an outage to ride out)."""
    if fallback is None or not error.transient:
        raise error
    logger.debug("Falling back to %r for Test %s: %s", fallback, test_id, error.detail)
    return Recommendation.for_fallback(test_id, fallback, request_id, error.detail)


def _body(body: Any) -> Any:
    """An answer taken as it is: a TypedDict is the JSON object itself."""
    return body


def _api(name: str, test_id: str | None = None) -> str:
    return f"/api/{name}" if test_id is None else f"/api/{name}/{quote(str(test_id), safe='')}"


def new_request_id() -> str:
    """A request id made here, as Scout would make one: so that every decision has one before
    it is asked for, even one that falls back, and asking again answers the same decision."""
    return uuid.uuid4().hex


def variant_map(variants: Mapping[int, Label] | Sequence[Label]) -> dict[str, Label]:
    """Variants as Scout takes them, id -> label; a sequence of labels gets ids 0, 1, ..."""
    if isinstance(variants, str | bytes):
        raise TypeError("variants must be a mapping of ids to labels or a list of labels.")
    if isinstance(variants, Mapping):
        return {str(variant_id): label for variant_id, label in variants.items()}
    return {str(variant_id): label for variant_id, label in enumerate(variants)}


def _time_query(start: Time | None, end: Time | None) -> dict[str, str]:
    query = {}
    for name, value in (("from", start), ("to", end)):
        if value is not None:
            query[name] = value.isoformat() if isinstance(value, datetime) else value
    return query


def _given(**fields: Any) -> JsonObject:
    """The fields that were given (None means: not sent, Scout's default)."""
    return {name: value for name, value in fields.items() if value is not None}


# --- Tests ------------------------------------------------------------------------------------


def create_model(
    name: str, variants: Mapping[int, Label] | Sequence[Label], settings: ModelSettings
) -> Call[CreatedTest]:
    given = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in settings.items()
    }
    body = {"name": name, "variants": variant_map(variants), **given}
    return Call("POST", _api("create_model"), CreatedTest.from_json, body=body)


def delete_model(test_id: str) -> Call[DeletedTest]:
    return Call("POST", _api("delete_model", test_id), _body)


def _summaries(body: list[JsonObject]) -> list[TestSummary]:
    return [TestSummary.from_json(entry) for entry in body]


def models() -> Call[list[TestSummary]]:
    return Call("GET", _api("models"), _summaries)


def model_details(test_id: str) -> Call[TestDetails]:
    return Call("GET", _api("model_details", test_id), TestDetails.from_json)


def _decision(
    test_id: str,
    context: Context | None,
    request_id: str,
    unit_id: str | None,
    eligible_variants: Sequence[Label] | None,
) -> JsonObject:
    body: JsonObject = {"cb_model_id": test_id, "request_id": request_id}
    if context is not None:
        body["context"] = dict(context)
    if unit_id is not None:
        body["unit_id"] = unit_id
    if eligible_variants is not None:
        body["eligible_variants"] = list(eligible_variants)
    return body


def fetch_recommended_variant(
    test_id: str,
    context: Context | None,
    request_id: str,
    unit_id: str | None,
    eligible_variants: Sequence[Label] | None,
) -> Call[Recommendation]:
    body = _decision(test_id, context, request_id, unit_id, eligible_variants)
    return Call("POST", _api("fetch_recommended_variant"), Recommendation.from_json, body=body)


def fetch_ranked_variants(
    test_id: str,
    context: Context | None,
    request_id: str,
    unit_id: str | None,
    eligible_variants: Sequence[Label] | None,
) -> Call[Ranking]:
    body = _decision(test_id, context, request_id, unit_id, eligible_variants)
    return Call("POST", _api("fetch_ranked_variants"), Ranking.from_json, body=body)


def update_model(
    test_id: str, updates: Sequence[RewardEntry | Mapping[str, Any]]
) -> tuple[Call[RewardResult], bool]:
    """The call, and whether it is safe to repeat: when every entry names its decision by
    `request_id`, Scout counts each once however often the batch is sent."""
    entries = [dict(entry) for entry in updates]
    repeatable = all(entry.get("request_id") for entry in entries)
    call = Call(
        "POST", _api("update_model", test_id), RewardResult.from_json, body={"updates": entries}
    )
    return call, repeatable


def rollout_global_variant(test_id: str, variant: Label) -> Call[RolloutSet]:
    return Call("POST", _api("rollout_global_variant", test_id), _body, body={"variant": variant})


def clear_global_variant(test_id: str) -> Call[RolloutCleared]:
    return Call("POST", _api("clear_global_variant", test_id), _body)


def add_variants(test_id: str, variants: Mapping[int, Label]) -> Call[VariantsAdded]:
    body = {"variants": variant_map(variants)}
    return Call("POST", _api("add_variants", test_id), _body, body=body)


def retire_variant(test_id: str, variant: Label) -> Call[VariantRetired]:
    return Call("POST", _api("retire_variant", test_id), _body, body={"variant": variant})


def set_holdout_share(test_id: str, holdout_share: float) -> Call[HoldoutShareSet]:
    body = {"holdout_share": holdout_share}
    return Call("POST", _api("set_holdout_share", test_id), _body, body=body)


def evaluation(test_id: str, start: Time | None, end: Time | None) -> Call[Evaluation]:
    return Call("GET", _api("evaluation", test_id), _body, params=_time_query(start, end))


def metrics(test_id: str) -> Call[dict[str, Any]]:
    return Call("GET", _api("metrics", test_id), _body)


def metric_series(
    test_id: str, metric: str, start: Time | None, end: Time | None
) -> Call[MetricSeries]:
    path = f"{_api('metrics', test_id)}/{quote(metric, safe='')}"
    return Call("GET", path, _body, params=_time_query(start, end))


def decision_log(test_id: str, start: Time | None, end: Time | None, kind: str) -> Call[None]:
    """Streamed line by line (see the transports' `lines`), not read as one JSON answer."""
    params = {**_time_query(start, end), "format": kind}
    return Call("GET", _api("decision_log", test_id), _body, params=params)


def logs_stream(level: str | None, test_id: str | None, last_event_id: str | None) -> Call[None]:
    """Streamed line by line and read by `logs.EventReader` (staff only)."""
    params = log_query(level, test_id, last_event_id)
    return Call("GET", "/logs/stream", _body, params=params, staff=True)


def check_token() -> Call[TokenCheck]:
    return Call("GET", _api("token/check"), _body)


# --- System (/admin/) -------------------------------------------------------------------------


def _admin(name: str, body: object = None, read: Any = _body) -> Call[Any]:
    method = "GET" if body is None else "POST"
    return Call(method, f"/admin/{name}", read, body=body, staff=True)


def get_protection() -> Call[Protection]:
    return _admin("get_protection")


def set_protection(protected_api: bool) -> Call[ProtectionChanged]:
    return _admin("set_protection", {"protected_api": protected_api})


def generate_token() -> Call[NewToken]:
    return _admin("generate_token", {})


def redis_health() -> Call[RedisHealth]:
    return _admin("redis_health")


def model_config() -> Call[ModelConfig]:
    return _admin("model_config")


def set_model_config(
    trail_time_window_minutes: int | None,
    trail_bucket_granularity_seconds: int | None,
    minimum_update_requests: int | None,
) -> Call[ModelConfigChanged]:
    body = _given(
        trail_time_window_minutes=trail_time_window_minutes,
        trail_bucket_granularity_seconds=trail_bucket_granularity_seconds,
        minimum_update_requests=minimum_update_requests,
    )
    return _admin("model_config", body)


def system_config() -> Call[SystemConfig]:
    return _admin("system_config")


def set_system_config(
    host: str | None, port: int | None, debug: bool | None
) -> Call[SystemConfigChanged]:
    return _admin("system_config", _given(host=host, port=port, debug=debug))


def redis_config(host: str | None, port: int | None, ttl: int | None) -> Call[RedisConfigChanged]:
    return _admin("redis_config", _given(host=host, port=port, ttl=ttl))


def _webhooks(body: JsonObject) -> list[Webhook]:
    return [Webhook.from_json(entry) for entry in body["webhooks"]]


def list_webhooks() -> Call[list[Webhook]]:
    return _admin("webhooks", read=_webhooks)


def create_webhook(
    url: str, events: Sequence[WebhookEvent | str], verify_tls: bool
) -> Call[Webhook]:
    body = {"url": url, "events": list(events), "verify_tls": verify_tls}
    return _admin("webhooks", body, read=Webhook.from_json)


def delete_webhook(webhook_id: int) -> Call[JsonObject]:
    return _admin(f"webhooks/{int(webhook_id)}/delete", {})


def ping_webhook(webhook_id: int) -> Call[JsonObject]:
    return _admin(f"webhooks/{int(webhook_id)}/ping", {})


def _deliveries(body: JsonObject) -> list[WebhookDelivery]:
    return [WebhookDelivery.from_json(entry) for entry in body["deliveries"]]


def webhook_deliveries(webhook_id: int) -> Call[list[WebhookDelivery]]:
    return _admin(f"webhooks/{int(webhook_id)}/deliveries", read=_deliveries)
