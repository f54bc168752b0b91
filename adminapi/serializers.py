"""Request and response shapes of the /admin/ system endpoints, for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers


class Protection(serializers.Serializer):
    protected_api = serializers.BooleanField()


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


class TestDefaults(serializers.Serializer):
    trail_time_window_minutes = serializers.IntegerField()
    trail_bucket_granularity_seconds = serializers.IntegerField()
    minimum_update_requests = serializers.IntegerField()


class TestDefaultsChange(serializers.Serializer):
    time_window_minutes = serializers.IntegerField(required=False, min_value=1, max_value=10_080)
    bucket_granularity_seconds = serializers.IntegerField(
        required=False, min_value=1, max_value=86_400
    )
    min_update_requests = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    trail_time_window_minutes = serializers.IntegerField(required=False)
    trail_bucket_granularity_seconds = serializers.IntegerField(required=False)
    minimum_update_requests = serializers.IntegerField(required=False)


class TestDefaultsChanged(serializers.Serializer):
    message = serializers.CharField()
    config = TestDefaults()


class SystemConfig(TestDefaults):
    host = serializers.CharField()
    port = serializers.IntegerField()
    debug = serializers.BooleanField()
    protected_api = serializers.BooleanField()
    auth_token = serializers.CharField(allow_null=True, help_text="Masked; never the token.")


class SystemConfigChange(serializers.Serializer):
    host = serializers.CharField(required=False, max_length=255)
    port = serializers.IntegerField(required=False, min_value=1, max_value=65_535)
    debug = serializers.BooleanField(required=False)


class SystemConfigChanged(serializers.Serializer):
    message = serializers.CharField()
    config = SystemConfig()


class RedisConfigChange(serializers.Serializer):
    host = serializers.CharField(required=False, max_length=255)
    port = serializers.IntegerField(required=False, min_value=1, max_value=65_535)
    ttl = serializers.IntegerField(required=False, min_value=1, help_text="Context TTL, seconds.")


class RedisConfigChanged(serializers.Serializer):
    message = serializers.CharField()
    redis_host = serializers.CharField()
    redis_port = serializers.IntegerField(allow_null=True)
    redis_context_ttl = serializers.IntegerField()
