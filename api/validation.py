"""Strict fields for the input serializers, and the one way to run a serializer.

DRF's own fields are lenient (an IntegerField takes "5" and 5.0, a BooleanField "yes", a
CharField turns 5 into "5"); Scout's contract is not, so each field here accepts exactly the
JSON type it documents and refuses anything else with a sentence that names the field. Each is
a subclass of the DRF field of its type, so drf-spectacular publishes its bounds (minimum,
maximum, maxLength) in the OpenAPI schema: the documented limits are the enforced ones.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar

from django.conf import settings
from django.core.validators import MaxLengthValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField

from bandit.policy import is_number
from core.time import iso

S = TypeVar("S", bound=serializers.Serializer)


def first_message(errors: Any, path: str = "") -> str:
    """Flatten DRF's nested validation errors into one readable sentence."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = key if key != "non_field_errors" else ""
            return first_message(value, f"{path}.{name}" if path and name else path or name)
    if isinstance(errors, list) and errors:
        return first_message(errors[0], path)
    message = str(errors)
    if not path or message.startswith(path):  # "name must be ..." names its field already
        return message
    return f"{path}: {message}"


_bound: dict[type, serializers.Serializer] = {}


def validated(serializer_class: type[S], data: object) -> dict[str, Any]:
    """Check `data` with a serializer's fields and its `validate`; raise its ValidationError
    (a 400) or answer the values.

    DRF builds a serializer's fields anew, by deep copy, for every instance: 150 us for a
    decision's three fields, a quarter of a second for a batch of 1,000 rewards checked entry
    by entry. Scout's fields hold no per-request state, so each serializer's fields are bound
    once per process and every request runs them (as Serializer.to_internal_value does).
    """
    serializer = _bound.get(serializer_class)
    if serializer is None:
        serializer = _bound[serializer_class] = serializer_class()
    if not isinstance(data, Mapping):
        raise serializers.ValidationError("The request body must be a JSON object.")
    values: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        try:
            values[name] = field.run_validation(field.get_value(data))
        except serializers.ValidationError as exc:
            errors[name] = exc.detail
        except SkipField:  # an optional field that was not sent
            pass
    if errors:
        raise serializers.ValidationError(errors)
    return serializer.validate(values)


def text_problem(value: str, *, nul_allowed: bool = True) -> str | None:
    """Why a string cannot be stored as it is, or None: a lone surrogate (it has no UTF-8
    form) or, where the database keeps it, a NUL character (PostgreSQL refuses those)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    if not nul_allowed and "\x00" in value:
        return "must not contain NUL characters"
    return None


class LiveMaxLength(MaxLengthValidator):
    """A length limit read from a setting whenever it is used: by the check itself, and by
    drf-spectacular, which publishes it in the OpenAPI schema (maxLength, maxItems)."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        super().__init__(0)

    @property
    def limit_value(self) -> int:
        return int(getattr(settings, self.setting))

    @limit_value.setter
    def limit_value(self, value: object) -> None:
        pass  # the setting is the limit


class Text(serializers.CharField):
    """A non-empty string (surrounding white space dropped) without lone surrogates or NUL
    characters, at most `max_length` characters long, or as many as the setting named by
    `limit_setting` says (read when checking, so the configured limit is the enforced one)."""

    schema_pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"  # published by api.schema

    def __init__(
        self,
        *,
        noun: str = "a non-empty string",
        limit_setting: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("min_length", 1)
        super().__init__(trim_whitespace=False, **kwargs)
        if limit_setting is not None:
            self.validators.append(LiveMaxLength(limit_setting))
        self.noun = noun
        self.limit_setting = limit_setting

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if data == "":  # DRF would call it "blank"; say what is wanted instead
            raise serializers.ValidationError(f"{self.field_name} must be {self.noun}.")
        return super().run_validation(data)

    def to_internal_value(self, data: object) -> str:
        name = self.field_name
        if not isinstance(data, str) or not data.strip():
            raise serializers.ValidationError(f"{name} must be {self.noun}.")
        problem = text_problem(data, nul_allowed=False)
        if problem:
            raise serializers.ValidationError(f"{name} {problem}.")
        limit = getattr(settings, self.limit_setting) if self.limit_setting else self.max_length
        if limit is not None and len(data) > limit:
            raise serializers.ValidationError(f"{name} is at most {limit} characters long.")
        return data.strip()


class Integer(serializers.IntegerField):
    """A JSON integer between `min_value` and `max_value`: not a boolean, not a string, not a
    fraction. A number written with a zero fraction (`5.0`) is that integer, as JSON Schema
    (and so the OpenAPI document) counts it."""

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(self._expected())
        low, high = self.min_value, self.max_value
        if (low is not None and data < low) or (high is not None and data > high):
            raise serializers.ValidationError(self._expected())
        return data

    def _expected(self) -> str:
        low, high = self.min_value, self.max_value
        if low is not None and high is not None:
            return f"{self.field_name} must be an integer between {low} and {high}."
        if low is not None:
            return f"{self.field_name} must be an integer of at least {low}."
        return f"{self.field_name} must be an integer."


class Boolean(serializers.BooleanField):
    """A JSON boolean, nothing that merely looks like one."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(
                f"{self.field_name} must be a boolean (true or false)."
            )
        return data


class Number(serializers.FloatField):
    """A finite JSON number of magnitude at most `limit` (not a boolean), and at least
    `minimum` when one is given."""

    def __init__(self, *, limit: float, minimum: float | None = None, **kwargs: Any) -> None:
        low = -limit if minimum is None else minimum
        super().__init__(min_value=low, max_value=limit, **kwargs)
        self.limit = limit
        self.minimum = minimum

    def to_internal_value(self, data: object) -> float:
        name = self.field_name
        if not is_number(data, math.inf):
            raise serializers.ValidationError(f"{name} must be a finite number.")
        if self.minimum is not None and not self.minimum <= data <= self.limit:  # type: ignore[operator]
            raise serializers.ValidationError(
                f"{name} must be between {self.minimum:g} and {self.limit:g}."
            )
        if not is_number(data, self.limit):
            raise serializers.ValidationError(
                f"{name} must be of magnitude at most {self.limit:g}."
            )
        return float(data)  # type: ignore[arg-type]


def as_label(value: object) -> object:
    """A label as sent, with a number written with a zero fraction (`3.0`) read as that integer
    (as for api.validation.Integer)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label_problem(value: object) -> str | None:
    """Why `value` cannot be a variant label or reference (a string or an integer)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "must be a string or an integer"
    return None


def keys_of(data: Mapping[str, Any], known: AbstractSet[str]) -> dict[str, Any]:
    """The entries of `data` other than `known` fields."""
    return {key: value for key, value in data.items() if key not in known}


class WholeBodyRules:
    """Mixed into a serializer whose rules span several fields: `schema_rules()` states them
    in JSON Schema keywords, which api.schema merges into the serializer's published schema,
    so a client can tell from the OpenAPI document what the serializer's `validate` accepts."""

    @classmethod
    def schema_rules(cls) -> dict[str, Any]:
        return {}


# Patterns the OpenAPI schema states for what these fields accept (ECMA-262 syntax).
NON_BLANK_PATTERN = Text.schema_pattern
NO_NUL_PATTERN = r"^[^\u0000]*$"
VARIANT_ID_PATTERN = r"^(0|[1-9][0-9]{0,8})$"


@extend_schema_field({"type": "string", "format": "date-time"})
class MomentField(serializers.Field):
    """A moment in ISO 8601 (`2027-01-01T00:00:00Z`); one without an offset is read as UTC.
    Its value is an aware datetime in UTC."""

    def to_internal_value(self, data: object) -> dt.datetime:
        problem = f"{self.field_name} must be a date and time in ISO 8601, such as " + (
            "2027-01-01T00:00:00Z."
        )
        if not isinstance(data, str) or len(data) > 64:
            raise serializers.ValidationError(problem)
        text = data.strip().upper()
        # RFC 3339 allows a leap second, which Python's datetime cannot hold.
        text = LEAP_SECOND.sub(r"\g<1>59", text)
        # A `+01:00` sent unencoded in a query string arrives as ` 01:00`.
        text = UNENCODED_PLUS.sub(r"\g<1>+\g<2>", text)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise serializers.ValidationError(problem) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:  # an offset that takes it past year 1 or 9999
            raise serializers.ValidationError(problem) from None

    def to_representation(self, value: dt.datetime) -> str | None:
        return iso(value)


LEAP_SECOND = re.compile(r"(T\d\d:\d\d:)60")
UNENCODED_PLUS = re.compile(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")
