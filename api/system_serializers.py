"""Request and response shapes of the /admin/ system endpoints. As for the Test endpoints
(api.serializers), the request serializers check input once, for the API and the console."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import TestSettingsFields
from api.validation import Boolean, Integer, Text, WholeBodyRules
from system.services import MAX_CONTEXT_TTL_SECONDS

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 253,
        "anyOf": [{"format": "hostname"}, {"format": "ipv4"}, {"format": "ipv6"}],
    }
)
class HostField(Text):
    """A host name (RFC 1123: letters, digits and hyphens, dot-separated) or an IP address."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=253, noun="a host name or an IP address", **kwargs)

    def to_internal_value(self, data: object) -> str:
        host = super().to_internal_value(data)
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        labels = host.rstrip(".").split(".")
        if not all(_HOST_LABEL.match(label) for label in labels):
            raise serializers.ValidationError(
                f"{self.field_name} must be a host name or an IP address."
            )
        return host


class Protection(serializers.Serializer):
    protected_api = Boolean(
        error_messages={
            "required": "protected_api must be a boolean (true or false).",
            "null": "protected_api must be a boolean (true or false).",
        }
    )


class ProtectionChanged(Protection):
    message = serializers.CharField()


class NewToken(serializers.Serializer):
    auth_token = serializers.CharField(help_text="Shown once; only its hash is kept.")


class RedisHealth(serializers.Serializer):
    redis_is_connected = serializers.BooleanField()
    redis_total_keys = serializers.IntegerField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    redis_host = serializers.CharField()
    redis_port = serializers.IntegerField(allow_null=True)
    redis_version = serializers.CharField(required=False)
    redis_used_memory_bytes = serializers.IntegerField(required=False)
    redis_used_memory_human = serializers.CharField(required=False)
    redis_round_trip_ms = serializers.FloatField(required=False)
    redis_uptime_seconds = serializers.IntegerField(required=False)
    redis_cluster_masters = serializers.IntegerField(
        required=False, help_text="On a Redis Cluster: how many masters serve its slots."
    )


class TestDefaults(serializers.Serializer):
    trail_time_window_minutes = serializers.IntegerField()
    trail_bucket_granularity_seconds = serializers.IntegerField()
    minimum_update_requests = serializers.IntegerField()


class TestDefaultsChanged(serializers.Serializer):
    message = serializers.CharField()
    config = TestDefaults()


class SystemConfig(TestDefaults):
    host = serializers.CharField()
    port = serializers.IntegerField()
    debug = serializers.BooleanField()
    protected_api = serializers.BooleanField()
    auth_token = serializers.CharField(allow_null=True, help_text="Masked; never the token.")


class Change(WholeBodyRules, serializers.Serializer):
    """A change of settings: any of its fields, but at least one."""

    nothing_sent = "Send at least one field."

    @classmethod
    def schema_rules(cls) -> dict[str, Any]:
        return {**super().schema_rules(), "minProperties": 1}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(self.nothing_sent)
        return super().validate(attrs)


class TestDefaultsChange(Change, TestSettingsFields):
    """New defaults, by the contract's short names or by the settings' own names; what is not
    sent keeps its current value. `validated_data["test_settings"]` holds all three."""

    SHORT_NAMES = {
        "time_window_minutes": "trail_time_window_minutes",
        "bucket_granularity_seconds": "trail_bucket_granularity_seconds",
        "min_update_requests": "minimum_update_requests",
    }

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for short, name in self.SHORT_NAMES.items():
            long = fields[name]
            assert isinstance(long, Integer)  # as TestSettingsFields declares it
            fields[short] = Integer(
                required=False, min_value=long.min_value, max_value=long.max_value
            )
        return fields

    nothing_sent = (
        "Send at least one of time_window_minutes, bucket_granularity_seconds, min_update_requests."
    )

    @classmethod
    def schema_rules(cls) -> dict[str, Any]:
        """The trail's ranges hold for the short names too."""
        rules = super().schema_rules()
        for branch in rules["anyOf"]:
            bounds = branch["properties"]
            for short, name in cls.SHORT_NAMES.items():
                if name in bounds:
                    bounds[short] = bounds[name]
            if "required" in branch:  # either name of each setting will do
                names = {name: short for short, name in cls.SHORT_NAMES.items()}
                branch["allOf"] = [
                    {"anyOf": [{"required": [name]}, {"required": [names[name]]}]}
                    for name in branch.pop("required")
                ]
        return rules

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for short, name in self.SHORT_NAMES.items():
            if short in attrs:
                attrs.setdefault(name, attrs.pop(short))
        return super().validate(attrs)


def port_field() -> Integer:
    return Integer(required=False, min_value=1, max_value=65_535)


class SystemConfigChange(Change):
    nothing_sent = "Send at least one of host, port, debug."

    host = HostField(required=False)
    port = port_field()
    debug = Boolean(required=False)


class SystemConfigChanged(serializers.Serializer):
    message = serializers.CharField()
    config = SystemConfig()


class RedisConfigChange(Change):
    nothing_sent = "Send host and port, ttl, or both."

    host = HostField(required=False)
    port = port_field()
    ttl = Integer(
        required=False,
        min_value=1,
        max_value=MAX_CONTEXT_TTL_SECONDS,
        help_text="Context TTL, seconds.",
    )


class RedisConfigChanged(serializers.Serializer):
    message = serializers.CharField()
    redis_host = serializers.CharField()
    redis_port = serializers.IntegerField(allow_null=True)
    redis_context_ttl = serializers.IntegerField()
