"""The input serializers, in this process: each field takes exactly the JSON type it documents,
the limits are the configured ones, and the OpenAPI schema states the limits that are enforced.
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import ValidationError

from api import serializers as shapes
from api import system_serializers as system_shapes
from api.validation import first_message, validated
from bandit.services import EntryRefused, RewardInput
from core.errors import Conflict

pytestmark = pytest.mark.django_db

VARIANTS = {"0": "Blue", "1": "Green"}


def refusal(serializer: type, data: object) -> str:
    with pytest.raises(ValidationError) as refused:
        validated(serializer, data)
    return first_message(refused.value.detail)


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"variants": VARIANTS}, "name"),
        ({"name": 5, "variants": VARIANTS}, "name must be a non-empty string"),
        ({"name": "   ", "variants": VARIANTS}, "name must be a non-empty string"),
        ({"name": "a\x00b", "variants": VARIANTS}, "name must not contain NUL"),
        ({"name": "\ud800", "variants": VARIANTS}, "name must be valid Unicode"),
        ({"name": "x", "variants": {"0": "a"}}, "between 2 and 1000 variants"),
        ({"name": "x", "variants": {"0": "a", "-1": "b"}}, "not a non-negative integer"),
        ({"name": "x", "variants": {"0": "a", "1": True}}, "string or an integer"),
        ({"name": "x", "variants": VARIANTS, "trail_time_window_minutes": "5"}, "integer"),
        ({"name": "x", "variants": VARIANTS, "trail_time_window_minutes": 0}, "between 1 and"),
        ({"name": "x", "variants": VARIANTS, "minimum_update_requests": 1.5}, "integer"),
        (
            {
                "name": "x",
                "variants": VARIANTS,
                "trail_time_window_minutes": 10_080,
                "trail_bucket_granularity_seconds": 1,
            },
            "buckets",
        ),
    ],
)
def test_a_new_test_is_refused_with_a_sentence_naming_the_field(body, mentions):
    assert mentions in refusal(shapes.CreateTestRequest, body)


@pytest.mark.parametrize("labels", [{"0": "a", "1": "a"}, {"0": 3, "1": "3"}, {"0": 3, "1": 3.0}])
def test_two_variants_with_one_label_are_a_conflict(labels):
    """JSON Schema cannot state that values differ, so the schema's 400s stop short of it: a
    409, which the schema documents, says so instead."""
    with pytest.raises(Conflict, match="labels must be unique"):
        validated(shapes.CreateTestRequest, {"name": "x", "variants": labels})


def test_a_number_with_a_zero_fraction_is_that_integer():
    body = validated(
        shapes.CreateTestRequest,
        {"name": "x", "variants": {"0": 1.0, "1": "b"}, "minimum_update_requests": 7.0},
    )
    assert body["variants"][0] == 1 and isinstance(body["variants"][0], int)
    assert body["test_settings"].minimum_update_requests == 7


def test_a_new_test_comes_out_typed_with_the_defaults_filled_in():
    body = validated(
        shapes.CreateTestRequest, {"name": "  Checkout ", "variants": {"1": 2, "0": "a"}}
    )
    assert body["name"] == "Checkout"
    assert body["variants"] == {1: 2, 0: "a"}
    assert body["test_settings"].minimum_update_requests == 50  # SCOUT_MIN_UPDATE_REQUESTS
    assert body["sampling"] == "focused"
    assert body["prior"] == "pooled"
    assert body["forgetting"] == "on_change"
    assert body["test_settings"].trail_time_window_minutes == 60


def test_limits_are_read_from_the_settings(settings):
    settings.SCOUT_MAX_NAME_LENGTH = 5
    settings.SCOUT_MAX_CONTEXT_KEYS = 2
    settings.SCOUT_MAX_UPDATES_PER_BATCH = 3
    assert "at most 5 characters" in refusal(
        shapes.CreateTestRequest, {"name": "abcdef", "variants": VARIANTS}
    )
    context = {"cb_model_id": "x", "context": {"a": 1, "b": 2, "c": 3}}
    assert "the limit is 2" in refusal(shapes.FetchRequest, context)
    updates = {"updates": [{"reward": 1}] * 4}
    assert "at most 3 are accepted" in refusal(shapes.UpdateRequest, updates)


def test_a_batch_refuses_bad_entries_one_by_one():
    entries = validated(
        shapes.UpdateRequest,
        {
            "updates": [
                {"request_id": "r1", "reward": 1},
                "not an object",
                {"variant_id": 0, "reward": True},
                {"variant_id": 0},
                {"decision": "Blue", "reward": 0.5, "device": "mobile"},
                {"variant_id": 1.5, "reward": 1},
                {"variant_id": 0, "reward": 1, "context": {"deep": {"er": 1}}},
            ]
        },
    )["updates"]
    assert entries[0] == RewardInput(
        index=0,
        reward=1.0,
        variant=None,
        by_label=False,
        request_id="r1",
        context={},
        inline=False,
    )
    assert entries[1] == EntryRefused(1, "each update must be a JSON object.")
    assert entries[2] == EntryRefused(2, "reward must be a finite number.")
    assert entries[3] == EntryRefused(3, "reward is required.")
    assert entries[4] == RewardInput(4, 0.5, "Blue", True, None, {"device": "mobile"}, True)
    assert entries[5] == EntryRefused(5, "variant_id must be a variant id (an integer).")
    assert isinstance(entries[6], EntryRefused) and "nested" in entries[6].reason


@pytest.mark.parametrize(
    ("serializer", "body", "mentions"),
    [
        (system_shapes.Protection, {}, "protected_api must be a boolean"),
        (system_shapes.Protection, {"protected_api": "yes"}, "protected_api must be a boolean"),
        (system_shapes.SystemConfigChange, {}, "at least one of host, port, debug"),
        (system_shapes.SystemConfigChange, {"host": "bad host"}, "host name or an IP"),
        (system_shapes.SystemConfigChange, {"host": "127.0.0.1\x00"}, "NUL"),
        (system_shapes.SystemConfigChange, {"port": 70_000}, "between 1 and 65535"),
        (system_shapes.RedisConfigChange, {"ttl": 0}, "ttl must be an integer between"),
        (system_shapes.RedisConfigChange, {"host": "-bad.example"}, "host name or an IP"),
        (system_shapes.TestDefaultsChange, {}, "Send at least one of"),
        (system_shapes.TestDefaultsChange, {"time_window_minutes": 0}, "between 1 and"),
    ],
)
def test_system_changes_are_refused_with_a_sentence_naming_the_field(serializer, body, mentions):
    assert mentions in refusal(serializer, body)


def test_hosts_may_be_names_or_addresses():
    for host in ("localhost", "redis.internal", "10.0.0.7", "::1", "cache-1.example.com."):
        assert validated(system_shapes.RedisConfigChange, {"host": host})["host"] == host


def test_the_schema_states_the_enforced_limits(settings):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    parts = schema["components"]["schemas"]
    create = parts["CreateTestRequestRequest"]["properties"]
    assert create["name"]["maxLength"] == settings.SCOUT_MAX_NAME_LENGTH
    assert create["variants"]["maxProperties"] == settings.SCOUT_MAX_VARIANTS
    assert create["variants"]["minProperties"] == 2
    assert create["trail_time_window_minutes"]["minimum"] == 1
    assert create["trail_time_window_minutes"]["maximum"] == 10_080
    fetch = parts["FetchRequestRequest"]["properties"]
    assert fetch["context"]["maxProperties"] == settings.SCOUT_MAX_CONTEXT_KEYS
    assert fetch["request_id"]["maxLength"] == settings.SCOUT_MAX_REQUEST_ID_LENGTH
    updates = parts["UpdateRequestRequest"]["properties"]["updates"]
    assert updates["maxItems"] == settings.SCOUT_MAX_UPDATES_PER_BATCH
    assert parts["UpdateEntryRequest"]["properties"]["reward"]["maximum"] == 1e12
