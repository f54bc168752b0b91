"""Request and response shapes of the staff webhook endpoints (/admin/webhooks)."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from api.validation import Boolean, Text
from webhooks.events import EVENT_TYPES

_PORT = r"6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}"
# http(s)://, a host name or an IPv4 or bracketed IPv6 address, an optional port, then any
# path, query and fragment without spaces or control characters. No user:password@: a
# receiver knows Scout by the signature. The schema publishes the same pattern.
URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://"
    r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])"
    rf"(:({_PORT}))?"
    r"([/?#][^\x00-\x20\x7f]*)?$"
)
_URL = re.compile(URL_PATTERN)


class WebhookUrl(Text):
    """An absolute http or https URL, at most 2,000 characters."""

    schema_pattern = URL_PATTERN  # published by api.schema

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=2000, noun="an http or https URL", **kwargs)

    def to_internal_value(self, data: object) -> str:
        url = super().to_internal_value(data)
        if not _URL.fullmatch(url):
            raise serializers.ValidationError(
                f"url must be an absolute http or https URL (https://host/path), not {url!r}."
            )
        return url


class EventTypes(serializers.ListField):
    """A non-empty list of event types, each one Scout sends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, **kwargs)

    def to_internal_value(self, data: object) -> list[str]:
        known = ", ".join(EVENT_TYPES)
        if not isinstance(data, list) or not data:
            raise serializers.ValidationError(
                f"events must be a non-empty list of event types ({known})."
            )
        unknown = [
            entry for entry in data if not isinstance(entry, str) or entry not in EVENT_TYPES
        ]
        if unknown:
            raise serializers.ValidationError(
                f"events: unknown event type {unknown[0]!r}; known: {known}."
            )
        return list(dict.fromkeys(data))


class WebhookCreate(serializers.Serializer):
    url = WebhookUrl()
    events = EventTypes()
    verify_tls = Boolean(default=True)


class Webhook(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    verify_tls = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()


class WebhookCreated(Webhook):
    secret = serializers.CharField(help_text="64 hex characters; shown this once.")


class WebhookList(serializers.Serializer):
    webhooks = Webhook(many=True)


class DeliveryEvent(serializers.Serializer):
    uuid = serializers.UUIDField()
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    time = serializers.DateTimeField()


class Delivery(serializers.Serializer):
    event = DeliveryEvent()
    subject = serializers.CharField()
    state = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    last_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class DeliveryList(serializers.Serializer):
    deliveries = Delivery(many=True)


class WebhookDeleted(serializers.Serializer):
    message = serializers.CharField()
    id = serializers.IntegerField()


class PingQueued(serializers.Serializer):
    message = serializers.CharField()
    event = serializers.UUIDField()
