"""The strict fields of the Test endpoints' bodies: variant labels, a Test's variants, a
context, a request id, a Test id, a list of eligible variants and what a Test does at its
end.

Each field takes exactly the JSON type it documents, within limits read from the settings, and
states its OpenAPI schema; the request serializers (api.serializers) are built from them, so a
rule about a label or a context lives here once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.validation import (
    NO_NUL_PATTERN,
    NON_BLANK_PATTERN,
    VARIANT_ID_PATTERN,
    LiveMaxLength,
    as_label,
    label_problem,
    text_problem,
)
from bandit.policy import is_number
from bandit.services import Schedule
from core.errors import Conflict

# Rewards and numeric context values beyond this magnitude are refused: their squares must stay
# far from overflowing the sums Scout keeps.
MAX_ABS_NUMBER = 1e12


# An integer label stays within what every JSON client reads exactly (JavaScript's safe integers).
MAX_INTEGER_LABEL = 2**53 - 1


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class LabelField(serializers.JSONField):
    """A variant label or reference: a string or an integer."""

    def __init__(self, *, noun: str = "a string or an integer", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.noun = noun

    # DRF's stubs give a JSONField's value as a dict or a list; this one takes a label.
    def to_internal_value(self, data: object) -> str | int:  # type: ignore[override]
        data = as_label(data)
        if label_problem(data):
            raise serializers.ValidationError(f"{self.field_name} must be {self.noun}.")
        return data  # type: ignore[return-value]


def _check_label(variant_id: str, label: object) -> str | int:
    label = as_label(label)
    if label_problem(label):
        raise serializers.ValidationError(
            f"variants.{variant_id}: a label must be a string or an integer."
        )
    if isinstance(label, int) and abs(label) > MAX_INTEGER_LABEL:
        raise serializers.ValidationError(
            f"variants.{variant_id}: an integer label is at most {MAX_INTEGER_LABEL} in "
            "magnitude, so that every JSON client reads it back exactly."
        )
    if isinstance(label, str):
        if not label.strip():
            raise serializers.ValidationError(f"variants.{variant_id}: a label must not be empty.")
        problem = text_problem(label, nul_allowed=False)
        if problem:
            raise serializers.ValidationError(f"variants.{variant_id}: a label {problem}.")
    if len(str(label)) > settings.SCOUT_MAX_LABEL_LENGTH:
        raise serializers.ValidationError(
            f"variants.{variant_id}: a label is at most {settings.SCOUT_MAX_LABEL_LENGTH} "
            "characters long."
        )
    return label  # type: ignore[return-value]


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": VARIANT_ID_PATTERN},
        "additionalProperties": {
            "oneOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": settings.SCOUT_MAX_LABEL_LENGTH,
                    "pattern": NON_BLANK_PATTERN,
                },
                {"type": "integer", "minimum": -MAX_INTEGER_LABEL, "maximum": MAX_INTEGER_LABEL},
            ]
        },
        "minProperties": 2,
        "maxProperties": settings.SCOUT_MAX_VARIANTS,
        "description": (
            "Variant id (a non-negative integer, as a key) -> its label. Labels are unique "
            "within a Test: two variants with one label answer 409."
        ),
    }
)
class VariantsField(serializers.JSONField):
    """Variant ids are non-negative integers (as JSON keys); labels unique strings or ints.
    A Test is created with at least two; variants added to a Test are at least one."""

    def __init__(self, *, adding: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.adding = adding

    # DRF's stubs give a JSONField's value as a str-keyed dict or a list; these keys are ints.
    def to_internal_value(self, data: object) -> dict[int, str | int]:  # type: ignore[override]
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "variants must be an object mapping variant ids to labels."
            )
        limit = settings.SCOUT_MAX_VARIANTS
        if self.adding and not 1 <= len(data) <= limit:
            raise serializers.ValidationError(
                f"variants must name between 1 and {limit} variants to add, got {len(data)}."
            )
        if not self.adding and not 2 <= len(data) <= limit:
            raise serializers.ValidationError(
                f"A Test needs between 2 and {limit} variants, got {len(data)}."
            )
        clean: dict[int, str | int] = {}
        seen: dict[str, str] = {}
        for key, label in data.items():
            text = str(key).strip()
            if not text.isascii() or not text.isdigit() or len(text) > 9:
                raise serializers.ValidationError(
                    f"variants: the key {key!r} is not a non-negative integer variant id."
                )
            variant_id = int(text)
            if variant_id in clean:
                raise serializers.ValidationError(f"variants: the id {variant_id} appears twice.")
            label = _check_label(text, label)
            if str(label) in seen:
                raise Conflict(
                    f"variants: the label {label!r} is used by variants {seen[str(label)]} and "
                    f"{text}; labels must be unique."
                )
            seen[str(label)] = text
            clean[variant_id] = label
        return clean


def check_context(context: object) -> dict[str, Any]:
    """A context is a flat object of strings, finite numbers, booleans and nulls, within the
    configured limits."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise serializers.ValidationError("context must be a JSON object.")
    if len(context) > settings.SCOUT_MAX_CONTEXT_KEYS:
        raise serializers.ValidationError(
            f"context has {len(context)} keys; the limit is {settings.SCOUT_MAX_CONTEXT_KEYS}."
        )
    for key, value in context.items():
        if not key or len(key) > settings.SCOUT_MAX_CONTEXT_KEY_LENGTH:
            raise serializers.ValidationError(
                f"context keys must be 1 to {settings.SCOUT_MAX_CONTEXT_KEY_LENGTH} characters "
                f"long; got {key[:40]!r}."
            )
        if text_problem(key):
            raise serializers.ValidationError(
                f"context keys {text_problem(key)}; got {key[:40]!r}."
            )
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            if len(value) > settings.SCOUT_MAX_CONTEXT_VALUE_LENGTH:
                raise serializers.ValidationError(
                    f"context[{key!r}] is longer than "
                    f"{settings.SCOUT_MAX_CONTEXT_VALUE_LENGTH} characters."
                )
            if text_problem(value):
                raise serializers.ValidationError(f"context[{key!r}] {text_problem(value)}.")
        elif isinstance(value, int | float):
            if not is_number(value, MAX_ABS_NUMBER):
                raise serializers.ValidationError(
                    f"context[{key!r}] must be a finite number of magnitude at most "
                    f"{MAX_ABS_NUMBER:g}."
                )
        else:
            raise serializers.ValidationError(
                f"context[{key!r}] must be a string, number, boolean or null; "
                "nested objects and lists are not supported."
            )
    return context


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"minLength": 1, "maxLength": settings.SCOUT_MAX_CONTEXT_KEY_LENGTH},
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": settings.SCOUT_MAX_CONTEXT_VALUE_LENGTH},
                {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER},
                {"type": "boolean"},
                {"type": "null"},
            ],
        },
        "maxProperties": settings.SCOUT_MAX_CONTEXT_KEYS,
        "description": "A flat object of strings, numbers, booleans and nulls.",
    }
)
class ContextField(serializers.JSONField):
    def to_internal_value(self, data: object) -> dict[str, Any]:
        return check_context(data)


class RequestIdField(serializers.CharField):
    """A client's id for one decision; absent or null means Scout makes one up. (Also a
    unit's id, with `name="unit_id"`: the same rules.)"""

    schema_pattern = NO_NUL_PATTERN  # published by api.schema

    def __init__(self, *, name: str = "request_id", **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("error_messages", {"blank": f"{name} must be a non-empty string."})
        super().__init__(trim_whitespace=False, **kwargs)  # an opaque id, taken as sent
        self.validators.append(LiveMaxLength("SCOUT_MAX_REQUEST_ID_LENGTH"))
        self.name = name

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str) or not data:
            raise serializers.ValidationError(f"{self.name} must be a non-empty string.")
        if len(data) > settings.SCOUT_MAX_REQUEST_ID_LENGTH:
            raise serializers.ValidationError(
                f"{self.name} is at most {settings.SCOUT_MAX_REQUEST_ID_LENGTH} characters long."
            )
        if text_problem(data):
            raise serializers.ValidationError(f"{self.name} {text_problem(data)}.")
        return data


class TestIdField(serializers.CharField):
    """A Test's id as a client sent it; one that is not a UUID names no Test (404), whatever
    characters it holds (so DRF's refusal of NUL characters is left out)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]

    def to_internal_value(self, data: object) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int):
            raise serializers.ValidationError(f"{self.field_name} must be a Test id (a UUID).")
        return str(data)


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    }
)
class EligibleVariantsField(serializers.JSONField):
    """A non-empty list of variant ids or labels."""

    # DRF's stubs give a JSONField's value as a dict or a list; this one is a list of labels.
    def to_internal_value(self, data: object) -> list[str | int]:  # type: ignore[override]
        if not isinstance(data, list):
            raise serializers.ValidationError(
                "eligible_variants must be a list of variant ids or labels."
            )
        if not data:
            raise serializers.ValidationError("eligible_variants must name at least one variant.")
        if len(data) > settings.SCOUT_MAX_VARIANTS:
            raise serializers.ValidationError(
                f"eligible_variants names at most {settings.SCOUT_MAX_VARIANTS} variants."
            )
        labels = [as_label(value) for value in data]
        for position, label in enumerate(labels):
            if label_problem(label):
                raise serializers.ValidationError(
                    f"eligible_variants[{position}] must be a variant id or label (a string or "
                    "an integer)."
                )
        return labels  # type: ignore[return-value]


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class OnEndField(serializers.JSONField):
    """What a Test does at its end: `keep`, `rollout_best`, or a variant's id or label to roll
    out. Its value is (Schedule.KEEP | ROLLOUT_BEST | VARIANT, the variant or None)."""

    PROBLEM = 'on_end must be "keep", "rollout_best", or the id or label of a variant.'
    default_error_messages = {"null": PROBLEM}

    def to_internal_value(self, data: object) -> tuple[str, str | int | None]:  # type: ignore[override]
        if data in (Schedule.KEEP, Schedule.ROLLOUT_BEST):
            return str(data), None
        label = as_label(data)
        if label_problem(label):
            raise serializers.ValidationError(self.PROBLEM)
        return Schedule.VARIANT, label  # type: ignore[return-value]
