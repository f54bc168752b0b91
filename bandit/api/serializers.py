"""Request and response shapes of the Test endpoints, for the OpenAPI schema.

The services validate input themselves (so the admin console shares every rule); these
serializers describe the contract to clients, to the generated docs and to the schema fuzzer.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class LabelField(serializers.JSONField):
    """A variant label: a string or an integer."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": 256},
                {"type": "number"},
                {"type": "boolean"},
            ],
            "nullable": True,
        },
        "maxProperties": 100,
        "nullable": True,
        "description": "A flat object of strings, numbers, booleans and nulls.",
    }
)
class ContextField(serializers.JSONField):
    pass


class Error(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong, in a sentence.")


class CreateTestRequest(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    variants = serializers.DictField(
        child=LabelField(), help_text="Variant id (a non-negative integer as a key) -> label."
    )
    trail_time_window_minutes = serializers.IntegerField(required=False, min_value=1)
    trail_bucket_granularity_seconds = serializers.IntegerField(required=False, min_value=1)
    minimum_update_requests = serializers.IntegerField(required=False, min_value=0)


class CreateTestResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    model_id = serializers.UUIDField(help_text="The same id, for clients of the original Scout.")
    name = serializers.CharField()
    variants = serializers.DictField(child=LabelField())


class DeleteTestResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()


class TestSummary(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    name = serializers.CharField()
    num_variants = serializers.IntegerField()
    total_predictions = serializers.IntegerField()
    total_updates = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_prediction_at = serializers.DateTimeField(allow_null=True)
    last_update_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    global_variant_rollout = serializers.IntegerField(allow_null=True)


class VariantPerformance(serializers.Serializer):
    predictions = serializers.IntegerField()
    updates = serializers.IntegerField()
    reward_sum = serializers.FloatField()
    average_reward = serializers.FloatField(allow_null=True)
    current_prediction_ratio = serializers.FloatField()


class PredictionTrailEntry(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Start of the time bucket.")
    variant_id = serializers.IntegerField()
    context_keys = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()


class UpdateTrailEntry(PredictionTrailEntry):
    reward = serializers.FloatField(allow_null=True, help_text="Mean reward in the bucket.")
    reward_sum = serializers.FloatField()


class TestDetails(TestSummary):
    variants = serializers.DictField(child=LabelField())
    trail_time_window_minutes = serializers.IntegerField()
    trail_bucket_granularity_seconds = serializers.IntegerField()
    minimum_update_requests_for_stats = serializers.IntegerField()
    performance_summary = serializers.DictField(child=VariantPerformance())
    prediction_trail = PredictionTrailEntry(many=True)
    update_trail = UpdateTrailEntry(many=True)
    context_feature_analysis = serializers.DictField(
        help_text="Per feature value: each variant's traffic share and mean reward."
    )
    exploitation_exploration_ratio = serializers.DictField()


class FetchRequest(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    context = ContextField(required=False)
    request_id = serializers.CharField(required=False, allow_null=True, max_length=128)


class FetchResponse(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    variant_id = serializers.IntegerField()
    variant_label = LabelField()
    recommended_variant = LabelField(help_text="The label, for clients of the original Scout.")
    request_id = serializers.CharField()
    is_global_rollout = serializers.BooleanField()
    degraded = serializers.BooleanField(
        required=False, help_text="Present and true when Redis was unavailable."
    )
    context_stored = serializers.BooleanField(required=False)
    detail = serializers.CharField(required=False)


class UpdateEntry(serializers.Serializer):
    request_id = serializers.CharField(required=False, allow_null=True)
    variant_id = serializers.IntegerField(required=False, allow_null=True)
    decision = LabelField(required=False, help_text="Variant id or label (original Scout).")
    reward = serializers.FloatField()
    context = ContextField(required=False)
    context_used_for_prediction = serializers.BooleanField(required=False)


class UpdateRequest(serializers.Serializer):
    updates = UpdateEntry(many=True, max_length=1000)


class EntryError(serializers.Serializer):
    index = serializers.IntegerField()
    reason = serializers.CharField()


class Duplicate(serializers.Serializer):
    index = serializers.IntegerField()
    request_id = serializers.CharField()


class UpdateResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    processed_updates = serializers.IntegerField()
    failed_updates = serializers.IntegerField()
    duplicate_updates = serializers.IntegerField()
    errors = EntryError(many=True)
    duplicates = Duplicate(many=True)


class RolloutRequest(serializers.Serializer):
    variant = LabelField(help_text="The variant's id, or its label.")


class RolloutResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    global_variant_id = serializers.IntegerField()
    global_variant_label = LabelField()


class ClearRolloutResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()


class TokenCheckResponse(serializers.Serializer):
    valid = serializers.BooleanField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


_MEANINGS = {
    400: "Bad input; the detail names the problem.",
    401: "API protection is on and no valid token (or staff session) was sent.",
    403: "Authenticated, but not allowed (or a session request without its CSRF token).",
    404: "No such Test.",
    413: "The body is larger than the limit.",
    415: "The body is not JSON.",
    429: "Too many failed logins from this address for this user name.",
    503: "Redis or the database is unavailable; retry shortly.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can give, each `{"detail": ...}`."""
    return {code: OpenApiResponse(Error, description=_MEANINGS[code]) for code in codes}


READ_ERRORS = (401, 403, 503)
WRITE_ERRORS = (400, 401, 403, 413, 415, 503)
